"""The App Home tab: ``app_home_opened`` → ``views.publish`` of :func:`~gatebot.slack.blocks.home.home_view`.

Routing table::

    event app_home_opened (tab "home")   publish the viewer's dashboard

What the dashboard holds depends on the viewer's roles (the builder decides the layout): balances (the
last reading gatebot stored when it is recent, else Gate with a short deadline), API health (database,
Gate circuit, jobs — no live probe, Home opens often), open alerts, the approval requests (orders and bulk
batches) waiting for the viewer's decision and their own, the viewer's recent orders and, for ops, the
"New order" button (handled in order_flow). Events are acked by Bolt before this runs.
Must not import the scheduler.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from gatebot.alerts import OpenAlert
from gatebot.gate.models import Balance
from gatebot.orders import GateDown
from gatebot.slack import ids
from gatebot.slack.blocks.alerts import AlertCard
from gatebot.slack.blocks.approvals import home_approval_blocks
from gatebot.slack.blocks.home import MAX_HOME_ORDERS, home_view
from gatebot.slack.deps import Deps
from gatebot.slack.grammar import ROLE_FINANCE, ROLE_OPS
from gatebot.slack.listeners import SLACK_FAILURES, error_code
from gatebot.slack.listeners.approvals import OpenRequests, requests_for
from gatebot.slack.listeners.commands import balance_alert_states
from gatebot.store import repo

__all__ = ["alert_card", "publish_home", "register"]

log = logging.getLogger(__name__)

#: How long Home waits for Gate's balance when the stored reading is stale.
HOME_BALANCE_WAIT = 2.0


def register(app: AsyncApp, deps: Deps) -> None:
    app.event(ids.APP_HOME_OPENED)(_home_opened(deps))


def _home_opened(deps: Deps) -> Any:
    async def home_opened(event: dict[str, Any], client: AsyncWebClient) -> None:
        if event.get("tab", "home") != "home":
            return
        await publish_home(deps, client, str(event["user"]))

    return home_opened


def alert_card(alert: OpenAlert) -> AlertCard:
    return AlertCard(key=alert.key, title=alert.title, severity=str(alert.severity), text=alert.value or "",
                     state=alert.state, since=alert.since, acked_by=alert.acked_by,
                     snoozed_until=alert.snoozed_until)


async def _balances(deps: Deps) -> list[Balance]:
    snapshot = await deps.orders.cached_balances()
    fresh_enough = timedelta(seconds=2 * deps.settings.gatebot_balance_interval)
    if snapshot is None or deps.now() - snapshot.at > fresh_enough:
        try:
            snapshot = await deps.orders.balances(max_wait=HOME_BALANCE_WAIT)
        except GateDown:
            return []
    return snapshot.balances


async def publish_home(deps: Deps, client: AsyncWebClient, user: str) -> None:
    """Build and publish ``user``'s Home tab."""
    roles = await deps.roles.of(user)
    now = deps.now()
    balances = await _balances(deps) if roles & {ROLE_FINANCE, ROLE_OPS} else []
    report = await deps.status_report(probe_gate=False)
    alerts = await deps.db.run(lambda s: deps.status.open_alerts(s, now)) if roles and report.database_ok else []
    mine = await deps.db.run(lambda s: repo.list_orders(s, requester=user, limit=MAX_HOME_ORDERS))
    found = await requests_for(deps, user, roles) if report.database_ok else OpenRequests()
    approver = bool(roles & deps.orders.approval_policy.approver_roles)
    view = home_view(balances=balances, thresholds=deps.settings.gatebot_low_balance, health=report.checks(),
                     open_alerts=[alert_card(a) for a in alerts], recent_orders=mine, viewer_roles=roles,
                     alert_states=balance_alert_states(alerts), now=now,
                     approvals=home_approval_blocks(found.waiting, found.mine, approver=approver,
                                                    waiting_batches=found.waiting_batches,
                                                    my_batches=found.my_batches))
    try:
        await client.views_publish(user_id=user, view=view)
    except SLACK_FAILURES as exc:
        log.warning("could not publish the Home tab for %s (%s)", user, error_code(exc))
