"""Finance exports as CSV: ``orders``, ``deposits`` and the ``ledger`` (``gatebot export`` and ``/gate export``).

* ``orders`` — one row per order created in the window: number, times, requester, product, kind, amount,
  quantity, estimated and charged cost, currency, status, Gate order id, external_ref. Never a code, a PIN
  or a customer-account value (those columns are not even read: they stay encrypted in the store).
* ``deposits`` — Gate's deposit history as gatebot recorded it (the deposit watch).
* ``ledger`` — one row per daily digest and currency: opening balance, deposits, spend, closing balance,
  expected closing and the mismatch. These are the digests as they were sent
  (:func:`gatebot.finance.digest.digest_history`), so the ledger and the digest can never disagree, and a day's
  closing balance is the next day's opening by construction (the digest's own rule).

Format: money as plain decimal strings (``1234.50``, the currency's decimals) next to a ``currency``
column; times in UTC ISO 8601 (``2026-11-24T09:00:00Z``); spreadsheet-safe: a text cell that starts with
``=``, ``+``, ``-``, ``@`` (or a tab / carriage return) is prefixed with ``'`` so a spreadsheet shows it
rather than evaluating it. Amounts gatebot itself writes are numbers and stay numbers (a negative
mismatch is ``-260.00``, not text), since no formula can hide in a formatted Decimal.

Must not import Slack or the scheduler.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Literal, get_args

from sqlmodel import Session

from gatebot.finance.digest import Digest, digest_history
from gatebot.money import Money, MoneyError
from gatebot.store import repo
from gatebot.store.models import Order, SeenDeposit

__all__ = [
    "KINDS",
    "Export",
    "ExportError",
    "ExportKind",
    "build_export",
    "check_currency",
    "deposits_rows",
    "ledger_rows",
    "orders_rows",
    "safe_cell",
    "to_csv",
]

ExportKind = Literal["orders", "deposits", "ledger"]
KINDS: tuple[ExportKind, ...] = get_args(ExportKind)

ORDER_COLUMNS = ("number", "created_at", "submitted_at", "completed_at", "failed_at", "requester", "product_id",
                 "product", "kind", "amount", "quantity", "estimated_cost", "charged_cost", "currency", "status",
                 "gate_order_id", "external_ref", "test")
DEPOSIT_COLUMNS = ("deposit_id", "currency", "amount", "status", "method", "external_ref", "created_at",
                   "posted_at", "first_seen_at", "announced_at")
LEDGER_COLUMNS = ("day", "period_start", "period_end", "currency", "opening_balance", "deposits",
                  "deposit_count", "spend", "order_count", "closing_balance", "expected_closing", "mismatch",
                  "closing_read_at")

Cell = str | int | bool | Decimal | Money | datetime | None
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class ExportError(ValueError):
    """Bad export arguments; the message is one line naming what is wrong and how to fix it."""


@dataclass(frozen=True, slots=True)
class Export:
    """A finished export: the CSV text and the file name to give it."""

    kind: ExportKind
    since: datetime
    until: datetime
    currency: str | None
    text: str
    rows: int

    @property
    def filename(self) -> str:
        cur = f"-{self.currency}" if self.currency else ""
        return f"gatebot-{self.kind}{cur}-{self.since:%Y%m%dT%H%M}-{self.until:%Y%m%dT%H%M}.csv"


# -- cells ------------------------------------------------------------------------------------------------


def safe_cell(value: Cell) -> str:
    """One CSV cell: money and decimals plain, times UTC ISO 8601, text that could be read as a formula
    escaped with a leading ``'``."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Money):
        return value.as_api()
    if isinstance(value, Decimal | int):
        return f"{value:f}" if isinstance(value, Decimal) else str(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    return "'" + value if value.startswith(_FORMULA_START) else value


def to_csv(columns: Sequence[str], rows: Iterable[Sequence[Cell]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([safe_cell(v) for v in row])
    return out.getvalue()


def check_currency(currency: str | None) -> str | None:
    """``--currency`` upper-cased, or :class:`ExportError`."""
    if currency is None:
        return None
    try:
        return Money.zero(currency).currency
    except MoneyError:
        raise ExportError(f"--currency {currency!r}: use a 3-letter code such as USD") from None


# -- rows -------------------------------------------------------------------------------------------------


def orders_rows(orders: Iterable[Order]) -> list[list[Cell]]:
    return [[o.id, o.created_at, o.submitted_at, o.completed_at, o.failed_at, o.requester, o.product_id,
             o.product_name, o.product_type, o.money("amount"), o.quantity, o.money("estimated_cost"),
             o.money("charged_amount"), o.currency, o.status.value, o.gate_order_id, o.external_ref, o.is_test]
            for o in orders]


def deposits_rows(deposits: Iterable[SeenDeposit]) -> list[list[Cell]]:
    return [[d.id, d.currency, d.money(), d.status, d.method, d.external_ref, d.created_at, d.posted_at,
             d.first_seen_at, d.announced_at] for d in deposits]


def ledger_rows(digests: Iterable[Digest], *, currency: str | None = None) -> list[list[Cell]]:
    """One row per digest and currency, the digest's own figures (``mismatch`` ``0.00`` when it balanced,
    empty when it could not be computed: no opening or closing balance known)."""
    rows: list[list[Cell]] = []
    for digest in digests:
        for line in digest.lines:
            if currency is not None and line.currency != currency:
                continue
            expected = line.expected
            mismatch = line.mismatch
            if mismatch is None and expected is not None and line.closing is not None:
                mismatch = Money.zero(line.currency)
            rows.append([digest.end.astimezone(UTC).date().isoformat(), digest.start, digest.end, line.currency,
                         line.opening, line.deposits, line.deposit_count, line.spend, line.order_count,
                         line.closing, expected, mismatch, digest.closing_at])
    return rows


def build_export(s: Session, kind: str, *, since: datetime, until: datetime,
                 currency: str | None = None) -> Export:
    """The ``kind`` export over ``[since, until)`` (the ledger: digests whose period ends in the window),
    read in one unit of work (async callers: ``await db.run(lambda s: build_export(s, ...))``)."""
    if kind not in KINDS:
        raise ExportError(f"unknown export {kind!r}: use one of {', '.join(KINDS)}")
    if until <= since:
        raise ExportError("--until must be after --since")
    cur = check_currency(currency)
    builders: dict[str, Callable[[], tuple[Sequence[str], list[list[Cell]]]]] = {
        "orders": lambda: (ORDER_COLUMNS, orders_rows(repo.orders_between(s, since, until, currency=cur))),
        "deposits": lambda: (DEPOSIT_COLUMNS,
                             deposits_rows(repo.deposits_between(s, since, until, currency=cur))),
        "ledger": lambda: (LEDGER_COLUMNS, ledger_rows(digest_history(s, since, until), currency=cur)),
    }
    columns, rows = builders[kind]()
    return Export(kind=kind, since=since, until=until, currency=cur,
                  text=to_csv(columns, rows), rows=len(rows))

