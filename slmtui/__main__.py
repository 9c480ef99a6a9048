"""`python -m slmtui`."""

from slmtui.cli import main

raise SystemExit(main())
