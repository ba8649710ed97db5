"""``python -m gatebot.demo``: the same as ``gatebot demo``."""

from gatebot.demo import main

raise SystemExit(main())
