"""The ``gatebot`` command line: a thin layer over the core (and the ops fallback when Slack is down).

Exit codes: 0 success, 1 the operation failed (not found, refused by Gate...), 2 bad usage or
configuration; ``buy`` also 3 (saved, outcome not settled yet: ``recover`` settles it). Problems are
printed as one line each, never as a traceback.

The package, split along meaning: :mod:`~gatebot.cli.common` (usage errors, argument types, running the
core), :mod:`~gatebot.cli.orders` (order, orders, buy, products, recover, balance, export),
:mod:`~gatebot.cli.approvals` (approvals, approve, reject), :mod:`~gatebot.cli.processes` (check, sandbox,
db, serve, socket, clock, demo) and :mod:`~gatebot.cli.parser` (the argument parser and :func:`main`).
"""

from gatebot.cli.parser import build_parser, main

__all__ = ["build_parser", "main"]
