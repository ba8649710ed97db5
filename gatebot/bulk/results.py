"""What a batch has done: its progress (counts, cost so far, ETA) and the results file for its requester.

The results CSV repeats the file's columns (read again from the batch's encrypted copy) and adds our
order number, Gate's order id, the status and why, the charge, and the delivery (voucher codes, PINs,
vendor ids) — decrypted here only, for the requester only, while the results are available
(``GATEBOT_BULK_RESULTS_TTL`` after the batch ended). Never log what this returns.

Must not import Slack, the scheduler, ``gatebot.slack``, ``gatebot.jobs``, ``gatebot.demo`` or
``gatebot.emulator``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Final

from gatebot.bulk.lifecycle import Lifecycle
from gatebot.bulk.model import BatchProgress, BatchRefused
from gatebot.finance.exports import Cell, to_csv
from gatebot.money import Money
from gatebot.store import repo
from gatebot.store.models import Batch, BatchStatus, OrderStatus

__all__ = ["RESULT_COLUMNS", "Results"]

RESULT_COLUMNS: Final = ("order", "gate_order_id", "status", "reason", "charged", "currency", "delivery")

_WAITING: Final = (OrderStatus.QUEUED, OrderStatus.SUBMITTING, OrderStatus.UNKNOWN, OrderStatus.WAITING_FUNDS,
                   OrderStatus.AWAITING_APPROVAL)


class Results(Lifecycle):
    """Progress and results."""

    async def progress(self, batch_id: int) -> BatchProgress:
        """Counts per outcome, the cost Gate charged so far and the ETA at the configured rate."""
        batch = await self._require(batch_id)
        counts = await self.db.run(lambda s: repo.batch_row_counts(s, batch_id))
        queued = counts[OrderStatus.QUEUED]
        eta = (timedelta(seconds=queued / self.rate)
               if queued and batch.state is BatchStatus.RUNNING else None)
        return BatchProgress(
            batch_id=batch_id, status=batch.state, status_reason=batch.status_reason, rows=batch.rows,
            placed=counts[OrderStatus.PENDING] + counts[OrderStatus.COMPLETED] + counts[OrderStatus.FAILED],
            completed=counts[OrderStatus.COMPLETED], failed=counts[OrderStatus.FAILED],
            waiting=sum(counts[s] for s in _WAITING), cancelled=counts[OrderStatus.REJECTED],
            attention=counts[OrderStatus.NEEDS_ATTENTION],
            cost={cur: Money(amount, cur) for cur, amount in sorted(counts.charged.items())}, eta=eta,
            at=self.clock.now())

    async def results_csv(self, batch_id: int, requester: str) -> bytes:
        """The results file (UTF-8 CSV) of ``requester``'s batch: the input columns, then
        :data:`RESULT_COLUMNS`. Raises :class:`~gatebot.bulk.BatchRefused` for anyone else, for a batch
        not confirmed, and once the results expired."""
        batch = await self._require(batch_id)
        self._check_results(batch, requester)
        file = self.source_file(batch)
        orders = {o.batch_row: o for o in await self.db.run(lambda s: repo.batch_orders(s, batch_id))}
        rows: list[list[Cell]] = []
        for row in file.rows:
            order = orders.get(row.number)
            values: list[Cell] = [row.values[c] for c in file.columns]
            if order is None:
                rows.append([*values, None, None, None, None, None, None, None])
                continue
            content = self.orders.content(order)
            rows.append([*values, order.number, order.gate_order_id, str(order.status), order.status_reason,
                         order.charged_amount, order.currency, _delivery(content)])
        return to_csv([*file.columns, *RESULT_COLUMNS], rows).encode("utf-8")

    def _check_results(self, batch: Batch, requester: str) -> None:
        if batch.requester != requester:
            raise BatchRefused(f"Only the person who placed batch {batch.number} can have its results "
                               "(they hold voucher codes).")
        if batch.confirmed_at is None:
            raise BatchRefused(f"Batch {batch.number} was never confirmed: it has no results.")
        if batch.results_expire_at is not None and self.clock.now() >= batch.results_expire_at:
            raise BatchRefused(f"The results of batch {batch.number} expired; look its orders up one by one "
                               "(by external_ref).")
        if batch.source_enc is None:
            raise BatchRefused(f"The results of batch {batch.number} are no longer kept.")


def _delivery(content: dict[str, Any] | None) -> str | None:
    """``voucher_code=...; pin=...``; several vouchers (``vouchers``: a list, the first repeated at the top
    level) one after the other, separated by `` | ``. ``None`` when Gate delivered nothing (yet)."""
    if not content:
        return None
    vouchers = content.get("vouchers")
    if isinstance(vouchers, list) and vouchers:
        return " | ".join(filter(None, (_delivery(v) for v in vouchers if isinstance(v, dict)))) or None
    return "; ".join(f"{k}={v}" for k, v in content.items() if not isinstance(v, dict | list)) or None
