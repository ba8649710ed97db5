"""Approvals for when Slack is down: ``approvals``, ``approve``, ``reject``."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from gatebot.cli.common import UsageError, clean, print_err, run_core
from gatebot.config import Settings

if TYPE_CHECKING:
    from gatebot.runtime import Core


async def _approver_roles(settings: Settings, approver: str) -> frozenset[str]:
    """The roles of ``--as``: a Slack user id's from GATEBOT_OPS/FINANCE/SUPPORT/ADMINS (user ids only: user
    groups need Slack); a ``cli:`` identity has none of its own (GATEBOT_CLI_APPROVERS makes it an approver)."""
    from gatebot.slack.roles import Roles

    if approver.startswith("cli:"):
        return frozenset()
    return await Roles.from_settings(settings, client=None).of(approver)


def cmd_approvals(args: argparse.Namespace, settings: Settings) -> int:
    from gatebot.textview import approvals_table

    async def go(c: Core) -> int:
        print(approvals_table(await c.orders.open_approvals(limit=args.limit), now=c.clock.now()))
        return 0

    return run_core(settings, go)


def cmd_decide(args: argparse.Namespace, settings: Settings) -> int:
    """``gatebot approve N --as WHO`` and ``gatebot reject N --reason WHY --as WHO``."""
    from gatebot.orders import ApprovalRefused, GateDown
    from gatebot.textview import order_text

    reason = clean(args.reason, limit=500, what="--reason") if args.command == "reject" else ""
    if args.command == "reject" and not reason:
        raise UsageError("--reason: say why the order is rejected (the requester is told)")

    async def go(c: Core) -> int:
        roles = await _approver_roles(settings, args.approver)
        try:
            if args.command == "approve":
                order = await c.orders.approve(args.number, args.approver, roles=roles)
            else:
                order = await c.orders.reject(args.number, args.approver, reason, roles=roles)
        except (ApprovalRefused, GateDown) as exc:
            print_err(str(exc))
            return 1
        assert order.id is not None
        print(order_text(order, await c.orders.history(order.id), content=None))
        return 0


    return run_core(settings, go)
