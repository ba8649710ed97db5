"""Approval requests in Slack: the approvers' request message and the requester's DM with the outcome.

The :class:`~gatebot.slack.notifier.Notifier` hands every ``approval.*`` event of the core's bus to
:meth:`ApprovalNotices.process`, on the same per-order chain as the order's own events (so a request is
posted before its decision is shown, and ``drain`` waits for both):

* ``approval.requested`` posts :func:`~gatebot.slack.blocks.approvals.approval_request` (with Approve /
  Reject buttons) in ``GATEBOT_APPROVAL_CHANNEL``, else ``GATEBOT_ALERT_CHANNEL``, and stores where it
  is — with the figures it showed (balance then, spend today, the masked account) — in the store's
  key-value table under ``approval_message:<order id>``, so any process (after a restart too) can edit it.
* ``approval.approved`` / ``rejected`` / ``expired`` edit that message in place (who decided, when, why;
  no buttons) and DM the requester the outcome with the reason.

Slack errors are logged and dropped (the order's state in the store is the truth). Customer accounts are
shown masked (the channel is not the requester's DM) and never logged.

Must not import the scheduler.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final, Protocol

from slack_sdk.web.async_client import AsyncWebClient

from gatebot.clock import Clock
from gatebot.events import Event
from gatebot.money import Money
from gatebot.orders.model import BalanceSnapshot
from gatebot.orders.policy import LimitUse
from gatebot.slack.blocks.approvals import ApprovalFacts, approval_outcome_dm, approval_request, masked
from gatebot.slack.failures import SLACK_FAILURES, error_code
from gatebot.store import repo
from gatebot.store.db import Database
from gatebot.store.models import Order

__all__ = ["APPROVAL_MESSAGE_PREFIX", "ApprovalNotices", "ApprovalReader", "ChannelSettings", "spend_lines"]

log = logging.getLogger(__name__)

#: Key-value entry of an approval request's message: ``{"channel", "ts", "facts"}``.
APPROVAL_MESSAGE_PREFIX: Final = "approval_message:"

DmChannel = Callable[[str | None], Awaitable[str | None]]


class ApprovalReader(Protocol):
    """What the request message reads about an order (``gatebot.orders.OrderService`` has it)."""

    async def order_limit_uses(self, order: Order) -> list[LimitUse]: ...
    async def cached_balances(self) -> BalanceSnapshot | None: ...
    def account(self, order: Order) -> dict[str, Any] | None: ...


class ChannelSettings(Protocol):
    @property
    def gatebot_approval_channel(self) -> str | None: ...
    @property
    def gatebot_alert_channel(self) -> str | None: ...


def spend_lines(uses: list[LimitUse]) -> list[str]:
    """``USD 120.00 of USD 500.00 (personal daily limit)`` per limit: what was spent in the last 24 hours."""
    return [f"{use.used} of {use.limit.limit} ("
            + ("personal" if use.limit.role is None else f"{use.limit.role} team's") + " daily limit)"
            for use in uses]


class ApprovalNotices:
    """Posts, edits and follows up approval requests (called by the notifier, one order at a time)."""

    def __init__(self, *, db: Database, clock: Clock, orders: ApprovalReader, settings: ChannelSettings,
                 client: AsyncWebClient, dm_channel: DmChannel) -> None:
        self.db = db
        self.clock = clock
        self.orders = orders
        self.channel = settings.gatebot_approval_channel or settings.gatebot_alert_channel or None
        self.client = client
        self.dm_channel = dm_channel

    async def process(self, event: Event) -> None:
        if event.order_id is None:
            return
        order_id = event.order_id
        order = await self.db.run(lambda s: repo.get_order(s, order_id))
        if order is None:
            return
        if event.kind == "approval.requested":
            await self._post(order)
            return
        await self._update(order)
        await self._tell_requester(order)

    async def facts(self, order: Order) -> ApprovalFacts:
        """The figures a request shows: balance now, the masked account, the requester's spend today."""
        snapshot = await self.orders.cached_balances()
        balance: Money | None = snapshot.get(order.currency) if snapshot is not None else None
        account = {str(k): masked(str(v)) for k, v in (self.orders.account(order) or {}).items()}
        return ApprovalFacts(balance=balance, account=account,
                             spend=spend_lines(await self.orders.order_limit_uses(order)))

    async def _post(self, order: Order) -> None:
        if self.channel is None:
            log.warning("order #%s needs approval but neither GATEBOT_APPROVAL_CHANNEL nor GATEBOT_ALERT_CHANNEL "
                        "is set: approvers are not told in Slack (they can use /gate approvals)", order.id)
            return
        facts = await self.facts(order)
        try:
            response = await self.client.chat_postMessage(channel=self.channel, **approval_request(order, facts))
        except SLACK_FAILURES as exc:
            log.warning("order #%s: could not post its approval request in %s (%s)", order.id, self.channel,
                        error_code(exc))
            return
        key, now = f"{APPROVAL_MESSAGE_PREFIX}{order.id}", self.clock.now()
        value = {"channel": self.channel, "ts": str(response["ts"]),
                 "facts": {"balance": facts.balance, "account": dict(facts.account), "spend": list(facts.spend)}}
        await self.db.run(lambda s: repo.kv_set(s, key, value, now))

    async def _update(self, order: Order) -> None:
        key = f"{APPROVAL_MESSAGE_PREFIX}{order.id}"
        stored = await self.db.run(lambda s: repo.kv_get(s, key))
        if not isinstance(stored, dict):
            return
        raw = stored.get("facts") or {}
        facts = ApprovalFacts(balance=raw.get("balance"), account=raw.get("account") or {},
                              spend=raw.get("spend") or ())
        try:
            await self.client.chat_update(channel=stored["channel"], ts=stored["ts"], **approval_request(order, facts))
        except SLACK_FAILURES as exc:
            log.warning("order #%s: could not update its approval request (%s)", order.id, error_code(exc))

    async def _tell_requester(self, order: Order) -> None:
        channel = await self.dm_channel(order.requester)
        if channel is None:
            return
        try:
            await self.client.chat_postMessage(channel=channel, **approval_outcome_dm(order))
        except SLACK_FAILURES as exc:
            log.warning("order #%s: could not DM the approval outcome to the requester (%s)", order.id,
                        error_code(exc))
