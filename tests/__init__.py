"""Test package marker: lets tests/test_cli.py and tests/trainer/test_cli.py share a basename."""
