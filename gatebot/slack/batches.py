"""Following bulk batches in Slack: one progress message per batch, edited in place, and the results file.

:class:`BatchNotifier` subscribes to ``batch.*`` events on the core's bus (the :class:`~gatebot.slack.notifier.
Notifier` subscribes it next to its own order events, in every process that places batches):

* the first event of a confirmed batch posts :func:`~gatebot.slack.blocks.bulk.batch_message` in the channel
  ``/gate bulk`` came from — or, as for a single order, in the requester's DM when the bot cannot post there
  or there is no channel (App Home) — and records where with :meth:`BulkService.set_message`;
* every later event (``batch.progress``, which the core throttles, ``batch.<status>``, ``batch.finished``)
  edits it in place (``chat.update``), re-rendered from the store;
* a batch waiting for approval gets its request message in the approvers' channel, edited when decided, and
  its requester a DM with the outcome (:meth:`ApprovalNotices.batch_event`, after the progress message);
* ``batch.finished`` uploads the results CSV (:meth:`BulkService.results_csv`: codes, for the requester only)
  into the requester's DM with ``files_upload_v2`` — :func:`send_results`, which the "Download results again"
  button calls too.

Events of one batch are handled in order, different batches concurrently; publishing never waits for Slack.
Slack errors are logged and dropped: the store is the truth and the next event re-renders. The progress
message holds counts, money and Gate's reasons — never a code or an account value; the results file is never
logged. Must not import the scheduler.
"""

from __future__ import annotations

import asyncio
import logging

from slack_sdk.web.async_client import AsyncWebClient

from gatebot.bulk import BatchRefused, BulkService
from gatebot.events import Event
from gatebot.slack.approval_notices import ApprovalNotices
from gatebot.slack.blocks.bulk import MAX_SHOWN_FAILURES, BatchCard, batch_message
from gatebot.slack.blocks.common import Message
from gatebot.slack.failures import FALLBACK_ERRORS, SLACK_FAILURES, error_code
from gatebot.slack.roles import is_user_id
from gatebot.store import repo
from gatebot.store.models import Batch, BatchStatus, OrderStatus

__all__ = ["BatchNotifier", "batch_card", "render_batch", "send_results"]

log = logging.getLogger(__name__)


async def batch_card(bulk: BulkService, batch: Batch, *, approval_channel: str | None = None) -> BatchCard:
    """The non-count parts of a batch's message: its first failed rows (row and Gate's reason only),
    whether its results can still be downloaded, and where approvers are asked (``approval_channel``)."""
    batch_id = batch.id or 0
    failed = await bulk.db.run(lambda s: repo.batch_rows_in(s, batch_id, [OrderStatus.FAILED],
                                                            limit=MAX_SHOWN_FAILURES))
    failures = tuple((o.batch_row or 0, o.status_reason or o.error_code or "Gate gave no reason") for o in failed)
    now = bulk.clock.now()
    available = (batch.confirmed_at is not None and batch.finished_at is not None and batch.source_enc is not None
                 and (batch.results_expire_at is None or now < batch.results_expire_at))
    return BatchCard(requester=batch.requester, source_name=batch.source_name, origin_channel=batch.origin_channel,
                     failures=failures, results_available=available, approval_reason=batch.approval_reason,
                     approval_channel=approval_channel)


async def render_batch(bulk: BulkService, batch: Batch, *, controls: bool = True,
                       approval_channel: str | None = None) -> Message:
    """The batch's message as the store says now."""
    progress = await bulk.progress(batch.id or 0)
    card = await batch_card(bulk, batch, approval_channel=approval_channel)
    return batch_message(progress, card, controls=controls, now=bulk.clock.now())


async def _dm_channel(client: AsyncWebClient, user: str) -> str | None:
    if not is_user_id(user):
        return None
    try:
        opened = await client.conversations_open(users=user)
    except SLACK_FAILURES as exc:
        log.warning("could not open a DM with %s (%s)", user, error_code(exc))
        return None
    return str(opened["channel"]["id"])


async def send_results(bulk: BulkService, client: AsyncWebClient, batch_id: int, user: str) -> str | None:
    """Upload batch ``batch_id``'s results CSV into ``user``'s DM. ``None`` when sent; else one sentence for
    ``user`` (not theirs, expired, Slack failed). The core refuses anyone but the requester."""
    try:
        data = await bulk.results_csv(batch_id, user)
    except BatchRefused as exc:
        return str(exc)
    channel = await _dm_channel(client, user)
    if channel is None:
        return "I couldn't open a direct message with you to send the results; try again in a moment."
    name = f"batch-B{batch_id}-results.csv"
    try:
        await client.files_upload_v2(channel=channel, content=data, filename=name, title=name,
                                     initial_comment=f"The results of batch B{batch_id}: our order numbers, Gate's "
                                                     "order ids, statuses, costs and the codes. Keep this file "
                                                     "private.")
    except SLACK_FAILURES as exc:
        log.warning("batch B%s: could not upload the results (%s)", batch_id, error_code(exc))
        return f"Slack refused the upload ({error_code(exc)}); try again in a moment."
    log.info("batch B%s: results sent to the requester by DM", batch_id)
    return None


class BatchNotifier:
    """Posts and edits batches' progress messages; DMs the results when a batch finishes."""

    def __init__(self, bulk: BulkService, client: AsyncWebClient, *, approvals: ApprovalNotices | None = None) -> None:
        self.bulk = bulk
        self.client = client
        self.approvals = approvals
        self._tails: dict[int, asyncio.Task[None]] = {}

    async def handle(self, event: Event) -> None:
        """The bus subscriber: queue ``event`` behind the same batch's earlier events and return."""
        batch_id = event.data.get("batch_id")
        if not isinstance(batch_id, int):
            return
        previous = self._tails.get(batch_id)
        task = asyncio.create_task(self._run(event, batch_id, previous), name=f"notify-batch-{batch_id}")
        self._tails[batch_id] = task

        def forget(done: asyncio.Task[None]) -> None:
            if self._tails.get(batch_id) is done:
                del self._tails[batch_id]

        task.add_done_callback(forget)

    async def _run(self, event: Event, batch_id: int, previous: asyncio.Task[None] | None) -> None:
        if previous is not None:
            await asyncio.wait([previous])
        try:
            await self.process(event, batch_id)
        except Exception:
            log.exception("could not follow up %s for batch B%s in Slack", event.kind, batch_id)

    async def drain(self, timeout: float | None = None) -> None:  # noqa: ASYNC109 - shutdown budget
        """Wait until every queued event is handled (tests, shutdown)."""
        async with asyncio.timeout(timeout):
            while self._tails:
                await asyncio.wait(list(self._tails.values()))

    async def process(self, event: Event, batch_id: int) -> None:
        """Bring the batch's message up to date (re-read from the store), and send the results when it ends."""
        batch = await self.bulk.get(batch_id)
        if batch is None or batch.state is BatchStatus.PLANNED:
            return
        channel = self.approvals.channel if self.approvals is not None else None
        message = await render_batch(self.bulk, batch, approval_channel=channel)
        if batch.message_ts is None or batch.message_channel is None:
            await self._post(batch, message)
        else:
            try:
                await self.client.chat_update(channel=batch.message_channel, ts=batch.message_ts, **message)
            except SLACK_FAILURES as exc:
                log.warning("batch %s: could not update its progress message (%s)", batch.number, error_code(exc))
        if self.approvals is not None:
            await self.approvals.batch_event(event, batch)
        if event.kind == "batch.finished":
            problem = await send_results(self.bulk, self.client, batch_id, batch.requester)
            if problem is not None:
                log.warning("batch %s: results not sent at the end (%s)", batch.number, problem)

    async def _post(self, batch: Batch, message: Message) -> None:
        """Post the progress message in the batch's channel, else the requester's DM; record where."""
        targets = [batch.origin_channel] if batch.origin_channel else []
        for channel in [*targets, None]:
            where = channel or await _dm_channel(self.client, batch.requester)
            if where is None:
                return
            try:
                posted = await self.client.chat_postMessage(channel=where, **message)
            except SLACK_FAILURES as exc:
                if channel is not None and error_code(exc) in FALLBACK_ERRORS:
                    log.info("batch %s: cannot post in %s (%s); using the requester's DM", batch.number, channel,
                             error_code(exc))
                    continue
                log.warning("batch %s: could not post its progress message (%s)", batch.number, error_code(exc))
                return
            await self.bulk.set_message(batch.id or 0, channel=str(posted["channel"]), ts=str(posted["ts"]))
            return
