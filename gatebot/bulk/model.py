"""What the bulk API takes and gives: problems found in a file, the plan of a valid file, progress, errors.

Must not import Slack, the scheduler, ``gatebot.slack``, ``gatebot.jobs``, ``gatebot.demo`` or
``gatebot.emulator``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

from gatebot.money import Money
from gatebot.store.models import BatchStatus

__all__ = [
    "FIRST_DATA_ROW",
    "BatchProgress",
    "BatchRefused",
    "BulkInvalid",
    "BulkPlan",
    "Problem",
    "ProductCount",
]

#: Row numbers are the spreadsheet's: the header is row 1, so the first order is row 2.
FIRST_DATA_ROW: Final = 2


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a bulk file. ``row`` is the spreadsheet row (header = 1, first order = 2;
    ``None``: the whole file); ``column`` the column's name as in the header (``None``: the whole row or
    file). ``message`` is a sentence for the person who made the file; it never quotes an account value."""

    row: int | None
    column: str | None
    message: str

    def __str__(self) -> str:
        where = [f"row {self.row:,}" if self.row is not None else "", self.column or ""]
        prefix = ", ".join(w for w in where if w)
        return f"{prefix}: {self.message}" if prefix else self.message


class BulkInvalid(Exception):
    """The file cannot be placed: ``problems`` lists every problem found, in file order. Nothing was saved,
    nothing was sent."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        first = "; ".join(str(p) for p in self.problems[:3])
        more = f" (and {len(self.problems) - 3:,} more)" if len(self.problems) > 3 else ""
        super().__init__(f"{len(self.problems):,} problem(s): {first}{more}")


class BatchRefused(Exception):
    """A batch action that cannot be done (not yours, already decided, finished, results expired...).
    ``str(exc)`` is one sentence for the person who tried; nothing changed."""


@dataclass(frozen=True, slots=True)
class ProductCount:
    """How many rows of the file order one product."""

    product_id: int
    name: str
    rows: int


@dataclass(frozen=True, slots=True)
class BulkPlan:
    """A valid file, saved as a ``planned`` batch (no order yet): what confirming it would do.

    Confirm it with ``BulkService.confirm(plan.batch_id, requester)``; until then nothing is charged.
    ``balances``/``balances_after`` per currency of the batch (``None``: Gate has no such balance);
    ``short``: currencies whose balance does not cover the batch — it will pause ``waiting_funds`` when Gate
    says so, and resume when a deposit posts. ``approval``: why it waits for a second person (``None``: it
    starts at once). ``limit_problems`` are never here: a batch over a daily limit the policy refuses is
    :class:`BulkInvalid`."""

    batch_id: int
    rows: int
    products: tuple[ProductCount, ...]
    totals: dict[str, Money]
    balances: dict[str, Money | None]
    balance_cached: bool
    approval: str | None
    source_name: str

    @property
    def number(self) -> str:
        return f"B{self.batch_id}"

    @property
    def needs_approval(self) -> bool:
        return self.approval is not None

    @property
    def balances_after(self) -> dict[str, Money | None]:
        return {cur: (None if (have := self.balances.get(cur)) is None else have - total)
                for cur, total in self.totals.items()}

    @property
    def short(self) -> dict[str, Money]:
        """Per currency, how much is missing for the whole batch (only the currencies that are short)."""
        missing: dict[str, Money] = {}
        for cur, after in self.balances_after.items():
            if after is None:
                missing[cur] = self.totals[cur]
            elif after.amount < 0:
                missing[cur] = Money.zero(cur) - after
        return missing


@dataclass(frozen=True, slots=True)
class BatchProgress:
    """Where a batch is, for a progress message or a status line.

    ``placed``: rows Gate accepted (pending, completed, failed); ``completed``/``failed`` of those;
    ``waiting``: rows not sent yet or waiting (queued, submitting, unknown, waiting for funds, awaiting
    approval); ``cancelled``: rows ended without a Gate call or refused by Gate (rejected);
    ``attention``: rows a person must settle (needs_attention). ``cost`` per currency: what Gate charged so
    far. ``eta``: the time left at the configured rate for the rows not sent yet (``None`` when nothing is
    left to send or the batch is not running)."""

    batch_id: int
    status: BatchStatus
    status_reason: str | None
    rows: int
    placed: int
    completed: int
    failed: int
    waiting: int
    cancelled: int
    attention: int
    cost: dict[str, Money] = field(default_factory=dict)
    eta: timedelta | None = None
    at: datetime | None = None

    @property
    def number(self) -> str:
        return f"B{self.batch_id}"

    @property
    def done(self) -> int:
        """Rows whose outcome is final (completed, failed, rejected)."""
        return self.completed + self.failed + self.cancelled

    @property
    def fraction(self) -> float:
        """0.0-1.0, for a progress bar (display only; never money)."""
        return self.done / self.rows if self.rows else 1.0
