"""The App Home tab: a dashboard of balances, open alerts, health and recent orders, per viewer role.

What each role sees: everyone sees health; any gatebot role sees open alerts; finance, ops and admins
see balances; support, ops and admins see recent orders; only ops and admins get the "New order"
and "Bulk order" buttons. The caller passes only data it fetched for this viewer; the role checks here decide layout.
Pure functions: must not import slack_bolt/slack_sdk, the store, or do I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from gatebot.config import Thresholds
from gatebot.gate.models import Balance
from gatebot.slack import ids
from gatebot.slack.blocks.alerts import AlertCard, alert_line
from gatebot.slack.blocks.common import (
    Block,
    HealthCheck,
    OrderView,
    actions,
    button,
    context,
    divider,
    esc,
    header,
    line_sections,
    section,
    slack_date,
)
from gatebot.slack.blocks.messages import balance_lines, health_lines, order_row
from gatebot.slack.grammar import ROLE_ADMIN, ROLE_FINANCE, ROLE_OPS, ROLE_SUPPORT

__all__ = ["home_view"]

MAX_HOME_ORDERS = 10
MAX_HOME_ALERTS = 10


def home_view(*, balances: Sequence[Balance], thresholds: Mapping[str, Thresholds],
              health: Sequence[HealthCheck], open_alerts: Sequence[AlertCard],
              recent_orders: Sequence[OrderView], viewer_roles: Iterable[str],
              alert_states: Mapping[str, str] | None = None, now: datetime | None = None,
              approvals: Sequence[Block] = ()) -> dict[str, Any]:
    """The Home tab view (``views.publish``): under 60 blocks whatever the data (Slack allows 100), plus
    ``approvals`` (at most 25: :func:`gatebot.slack.blocks.approvals.home_approval_blocks`)."""
    roles = set(viewer_roles)
    admin = ROLE_ADMIN in roles

    def may(*needed: str) -> bool:
        return admin or bool(roles.intersection(needed))

    blocks: list[Block] = [
        header("gatebot"),
        context(f"Buy vouchers and top-ups through Gate, watch the balance, look up orders. "
                f"Type `{ids.COMMAND} help` for commands."),
    ]
    if may(ROLE_OPS):
        blocks.append(actions(button("New order", action_id=ids.HOME_NEW_ORDER, style="primary"),
                              button("Bulk order", action_id=ids.HOME_BULK_ORDER)))
    if not roles:
        blocks.append(section("You don't have a gatebot role yet. Ask a gatebot admin if you need access "
                              "to orders, balances or alerts."))
    blocks += approvals
    # Each part gets a fixed share of the 100 blocks so no amount of data can crowd out the others.
    if may(ROLE_FINANCE, ROLE_OPS):
        lines, _summary = balance_lines(balances, thresholds, alert_states)
        blocks.append(divider())
        blocks += line_sections(["*Balance*", *(lines or ["Gate reported no balances."])], max_blocks=10)
    if roles:
        shown = [alert_line(a) for a in open_alerts[:MAX_HOME_ALERTS]] or ["None. :relaxed:"]
        if len(open_alerts) > MAX_HOME_ALERTS:
            shown.append(f"_…and {len(open_alerts) - MAX_HOME_ALERTS} more in the alert channel._")
        blocks.append(divider())
        blocks += line_sections([f"*Open alerts* ({len(open_alerts)})", *shown], max_blocks=5)
    summary, lines = health_lines(health)
    blocks.append(divider())
    blocks += line_sections([f"*Health*\n{summary}", *lines], max_blocks=10)
    if may(ROLE_SUPPORT, ROLE_OPS):
        blocks += [divider(), section("*Recent orders*")]
        if recent_orders:
            blocks += [order_row(o) for o in recent_orders[:MAX_HOME_ORDERS]]
            if may(ROLE_SUPPORT):
                blocks.append(context(f"More with `{ids.COMMAND} orders`."))
        else:
            blocks.append(context("No orders yet."))
    if now is not None:
        your_roles = esc(", ".join(sorted(roles)) or "none")
        blocks.append(context(f"Updated {slack_date(now)} · your roles: {your_roles}"))
    return {"type": "home", "blocks": blocks}
