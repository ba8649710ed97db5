"""Following orders in Slack: the order pipeline's events become one status message per order.

:class:`Notifier` subscribes to ``order.*`` events on the core's :class:`~gatebot.events.EventBus`:

* ``order.created`` posts :func:`~gatebot.slack.blocks.messages.order_message` in the channel the order
  came from — or, when the bot cannot post there (``not_in_channel``, ``channel_not_found``,
  ``is_archived``) or there is no channel (App Home), in a DM to the requester — and records where in
  the order's ``message_ts`` / ``message_in_dm`` columns, so ``origin_channel`` keeps saying where the
  order came from. While a process posts the first message it holds ``message_claimed_at`` (a
  compare-and-set claim in the store, see :mod:`gatebot.store.repo.messages`).
* every later event edits that message in place (``chat.update``) and adds the history row to its
  thread (:func:`~gatebot.slack.blocks.messages.order_thread_note`), so the thread holds the history.
* ``approval.*`` events go to :class:`~gatebot.slack.approval_notices.ApprovalNotices` on the same chain:
  the approvers' request message, edited when decided, and the requester's DM with the outcome.
* ``batch.*`` events go to :class:`~gatebot.slack.batches.BatchNotifier` (one progress message per batch; a
  batch's approval request through the same :class:`ApprovalNotices`).
* ``order.completed`` DMs the requester the code (:func:`~gatebot.slack.blocks.messages.order_delivery_dm`)
  exactly once — ``dm_sent`` is claimed with a compare-and-set, so two processes never both send it — while
  the channel message only says "delivered". A DM that failed (Slack down) is retried by
  :meth:`Notifier.retry_deliveries`, which runs after later order events and may be called by a job.

Publishing never waits for Slack: :meth:`Notifier.handle` queues the work on a per-order chain (events of
one order are handled in order, different orders concurrently) and returns, so a slow or rate-limited
Slack does not delay an order on its way to Gate. Slack errors are logged and dropped — the store is the
truth and the next event re-renders the message from it. The store is touched only through ``repo``
functions inside ``await db.run(...)``: never a session on the event loop, never SQL here. Codes, PINs
and customer accounts are never logged and never posted anywhere but the requester's DM.

Must not import the scheduler.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Protocol

from slack_sdk.web.async_client import AsyncWebClient
from sqlmodel import Session

from gatebot.bulk import BulkService
from gatebot.clock import Clock
from gatebot.events import Event, EventBus
from gatebot.slack.approval_notices import ApprovalNotices, ApprovalReader, ChannelSettings
from gatebot.slack.batches import BatchNotifier
from gatebot.slack.blocks.messages import order_delivery_dm, order_message, order_thread_note
from gatebot.slack.failures import FALLBACK_ERRORS, SLACK_FAILURES, error_code
from gatebot.slack.roles import is_user_id
from gatebot.store import repo
from gatebot.store.db import Database
from gatebot.store.models import Order, OrderHistory, OrderStatus

__all__ = ["FALLBACK_ERRORS", "Notifier", "NotifierServices"]

log = logging.getLogger(__name__)

#: ``chat.update`` errors that mean the status message is gone: post a new one.
_GONE_ERRORS = frozenset({"message_not_found", "channel_not_found", "is_archived", "cant_update_message"})
#: A claim on posting an order's first message older than this is abandoned (its process died).
CLAIM_TIMEOUT = timedelta(seconds=60)
#: How often undelivered codes (a DM that failed) are retried, piggybacking on order events.
RETRY_EVERY = timedelta(minutes=5)


class OrderReader(ApprovalReader, Protocol):
    """What the notifier reads about an order (``gatebot.orders.OrderService`` has it)."""

    def content(self, order: Order) -> dict[str, Any] | None: ...


class ResumeSetting(ChannelSettings, Protocol):
    """The settings the notifier reads (``gatebot.config.Settings`` has them)."""

    @property
    def gatebot_resume_on_deposit(self) -> bool: ...


class NotifierServices(Protocol):
    """What the notifier calls: the store, the order reader, the clock, the event bus, one setting and the
    bulk service (``gatebot.runtime.Core`` satisfies it)."""

    @property
    def db(self) -> Database: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def events(self) -> EventBus: ...
    @property
    def orders(self) -> OrderReader: ...
    @property
    def settings(self) -> ResumeSetting: ...
    @property
    def bulk(self) -> BulkService: ...


class Notifier:
    """Posts and updates order status messages and delivers codes by DM."""

    def __init__(self, services: NotifierServices, client: AsyncWebClient, *, claim_wait: float = 5.0) -> None:
        self.core = services
        self.client = client
        #: How long a later event waits for another process's first post of the same order.
        self.claim_wait = claim_wait
        self._tails: dict[int, asyncio.Task[None]] = {}
        self._dms: dict[str, str] = {}
        self._last_retry: datetime | None = None
        self.approvals = ApprovalNotices(db=services.db, clock=services.clock, orders=services.orders,
                                         settings=services.settings, client=client, dm_channel=self._dm_channel,
                                         batches=services.bulk)
        #: Bulk batches' progress messages and results (a batch's rows get no message of their own), and
        #: their approval requests.
        self.batches = BatchNotifier(services.bulk, client, approvals=self.approvals)

    def subscribe(self, events: EventBus | None = None) -> None:
        bus = events or self.core.events
        bus.subscribe("order.", self.handle)
        bus.subscribe("approval.", self.handle)  # same per-order chain: a request is posted before its decision
        bus.subscribe("batch.", self.batches.handle)

    # -- queueing ---------------------------------------------------------------------------------------
    async def handle(self, event: Event) -> None:
        """The bus subscriber: queue ``event`` behind the same order's earlier events and return."""
        order_id = event.order_id
        if order_id is None or event.data.get("batch_id") is not None:
            return  # a bulk row: its batch has one progress message and one results file, not a post per row
        previous = self._tails.get(order_id)
        task = asyncio.create_task(self._run(event, previous), name=f"notify-order-{order_id}")
        self._tails[order_id] = task

        def forget(done: asyncio.Task[None]) -> None:
            if self._tails.get(order_id) is done:
                del self._tails[order_id]

        task.add_done_callback(forget)

    async def _run(self, event: Event, previous: asyncio.Task[None] | None) -> None:
        if previous is not None:
            await asyncio.wait([previous])
        try:
            await self.process(event)
        except Exception:
            log.exception("could not follow up %s for order #%s in Slack", event.kind, event.order_id)

    async def drain(self, timeout: float | None = None) -> None:  # noqa: ASYNC109 - shutdown budget
        """Wait until every queued event is handled (tests, shutdown)."""
        async with asyncio.timeout(timeout):
            while self._tails:
                await asyncio.wait(list(self._tails.values()))
            await self.batches.drain()

    # -- the work -------------------------------------------------------------------------------------------
    async def process(self, event: Event) -> None:
        """Bring Slack up to date with one event (the order is re-read: the store is the truth)."""
        if event.order_id is None:
            return
        if event.kind.startswith("approval."):
            await self.approvals.process(event)
            return
        order = await self._load(event.order_id)
        if order is None:
            return
        status = event.kind.removeprefix("order.")
        mine = False
        if order.message_ts is None:
            claimed = await self._await_or_claim(order)
            if claimed is None:
                return
            order, mine = claimed
        if mine:  # ours to post (first event, or every earlier post failed)
            posted = await self._post_status(order)
            if posted is not None:
                order = posted
                await self._note_history(order, upto=None if status == "created" else status)
        elif order.message_ts is None:
            pass  # another process is posting it right now, rendered from the same store
        elif status != "created":
            order = await self._update_status(order)
            await self._note(order, _pick_row(await self._history(order.id or 0), status))
        if OrderStatus(order.status) is OrderStatus.COMPLETED:
            await self.deliver(order)
        await self._maybe_retry_deliveries()

    async def _load(self, order_id: int) -> Order | None:
        return await self.core.db.run(lambda s: repo.get_order(s, order_id))

    async def _history(self, order_id: int) -> list[OrderHistory]:
        return await self.core.db.run(lambda s: repo.history(s, order_id))

    async def _note_history(self, order: Order, *, upto: str | None) -> None:
        """After the first post: the creation row, or (a late first post) every row up to ``upto``'s."""
        assert order.id is not None
        rows = await self._history(order.id)
        last = _pick_row(rows, upto) if upto is not None else None
        if last is None:
            await self._note(order, _pick_row(rows, "created"))
            return
        for row in rows:
            await self._note(order, row)
            if row.id == last.id:
                break

    def _render(self, order: Order) -> dict[str, Any]:
        return order_message(order, resume_on_deposit=self.core.settings.gatebot_resume_on_deposit)

    # -- the status message ------------------------------------------------------------------------------------
    async def _await_or_claim(self, order: Order) -> tuple[Order, bool] | None:
        """Claim the first post of an order, or wait for the process that claimed it to finish.

        Returns the order to continue with and whether this call holds the claim (then: post it now).
        """
        assert order.id is not None
        order_id = order.id
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.claim_wait
        while True:
            won, fresh = await self.core.db.run(partial(_claim, order_id=order_id, now=self.core.clock.now()))
            if fresh is None:
                return None
            if won or fresh.message_ts is not None:
                return fresh, won
            if loop.time() >= deadline:
                log.info("order #%s: another process is still posting its message; skipping this update", order_id)
                return fresh, False
            await asyncio.sleep(0.1)

    async def _post_status(self, order: Order) -> Order | None:
        """Post the order's status message (channel, else DM) and record where. Needs the claim."""
        assert order.id is not None
        order_id = order.id
        message = self._render(order)
        targets: list[str | None] = []
        if order.origin_channel:
            targets.append(order.origin_channel)
        targets.append(None)  # the requester's DM
        for channel in targets:
            if channel is None:
                channel = await self._dm_channel(order.requester)
                if channel is None:
                    break
            try:
                response = await self.client.chat_postMessage(channel=channel, **message)
            except SLACK_FAILURES as exc:
                error = error_code(exc)
                if error in FALLBACK_ERRORS and channel == order.origin_channel:
                    log.info("order #%s: cannot post in %s (%s); sending it to the requester by DM",
                             order.id, channel, error)
                    continue
                log.warning("order #%s: could not post its status message (%s)", order.id, error)
                break
            ts, in_dm = str(response["ts"]), channel != order.origin_channel
            return await self.core.db.run(partial(repo.save_message, order_id=order_id, ts=ts, in_dm=in_dm))
        await self.core.db.run(lambda s: repo.release_message(s, order_id))  # the next event tries again
        return None

    async def location(self, order: Order) -> tuple[str, str] | None:
        """``(channel, ts)`` of the order's status message, or ``None`` while there is none."""
        if order.message_ts is None:
            return None
        channel = await self._dm_channel(order.requester) if order.message_in_dm else order.origin_channel
        return (channel, order.message_ts) if channel else None

    async def _update_status(self, order: Order) -> Order:
        assert order.id is not None
        where = await self.location(order)
        if where is None:
            return order
        try:
            await self.client.chat_update(channel=where[0], ts=where[1], **self._render(order))
        except SLACK_FAILURES as exc:
            error = error_code(exc)
            if error not in _GONE_ERRORS:
                log.warning("order #%s: could not update its status message (%s)", order.id, error)
                return order
            log.info("order #%s: its status message is gone (%s); posting a new one", order.id, error)
            order_id, ts, in_dm, now = order.id, where[1], order.message_in_dm, self.core.clock.now()

            def take_over(s: Session) -> Order | None:
                """Compare-and-set on the vanished message: of several processes, one posts anew."""
                if not repo.take_over_message(s, order_id, ts=ts, in_dm=in_dm, now=now):
                    return None
                return s.get(Order, order_id, populate_existing=True)

            fresh = await self.core.db.run(take_over)
            if fresh is None:
                return order
            posted = await self._post_status(fresh)
            return posted or order
        return order

    async def _note(self, order: Order, row: OrderHistory | None) -> None:
        where = await self.location(order) if row is not None else None
        if row is None or where is None:
            return
        try:
            await self.client.chat_postMessage(channel=where[0], thread_ts=where[1], **order_thread_note(row))
        except SLACK_FAILURES as exc:
            log.warning("order #%s: could not add a history note to its thread (%s)", order.id, error_code(exc))

    async def _dm_channel(self, user: str | None) -> str | None:
        if user is None or not is_user_id(user):
            return None
        if user in self._dms:
            return self._dms[user]
        try:
            response = await self.client.conversations_open(users=user)
        except SLACK_FAILURES as exc:
            log.warning("could not open a DM with %s (%s)", user, error_code(exc))
            return None
        channel = response.get("channel") or {}
        if not isinstance(channel, dict) or not channel.get("id"):
            return None
        self._dms[user] = str(channel["id"])
        return self._dms[user]

    # -- delivery ---------------------------------------------------------------------------------------------
    async def retry_deliveries(self, *, limit: int = 200) -> int:
        """DM the codes of recently completed orders whose delivery failed (Slack was down). Returns how
        many were sent. Runs after order events (at most every :data:`RETRY_EVERY`); a job may call it."""
        self._last_retry = self.core.clock.now()
        completed = await self.core.db.run(lambda s: repo.list_orders(s, status=OrderStatus.COMPLETED, limit=limit))
        undelivered = [o for o in completed if not o.dm_sent and is_user_id(o.requester)]
        sent = 0
        for order in undelivered:
            sent += await self.deliver(order)
        return sent

    async def _maybe_retry_deliveries(self) -> None:
        if self._last_retry is None or self.core.clock.now() - self._last_retry >= RETRY_EVERY:
            await self.retry_deliveries()

    async def deliver(self, order: Order) -> bool:
        """DM the requester what was bought (the code), once. Returns whether this call sent it."""
        assert order.id is not None
        if order.dm_sent or not is_user_id(order.requester):
            return False
        if not await self._set_dm_sent(order.id, expected=False):
            return False  # someone else sent it
        content = self.core.orders.content(order) or {}
        channel = await self._dm_channel(order.requester)
        problem: str | None = "no DM channel" if channel is None else None
        if channel is not None:
            try:
                await self.client.chat_postMessage(channel=channel, **order_delivery_dm(order, content))
            except SLACK_FAILURES as exc:
                problem = error_code(exc)
        if problem is not None:
            log.warning("order #%s: could not DM the delivery to the requester (%s); it will be retried",
                        order.id, problem)
            await self._set_dm_sent(order.id, expected=True, value=False)
            return False
        log.info("order #%s: delivery sent to the requester by DM", order.id)
        return True

    async def _set_dm_sent(self, order_id: int, *, expected: bool, value: bool = True) -> bool:
        return await self.core.db.run(lambda s: repo.set_dm_sent(s, order_id, expected=expected, value=value))


def _claim(s: Session, *, order_id: int, now: datetime) -> tuple[bool, Order | None]:
    """Try to claim the order's first post; the order as stored now either way."""
    won = repo.claim_message(s, order_id, now=now, stale_before=now - CLAIM_TIMEOUT)
    return won, s.get(Order, order_id, populate_existing=True)


def _pick_row(rows: list[OrderHistory], status: str) -> OrderHistory | None:
    """The history row an event is about: the creation row, else the last one entering ``status``."""
    if status == "created":
        return next((r for r in rows if r.from_status is None), rows[0] if rows else None)
    matching = [r for r in rows if str(r.to_status) == status]
    return matching[-1] if matching else None
