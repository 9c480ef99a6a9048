"""Tests of slmtui/stories/, one file a module (a package: its module names repeat those of tests/trainer/)."""
