"""`python -m trainer` (what the TUI starts as a subprocess)."""

from trainer.cli import main

raise SystemExit(main())
