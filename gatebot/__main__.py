"""``python -m gatebot`` — the same as the ``gatebot`` console script."""

from gatebot.cli import main

raise SystemExit(main())
