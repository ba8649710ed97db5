"""Shared pieces of every Block Kit builder: text objects, escaping, safe truncation, dates, money,
the view protocols builders are typed against, and the ``{"text", "blocks"}`` message envelope.

Builders return plain dicts (Block Kit JSON); nothing here calls Slack or does I/O. User and Gate data
(product names, reasons, refs, account values) is always escaped with :func:`esc` before it goes into
``mrkdwn`` — a product called ``<!channel>`` must not ping a channel — and truncated with "…" so no
element exceeds Slack's limits. Must not import slack_bolt/slack_sdk, the store, or the scheduler:
the store's models are described by the :class:`OrderView`/:class:`HistoryView`/:class:`ProductView`
protocols instead, so builders work with anything that has those attributes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol

from gatebot.clock import format_utc
from gatebot.gate.models import ProductKind
from gatebot.money import format_amount
from gatebot.orders.catalog_search import SearchableProduct
from gatebot.slack.blocks.limits import (
    MAX_BUTTON_TEXT,
    MAX_CONTEXT_ELEMENTS,
    MAX_FALLBACK_TEXT,
    MAX_FIELD_TEXT,
    MAX_FIELDS,
    MAX_HEADER,
    MAX_SECTION_TEXT,
)
from gatebot.slack.blocks.limits import (
    MAX_MESSAGE_BLOCKS as MAX_MESSAGE_BLOCKS,  # re-exported: the listeners split long lists by it
)
from gatebot.store.models import FINAL_STATUSES as FINAL_STATUSES  # re-exported for the builders

__all__ = [
    "ELLIPSIS",
    "EN_DASH",
    "FINAL_STATUSES",
    "TIMES",
    "Block",
    "HealthCheck",
    "HistoryView",
    "Message",
    "OrderView",
    "ProductView",
    "actions",
    "button",
    "channel_mention",
    "code",
    "context",
    "divider",
    "esc",
    "field",
    "fields_sections",
    "format_money",
    "format_number",
    "header",
    "line_sections",
    "message",
    "mrkdwn",
    "order_ref",
    "plain",
    "price_text",
    "section",
    "slack_date",
    "status_display",
    "truncate",
    "truncate_mrkdwn",
    "user_mention",
]

Block = dict[str, Any]
Message = dict[str, Any]

ELLIPSIS = "…"
#: En dash for ranges (USD 5-100) and the multiplication sign (voucher x 2), as escapes for the linter.
EN_DASH = "\u2013"
TIMES = "\u00d7"

# Slack's limits live in limits.py (with the checks); the builders here truncate to them.
MAX_FALLBACK = MAX_FALLBACK_TEXT

# -- what builders render (the store's tables satisfy these) ------------------------------------------


class OrderView(Protocol):
    """An order as ``gatebot.store.models.Order`` has it (read-only view)."""

    @property
    def id(self) -> int | None: ...
    @property
    def external_ref(self) -> str | None: ...
    @property
    def idempotency_key(self) -> str | None: ...
    @property
    def gate_order_id(self) -> str | None: ...
    @property
    def product_id(self) -> int | None: ...
    @property
    def product_name(self) -> str | None: ...
    @property
    def product_type(self) -> str | None: ...
    @property
    def currency(self) -> str | None: ...
    @property
    def amount(self) -> Decimal | None: ...
    @property
    def quantity(self) -> int | None: ...
    @property
    def estimated_cost(self) -> Decimal | None: ...
    @property
    def charged_amount(self) -> Decimal | None: ...
    @property
    def balance_before(self) -> Decimal | None: ...
    @property
    def balance_after(self) -> Decimal | None: ...
    @property
    def status(self) -> str: ...
    @property
    def status_reason(self) -> str | None: ...
    @property
    def error_code(self) -> str | None: ...
    @property
    def is_test(self) -> bool: ...
    @property
    def requester(self) -> str | None: ...
    @property
    def origin_channel(self) -> str | None: ...
    @property
    def message_ts(self) -> str | None: ...
    @property
    def created_at(self) -> datetime | None: ...
    @property
    def updated_at(self) -> datetime | None: ...
    @property
    def submitted_at(self) -> datetime | None: ...
    @property
    def completed_at(self) -> datetime | None: ...
    @property
    def failed_at(self) -> datetime | None: ...


class HistoryView(Protocol):
    """One row of an order's history (``gatebot.store.models.OrderHistory``)."""

    @property
    def at(self) -> datetime | None: ...
    @property
    def from_status(self) -> str | None: ...
    @property
    def to_status(self) -> str: ...
    @property
    def actor(self) -> str | None: ...
    @property
    def note(self) -> str | None: ...


class ProductView(SearchableProduct, Protocol):
    """A cached catalog product (``gatebot.store.models.CatalogProduct``): what the search reads, and more."""

    @property
    def kind(self) -> ProductKind: ...
    @property
    def price(self) -> Decimal | None: ...
    @property
    def min_amount(self) -> Decimal | None: ...
    @property
    def max_amount(self) -> Decimal | None: ...
    @property
    def step(self) -> Decimal | None: ...
    @property
    def margin(self) -> Decimal | None: ...
    @property
    def account_fields_json(self) -> str | list[Any] | None: ...


@dataclass(frozen=True, slots=True)
class HealthCheck:
    """One line of the health report: a component, whether it is fine, and a short detail."""

    name: str
    ok: bool
    detail: str = ""
    checked_at: datetime | None = None
    #: What ``checked_at`` is, shown before it as a Slack date: "checked", "last success", "lease until".
    at_label: str = "checked"


# -- text ------------------------------------------------------------------------------------------


def esc(text: object) -> str:
    """Escape ``& < >`` so user data in mrkdwn can't form links, mentions or ``<!channel>``."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def truncate(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, ending with "…" when cut."""
    if len(text) <= limit:
        return text
    if limit <= 1:
        return ELLIPSIS[:limit]
    return text[: limit - 1].rstrip() + ELLIPSIS


def truncate_mrkdwn(text: str, limit: int) -> str:
    """Like :func:`truncate`, but never cuts inside ``<...>`` markup or an ``&amp;`` entity."""
    if len(text) <= limit:
        return text
    cut = text[: max(limit - 1, 0)]
    lt = cut.rfind("<")
    if lt > cut.rfind(">"):
        cut = cut[:lt]
    amp = cut.rfind("&")
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut.rstrip() + ELLIPSIS


def plain(text: str, limit: int = MAX_SECTION_TEXT) -> dict[str, Any]:
    """A ``plain_text`` object (never empty: Slack rejects empty text)."""
    return {"type": "plain_text", "text": truncate(text.strip() or "—", limit), "emoji": True}


def mrkdwn(text: str, limit: int = MAX_SECTION_TEXT) -> dict[str, Any]:
    """A ``mrkdwn`` object; ``text`` must already be escaped where it holds user data."""
    return {"type": "mrkdwn", "text": truncate_mrkdwn(text.strip() or "—", limit)}


_USER_ID_RE = re.compile(r"[UW][A-Z0-9]{2,}")
_CHANNEL_ID_RE = re.compile(r"[CGD][A-Z0-9]{2,}")


def user_mention(user_id: str | None, *, missing: str = "someone") -> str:
    """``<@U123>`` for a Slack user id, otherwise the escaped text (an actor like ``gatebot``)."""
    if not user_id:
        return missing
    return f"<@{user_id}>" if _USER_ID_RE.fullmatch(user_id) else esc(truncate(user_id, 80))


def channel_mention(channel_id: str | None) -> str:
    if not channel_id:
        return "—"
    return f"<#{channel_id}>" if _CHANNEL_ID_RE.fullmatch(channel_id) else esc(truncate(channel_id, 80))


def code(text: object, limit: int = 200) -> str:
    """Inline code for an identifier (escaped; not wrapped when it holds a backtick)."""
    value = esc(truncate(str(text), limit))
    return value if "`" in value else f"`{value}`"


# -- dates and money -------------------------------------------------------------------------------------


def slack_date(when: datetime | None, fmt: str = "{date_short_pretty} {time}", *, missing: str = "—") -> str:
    """``<!date^epoch^fmt|fallback>``: shown in each reader's own time zone. Naive datetimes are UTC."""
    if when is None:
        return missing
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return f"<!date^{int(when.timestamp())}^{fmt}|{format_utc(when)}>"


def format_money(amount: Decimal | None, currency: str | None, *, missing: str = "—") -> str:
    """``USD 1,234.50`` (the one rule: :func:`gatebot.money.format_amount`). Plain text: ``esc()`` it
    for mrkdwn."""
    return format_amount(amount, currency, missing=missing)


def format_number(value: Decimal) -> str:
    """A Decimal without a pointless ``.00`` (``5``, ``2.5``), no exponent, for ranges and steps."""
    text = f"{value:f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


# -- orders: shared wording --------------------------------------------------------------------------------

_STATUS = {
    "submitting": (":outbox_tray:", "Sending to Gate"),
    "unknown": (":grey_question:", "Outcome unknown"),
    "pending": (":hourglass_flowing_sand:", "Pending"),
    "waiting_funds": (":moneybag:", "Waiting for funds"),
    "completed": (":white_check_mark:", "Completed"),
    "failed": (":x:", "Failed"),
    "rejected": (":no_entry:", "Rejected"),
    "needs_attention": (":warning:", "Needs attention"),
    "awaiting_approval": (":raised_hand:", "Waiting for approval"),
}

def status_display(status: str) -> tuple[str, str]:
    """``(emoji, label)`` for an order status; an unknown status is shown as itself."""
    return _STATUS.get(str(status), (":grey_question:", truncate(str(status), 40)))


def order_ref(order: OrderView) -> str:
    return f"#{order.id}" if order.id is not None else "#?"


# -- blocks ---------------------------------------------------------------------------------------------


def header(text: str) -> Block:
    return {"type": "header", "text": plain(" ".join(text.split()), MAX_HEADER)}


def section(text: str | None = None, *, fields: Sequence[str] = (), accessory: Block | None = None,
            block_id: str | None = None) -> Block:
    """A section; ``text`` and each field are mrkdwn (escape user data first)."""
    block: Block = {"type": "section"}
    if block_id:
        block["block_id"] = block_id
    if text is not None:
        block["text"] = mrkdwn(text)
    if fields:
        block["fields"] = [mrkdwn(f, MAX_FIELD_TEXT) for f in fields[:MAX_FIELDS]]
    if accessory is not None:
        block["accessory"] = accessory
    return block


def field(label: str, value: str) -> str:
    """A section field: bold label over its (already escaped) value."""
    return f"*{label}*\n{value}"


def fields_sections(fields: Sequence[str]) -> list[Block]:
    """As many sections as needed for ``fields`` (at most 10 per section)."""
    return [section(fields=fields[i:i + MAX_FIELDS]) for i in range(0, len(fields), MAX_FIELDS)]


def context(*texts: str) -> Block:
    return {"type": "context", "elements": [mrkdwn(t) for t in texts[:MAX_CONTEXT_ELEMENTS]]}


def divider() -> Block:
    return {"type": "divider"}


def button(text: str, *, action_id: str, value: str | None = None, style: str | None = None,
           url: str | None = None) -> Block:
    element: Block = {"type": "button", "text": plain(text, MAX_BUTTON_TEXT), "action_id": action_id}
    if value is not None:
        element["value"] = truncate(value, 2000)
    if style:
        element["style"] = style
    if url:
        element["url"] = url
    return element


def actions(*elements: Block, block_id: str | None = None) -> Block:
    block: Block = {"type": "actions", "elements": list(elements)}
    if block_id:
        block["block_id"] = block_id
    return block


def line_sections(lines: Iterable[str], *, max_blocks: int, more: str = "") -> list[Block]:
    """Pack lines into as few sections as possible (each ≤ 3000 chars), using at most ``max_blocks``.

    Lines that do not fit are dropped and replaced by a context block with ``more`` (``{n}`` is the
    number dropped), which counts against ``max_blocks``.
    """
    pending = [truncate_mrkdwn(line, MAX_SECTION_TEXT) for line in lines]
    chunks: list[list[str]] = []
    size = 0
    for line in pending:
        if chunks and size + 1 + len(line) <= MAX_SECTION_TEXT:
            chunks[-1].append(line)
            size += 1 + len(line)
        else:
            chunks.append([line])
            size = len(line)
    if len(chunks) <= max_blocks:
        return [section("\n".join(chunk)) for chunk in chunks]
    kept = chunks[: max(max_blocks - 1, 0)]
    dropped = len(pending) - sum(len(c) for c in kept)
    blocks = [section("\n".join(chunk)) for chunk in kept]
    if max_blocks >= 1:
        blocks.append(context((more or "…and {n} more.").replace("{n}", str(dropped))))
    return blocks


def message(text: str, blocks: list[Block]) -> Message:
    """The message envelope: ``text`` is the notification/screen-reader fallback (≤ 4000 chars)."""
    return {"text": truncate_mrkdwn(text, MAX_FALLBACK), "blocks": blocks}


# -- products: shared wording -------------------------------------------------------------------------------


def price_text(product: ProductView) -> str:
    """``USD 25.00`` for a voucher; ``USD 5`` en dash ``100`` (min to max) for a top-up. Plain text."""
    currency = product.currency
    if product.kind is ProductKind.TOP_UP:
        low, high = product.min_amount, product.max_amount
        if low is not None and high is not None:
            return f"{currency} {format_number(low)}{EN_DASH}{format_number(high)}"
        if low is not None:
            return f"{currency} from {format_number(low)}"
        if high is not None:
            return f"{currency} up to {format_number(high)}"
        return currency
    return format_money(product.price, product.currency, missing=currency)
