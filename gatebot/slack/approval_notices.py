"""Approval requests in Slack: the approvers' request message and the requester's DM with the outcome.

The :class:`~gatebot.slack.notifier.Notifier` hands every ``approval.*`` event of the core's bus to
:meth:`ApprovalNotices.process`, on the same per-order chain as the order's own events (so a request is
posted before its decision is shown, and ``drain`` waits for both):

* ``approval.requested`` posts :func:`~gatebot.slack.blocks.approvals.approval_request` (with Approve /
  Reject buttons) in ``GATEBOT_APPROVAL_CHANNEL``, else ``GATEBOT_ALERT_CHANNEL``, and stores where it
  is — with the figures it showed (balance then, spend today, the masked account) — in the store's
  key-value table under ``approval_message:<order id>`` (:func:`request_key`), so any process (after a
  restart too) can edit it.
* ``approval.approved`` / ``rejected`` / ``expired`` edit that message in place (who decided, when, why;
  no buttons) and DM the requester the outcome with the reason.

A bulk batch that needs approval gets the same treatment, from the batch's events (the
:class:`~gatebot.slack.batches.BatchNotifier` hands them to :meth:`ApprovalNotices.batch_event` on the batch's
chain): ``batch.awaiting_approval`` posts :func:`~gatebot.slack.blocks.approvals.batch_approval_request` (rows,
products, totals, balance now → after; never an account value) under ``approval_message:B<number>``; the
decision (``batch.running`` or ``batch.rejected`` with ``decided_by`` set) edits it and DMs the requester once.

Slack errors are logged and dropped (the order's state in the store is the truth). Customer accounts are
shown masked (the channel is not the requester's DM) and never logged.

Must not import the scheduler.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final, Protocol

from slack_sdk.web.async_client import AsyncWebClient

from gatebot.bulk import ProductCount
from gatebot.clock import Clock
from gatebot.events import Event
from gatebot.money import Money
from gatebot.orders.model import BalanceSnapshot
from gatebot.orders.policy import LimitUse
from gatebot.slack.blocks.approvals import (
    ApprovalFacts,
    BatchFacts,
    approval_outcome_dm,
    approval_request,
    batch_approval_request,
    batch_outcome_dm,
    masked,
)
from gatebot.slack.failures import SLACK_FAILURES, error_code
from gatebot.store import repo
from gatebot.store.db import Database
from gatebot.store.models import Batch, BatchStatus, Order

__all__ = ["APPROVAL_MESSAGE_PREFIX", "ApprovalNotices", "ApprovalReader", "BatchReader", "ChannelSettings",
           "approvers_channel", "request_key", "spend_lines"]

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


class BatchReader(Protocol):
    """What a batch's request message reads (``gatebot.bulk.BulkService`` has it)."""

    async def products(self, batch_id: int) -> list[ProductCount]: ...


def approvers_channel(settings: ChannelSettings) -> str | None:
    """Where approval requests go: ``GATEBOT_APPROVAL_CHANNEL``, else the alert channel (``None``: nowhere)."""
    return settings.gatebot_approval_channel or settings.gatebot_alert_channel or None


def request_key(target: Order | Batch | int | str) -> str:
    """The key-value key of a request message: ``approval_message:12`` (order #12) or ``…:B12`` (batch B12)."""
    if isinstance(target, Batch):
        return f"{APPROVAL_MESSAGE_PREFIX}{target.number}"
    return f"{APPROVAL_MESSAGE_PREFIX}{target.id if isinstance(target, Order) else target}"


def spend_lines(uses: list[LimitUse]) -> list[str]:
    """``USD 120.00 of USD 500.00 (personal daily limit)`` per limit: what was spent in the last 24 hours."""
    return [f"{use.used} of {use.limit.limit} ("
            + ("personal" if use.limit.role is None else f"{use.limit.role} team's") + " daily limit)"
            for use in uses]


class ApprovalNotices:
    """Posts, edits and follows up approval requests (called by the notifier, one order at a time)."""

    def __init__(self, *, db: Database, clock: Clock, orders: ApprovalReader, settings: ChannelSettings,
                 client: AsyncWebClient, dm_channel: DmChannel, batches: BatchReader) -> None:
        self.db = db
        self.clock = clock
        self.orders = orders
        self.batches = batches
        self.channel = approvers_channel(settings)
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
        facts = await self.facts(order)
        stored = {"balance": facts.balance, "account": dict(facts.account), "spend": list(facts.spend)}
        await self._post_request(f"order #{order.id}", request_key(order), approval_request(order, facts), stored)

    async def _post_request(self, what: str, key: str, message: dict[str, Any], facts: dict[str, Any]) -> None:
        """Post a request message in the approvers' channel and record where (with the figures it shows)."""
        if self.channel is None:
            log.warning("%s needs approval but neither GATEBOT_APPROVAL_CHANNEL nor GATEBOT_ALERT_CHANNEL "
                        "is set: approvers are not told in Slack (they can use /gate approvals)", what)
            return
        try:
            response = await self.client.chat_postMessage(channel=self.channel, **message)
        except SLACK_FAILURES as exc:
            log.warning("%s: could not post its approval request in %s (%s)", what, self.channel, error_code(exc))
            return
        now, value = self.clock.now(), {"channel": self.channel, "ts": str(response["ts"]), "facts": facts}
        await self.db.run(lambda s: repo.kv_set(s, key, value, now))

    async def _update(self, order: Order) -> None:
        stored = await self._stored(request_key(order))
        if stored is None:
            return
        raw = stored.get("facts") or {}
        facts = ApprovalFacts(balance=raw.get("balance"), account=raw.get("account") or {},
                              spend=raw.get("spend") or ())
        await self._edit(f"order #{order.id}", stored, approval_request(order, facts))

    async def _stored(self, key: str) -> dict[str, Any] | None:
        stored = await self.db.run(lambda s: repo.kv_get(s, key))
        return stored if isinstance(stored, dict) else None

    async def _edit(self, what: str, stored: dict[str, Any], message: dict[str, Any]) -> None:
        try:
            await self.client.chat_update(channel=stored["channel"], ts=stored["ts"], **message)
        except SLACK_FAILURES as exc:
            log.warning("%s: could not update its approval request (%s)", what, error_code(exc))

    # -- bulk batches -----------------------------------------------------------------------------------------
    async def batch_event(self, event: Event, batch: Batch) -> None:
        """Post a batch's request when it starts waiting; once decided, edit it and DM the requester (once:
        later ``batch.running`` events — a resume — find it told)."""
        if event.kind == "batch.awaiting_approval" and batch.state is BatchStatus.AWAITING_APPROVAL:
            snapshot = await self.orders.cached_balances()
            balances = {cur: snapshot.get(cur) if snapshot is not None else None for cur in batch.totals()}
            products = [(p.name, p.rows) for p in await self.batches.products(batch.id or 0)]
            facts = BatchFacts(balances=balances, products=products)
            await self._post_request(f"batch {batch.number}", request_key(batch), batch_approval_request(batch, facts),
                                     {"balances": balances, "products": [list(p) for p in products]})
            return
        if batch.decided_by is None or event.kind not in ("batch.running", "batch.rejected"):
            return
        key = request_key(batch)
        stored = await self._stored(key)
        if stored is None or stored.get("told"):
            return
        raw = stored.get("facts") or {}
        facts = BatchFacts(balances=raw.get("balances") or {},
                           products=[(str(n), int(c)) for n, c in raw.get("products") or []])
        await self._edit(f"batch {batch.number}", stored, batch_approval_request(batch, facts))
        now, told = self.clock.now(), {**stored, "told": True}
        await self.db.run(lambda s: repo.kv_set(s, key, told, now))
        await self._dm(f"batch {batch.number}", batch.requester, batch_outcome_dm(batch))

    async def _dm(self, what: str, user: str | None, message: dict[str, Any]) -> None:
        channel = await self.dm_channel(user)
        if channel is None:
            return
        try:
            await self.client.chat_postMessage(channel=channel, **message)
        except SLACK_FAILURES as exc:
            log.warning("%s: could not DM the approval outcome to the requester (%s)", what, error_code(exc))

    async def _tell_requester(self, order: Order) -> None:
        await self._dm(f"order #{order.id}", order.requester, approval_outcome_dm(order))
