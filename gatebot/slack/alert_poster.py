"""The alert poster: alert notifications, deposit notices and the daily digest as Slack messages.

What lives here
    :class:`AlertPoster` — the Slack implementation of :class:`gatebot.poster.Poster`. For each
    :class:`~gatebot.alerts.Notification`: ``post`` sends :func:`~gatebot.slack.blocks.alerts.alert_message`
    to ``GATEBOT_ALERT_CHANNEL`` and stores the new message's channel/ts on the alert
    (:func:`gatebot.alerts.stored.record_message`), so every later change edits that message (``update`` ->
    ``chat.update``) or replies in its thread (``thread`` -> ``chat.postMessage`` with ``thread_ts``).
    Deposits and the digest go to ``GATEBOT_FINANCE_CHANNEL`` (else the alert channel); low-balance
    alerts may too (``balance_alerts_to_finance``). Plus the pure builders of those two messages,
    :func:`deposit_message` and :func:`digest_message`.

A Slack failure is logged (method, alert key and Slack's error code — never a token or payload) and
never raised: the alert state keeps no message ts, and the policy posts it again later. A missing
channel is logged once and skipped.

Must not import the scheduler (apscheduler) or ``gatebot.jobs``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.exc import SQLAlchemyError

from gatebot.alerts import Notification, PolicyState
from gatebot.alerts import stored as alert_store
from gatebot.clock import Clock
from gatebot.config import Settings
from gatebot.finance.deposits import DepositNotice
from gatebot.finance.digest import Digest, DigestLine
from gatebot.slack import ids
from gatebot.slack.blocks.alerts import SEVERITY_EMOJI, AlertCard, alert_message
from gatebot.slack.blocks.common import (
    Block,
    Message,
    context,
    esc,
    field,
    fields_sections,
    header,
    message,
    section,
    slack_date,
    truncate,
)
from gatebot.slack.failures import SLACK_FAILURES, error_code
from gatebot.store.db import Database

__all__ = ["AlertPoster", "LinkFor", "alert_card", "app_home_link", "deposit_message", "digest_message", "ledger_hint",
           "thread_text"]

log = logging.getLogger(__name__)

#: ``link_for(alert_key) -> (url, button text)`` or ``None`` for no link button.
LinkFor = Callable[[str], tuple[str, str] | None]

#: Fields the card's state line already shows.
_STATE_FIELDS = frozenset({"State", "Acked by", "Snoozed until"})
_MENTION = re.compile(r"&lt;@([UW][A-Z0-9]{2,})&gt;")
_GONE = frozenset({"message_not_found", "cant_update_message", "edit_window_closed"})
_MAX_THREAD_TEXT = 3000


# -- pure builders ---------------------------------------------------------------------------------------------


def alert_card(note: Notification, state: PolicyState | None, *, now: datetime | None = None,
               link: tuple[str, str] | None = None) -> AlertCard:
    """The card for a ``post``/``update``.

    With the stored ``state`` the card shows the alert as it is *now* (``state.render(now)``), not as it
    was when the notification was made: a web process's ack that lands between the clock process's
    decision and its ``chat.update`` is never painted over by an older picture. Without a state (it
    could not be read) the notification's own text and fields are used.
    """
    a = state.alert if state is not None else None
    if state is not None and now is not None:
        r = state.render(now)
        severity, title, text, fields, label = r.severity, r.title, r.text, r.fields, state.state_label()
    else:
        severity, title, text, fields = note.severity, note.title, note.text, note.fields
        label = note.fields.get("State") or ("resolved" if note.severity == "ok" else "firing")
    return AlertCard(
        key=note.alert_key,
        title=title,
        severity="info" if severity == "ok" else severity,
        text=text,
        fields=[(k, v) for k, v in fields.items() if k not in _STATE_FIELDS],
        state=label,
        since=a.opened_at if a is not None else None,
        acked_by=a.acked_by if a is not None else None,
        snoozed_until=a.snoozed_until if a is not None else None,
        link=link[0] if link else None,
        link_text=link[1] if link else "Open",
    )


def thread_text(note: Notification) -> str:
    """A thread reply: severity emoji and the escaped text (Slack user mentions kept working)."""
    emoji = {"ok": ":white_check_mark:"}.get(note.severity) or SEVERITY_EMOJI.get(note.severity, ":bell:")
    text = _MENTION.sub(r"<@\1>", esc(truncate(note.text, _MAX_THREAD_TEXT)))
    return f"{emoji} {text}"


def _money_text(money: Any) -> str:
    return esc(money.format()) if money is not None else "not recorded"


def deposit_message(notice: DepositNotice) -> Message:
    """``:moneybag: Deposit #7 posted: USD 500.00`` with method, reference, time and resumed orders."""
    amount = notice.amount.format()
    details = [f"Deposit #{notice.deposit_id}"]
    if notice.method:
        details.append(esc(truncate(notice.method.replace("_", " "), 40)))
    if notice.external_ref:
        details.append(f"ref {esc(truncate(notice.external_ref, 80))}")
    if notice.posted_at:
        details.append(f"posted {slack_date(notice.posted_at)}")
    blocks: list[Block] = [section(f":moneybag: *{esc(amount)} deposit posted*\n" + " · ".join(details))]
    if notice.resumed:
        plural = "order" if notice.resumed == 1 else "orders"
        blocks.append(context(f"{notice.resumed} {plural} waiting for {esc(notice.amount.currency)} funds "
                              "re-submitted (same idempotency keys: nothing is bought twice)."))
    return message(f"Deposit #{notice.deposit_id} posted: {amount}", blocks)


def _line_fields(line: DigestLine) -> list[str]:
    orders = f"{line.order_count} order{'s' if line.order_count != 1 else ''}"
    deposits = f"{line.deposit_count} deposit{'s' if line.deposit_count != 1 else ''}"
    return [
        field("Opening", _money_text(line.opening)),
        field(f"Deposits ({deposits})", _money_text(line.deposits)),
        field(f"Spend ({orders})", _money_text(line.spend)),
        field("Closing", _money_text(line.closing)),
    ]


def ledger_hint(digest: Digest) -> str:
    """Where the digest's figures are as a spreadsheet: the ledger export of exactly this period."""
    since, until = (f"{when.astimezone(UTC):%Y-%m-%dT%H:%M}" for when in (digest.start, digest.end))
    return (f":page_facing_up: These figures as CSV: `{ids.COMMAND} export ledger {since} {until}` "
            f"(or `gatebot export ledger --since {since} --until {until}`).")


def digest_message(digest: Digest) -> Message:
    """The daily finance digest: per currency opening, deposits, spend, closing; mismatches called out."""
    blocks: list[Block] = [
        header("Daily Gate digest"),
        context(f"{slack_date(digest.start)} to {slack_date(digest.end)}"
                + (" · opening balances from the first balance reading" if digest.from_baseline else "")),
    ]
    currencies = list(digest.lines)[:10]
    for line in currencies:
        blocks.append(section(f"*{esc(line.currency)}*"))
        blocks += fields_sections(_line_fields(line))
        mismatch = line.mismatch
        if mismatch is not None and line.expected is not None:
            sign = "+" if mismatch.amount > 0 else ""
            blocks.append(section(
                f":warning: *Mismatch in {esc(line.currency)}:* opening + deposits - spend = "
                f"{_money_text(line.expected)}, but Gate reports {_money_text(line.closing)} "
                f"({esc(sign + mismatch.format())}). Money moved that gatebot did not see: orders placed "
                "outside gatebot, fees, refunds or a correction by Plexy. Check the Gate statement."))
        elif line.opening is None:
            blocks.append(context(f"No opening balance recorded for {esc(line.currency)}: no check possible."))
    if len(digest.lines) > len(currencies):
        blocks.append(context(f"…and {len(digest.lines) - len(currencies)} more currencies."))
    if digest.closing_at is not None and digest.closing_at < digest.end:
        blocks.append(context(f":hourglass: Gate could not be read: closing balances are the last readings, "
                              f"from {slack_date(digest.closing_at)}."))
    if not digest.lines:
        blocks.append(section("No balances, deposits or orders in this period."))
    blocks.append(context(ledger_hint(digest)))
    summary = (f"{len(digest.mismatches)} mismatch(es): " + ", ".join(line.currency for line in digest.mismatches)
               if digest.mismatches else "no mismatches")
    return message(f"Daily Gate digest ({summary})", blocks)


def app_home_link(api_url: str, *, team_id: str, app_id: str) -> str:
    """A link that opens the app in Slack (its Home tab lists balances, health and open alerts).

    Derived from ``SLACK_API_URL``'s host so GovSlack links stay on ``slack-gov.com``.
    """
    parts = urlsplit(api_url)
    base = f"{parts.scheme or 'https'}://{parts.netloc or 'slack.com'}"
    return f"{base}/app_redirect?{urlencode({'app': app_id, 'team': team_id})}"


# -- the poster ------------------------------------------------------------------------------------------------


class AlertPoster:
    """Sends what the jobs and the alert buttons produce to Slack (see the module docstring).

    ``link_for`` gives an alert's link button; by default the poster links to the app's Home tab,
    finding the team and app ids once with ``auth.test`` / ``bots.info`` (no link if that fails).
    """

    def __init__(
        self,
        client: AsyncWebClient,
        *,
        db: Database,
        clock: Clock,
        alert_channel: str | None,
        finance_channel: str | None = None,
        balance_alerts_to_finance: bool = False,
        link_for: LinkFor | None = None,
        discover_home_link: bool = True,
    ) -> None:
        self.client = client
        self.db = db
        self.clock = clock
        self.alert_channel = alert_channel or None
        self.finance_channel = finance_channel or None
        self.balance_alerts_to_finance = balance_alerts_to_finance
        self._link_for = link_for
        self._discover = discover_home_link and link_for is None
        self._home: str | None = None
        self._warned: set[str] = set()

    @classmethod
    def for_settings(cls, settings: Settings, *, db: Database, clock: Clock, client: AsyncWebClient | None = None,
                     **options: Any) -> AlertPoster:
        """A poster for ``settings``' channels over ``db``; ``client`` defaults to one for
        ``SLACK_BOT_TOKEN`` at ``SLACK_API_URL`` that retries rate-limited calls."""
        if client is None:
            from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler

            if settings.slack_bot_token is None:
                raise ValueError("SLACK_BOT_TOKEN is not set: the alert poster cannot post to Slack")
            client = AsyncWebClient(token=settings.slack_bot_token.get_secret_value(),
                                    base_url=settings.slack_api_url,
                                    retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=2)])
        return cls(client, db=db, clock=clock, alert_channel=settings.gatebot_alert_channel,
                   finance_channel=settings.gatebot_finance_channel, **options)

    # -- routing ---------------------------------------------------------------------------------------
    def channel_for(self, alert_key: str) -> str | None:
        """Where a new alert message goes: low-balance alerts to finance when configured so (or when no
        alert channel is set), everything else to the alert channel."""
        if alert_key.startswith("balance:") and (self.balance_alerts_to_finance or not self.alert_channel):
            return self.finance_channel or self.alert_channel
        return self.alert_channel

    def finance_target(self) -> str | None:
        return self.finance_channel or self.alert_channel

    def _no_channel(self, what: str) -> None:
        if what not in self._warned:
            self._warned.add(what)
            log.warning("no Slack channel configured for %s (set GATEBOT_ALERT_CHANNEL / "
                        "GATEBOT_FINANCE_CHANNEL); not posting them", what)

    # -- alerts ------------------------------------------------------------------------------------------
    async def deliver(self, notes: Sequence[Notification]) -> None:
        """Post, edit or reply for each notification in order. Never raises for a Slack failure."""
        posted: dict[str, tuple[str, str]] = {}
        for note in notes:
            try:
                await self._deliver_one(note, posted)
            except SLACK_FAILURES as exc:
                log.warning("alert %s: Slack refused the %s (%s)", note.alert_key, note.kind, error_code(exc))

    async def _deliver_one(self, note: Notification, posted: dict[str, tuple[str, str]]) -> None:
        if note.kind == "post":
            if note.alert_key in posted:  # the same batch already posted it: keep that one message current
                channel, ts = posted[note.alert_key]
                await self._update(note, channel, ts)
                return
            await self._post(note, posted)
        elif note.kind == "update":
            if note.channel is None or note.ts is None:
                await self._post(note, posted)
                return
            try:
                await self._update(note, note.channel, note.ts)
            except SlackApiError as exc:
                if error_code(exc) not in _GONE:
                    raise
                log.warning("alert %s: its message is gone (%s); posting it again", note.alert_key, error_code(exc))
                await self._post(note, posted)
        else:
            if note.channel is None or note.ts is None:
                return
            await self.client.chat_postMessage(channel=note.channel, thread_ts=note.ts, text=thread_text(note))

    async def _card(self, note: Notification) -> Message:
        try:
            state = await self.db.run(lambda s: alert_store.alert_state(s, note.alert_key))
        except SQLAlchemyError as exc:
            log.warning("alert %s: could not read its state (%s)", note.alert_key, type(exc).__name__)
            state = None
        return alert_message(alert_card(note, state, now=self.clock.now(), link=await self._link(note.alert_key)))

    async def _post(self, note: Notification, posted: dict[str, tuple[str, str]]) -> None:
        channel = self.channel_for(note.alert_key)
        if channel is None:
            self._no_channel("alerts")
            return
        response = await self.client.chat_postMessage(channel=channel, **await self._card(note))
        where, ts = str(response["channel"]), str(response["ts"])
        posted[note.alert_key] = (where, ts)
        try:
            now = self.clock.now()
            await self.db.run(lambda s: alert_store.record_message(s, note.alert_key, where, ts, now))
        except SQLAlchemyError as exc:
            log.warning("alert %s: posted, but its message ts could not be stored (%s)", note.alert_key,
                        type(exc).__name__)

    async def _update(self, note: Notification, channel: str, ts: str) -> None:
        await self.client.chat_update(channel=channel, ts=ts, **await self._card(note))

    async def _link(self, alert_key: str) -> tuple[str, str] | None:
        if self._link_for is not None:
            return self._link_for(alert_key)
        if self._discover:
            self._discover = False
            try:
                auth = await self.client.auth_test()
                bot = await self.client.bots_info(bot=auth["bot_id"])
                self._home = app_home_link(self.client.base_url, team_id=str(auth["team_id"]),
                                           app_id=str(bot["bot"]["app_id"]))
            except (*SLACK_FAILURES, KeyError, TypeError) as exc:
                log.info("no link button on alerts: the app's id is unknown (%s)", error_code(exc))
        return (self._home, "Open gatebot") if self._home else None

    # -- finance -------------------------------------------------------------------------------------------
    async def announce_deposit(self, notice: DepositNotice) -> bool:
        return await self._finance(deposit_message(notice), f"deposit #{notice.deposit_id}")

    async def send_digest(self, digest: Digest) -> bool:
        return await self._finance(digest_message(digest), "the daily digest")

    async def _finance(self, msg: Message, what: str) -> bool:
        channel = self.finance_target()
        if channel is None:
            self._no_channel("deposits and the digest")
            return True  # nowhere to post: done with it (it is in the store and on /gate deposits)
        try:
            await self.client.chat_postMessage(channel=channel, **msg)
        except SLACK_FAILURES as exc:
            log.warning("Slack refused %s (%s); it is retried by the next run", what, error_code(exc))
            return False
        return True
