"""A batch end to end against the in-process sandbox: plan, confirm, place at the rate, settle, results."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

from gatebot.money import Money
from gatebot.store import repo
from gatebot.store.models import BatchStatus, OrderStatus

from .conftest import Bulk, csv_bytes, topup_rows, voucher_rows


async def test_a_valid_file_is_planned_confirmed_placed_at_the_rate_and_settled(bulk: Bulk) -> None:
    b, p = bulk.service, bulk.p
    plan = await b.plan(csv_bytes(voucher_rows(6) + topup_rows(4)), requester="U123", source_name="june.csv")
    assert plan.rows == 10
    assert plan.totals == {"USD": Money(Decimal("170.00"), "USD")}  # 6 x 20 + 4 x 12.50
    assert [(c.product_id, c.rows) for c in plan.products] == [(101, 6), (456, 4)]
    assert plan.balances_after == {"USD": Money(Decimal("4830.00"), "USD")}
    assert plan.approval is None and plan.short == {}
    assert p.creates() == 0

    batch = await b.confirm(plan.batch_id, "U123")
    assert batch.state is BatchStatus.RUNNING
    again = await b.confirm(plan.batch_id, "U123")  # a double click
    assert again.id == batch.id
    with p.db.session() as s:
        rows = repo.batch_orders(s, plan.batch_id)
    assert [o.status for o in rows] == [OrderStatus.QUEUED] * 10
    assert len({o.idempotency_key for o in rows}) == 10
    assert p.creates() == 0

    started = p.clock.now()
    progress = await b.run_batch(plan.batch_id)
    elapsed = (p.clock.now() - started).total_seconds()
    assert p.creates() == 10
    assert 1.7 <= elapsed <= 2.0  # 10 rows at 5/s: the first at once, then one every 0.2 s
    assert progress.placed == 10 and progress.waiting == 0
    assert progress.status is BatchStatus.RUNNING  # sent, not settled yet

    p.clock.advance(120)
    await p.service.track()
    progress = await b.settle(plan.batch_id)
    assert progress.status is BatchStatus.FINISHED
    assert progress.completed == 10
    assert progress.cost == {"USD": Money(Decimal("170.00"), "USD")}
    assert "batch.finished" in bulk.kinds

    out = list(csv.reader(io.StringIO((await b.results_csv(plan.batch_id, "U123")).decode())))
    assert out[0][-7:] == ["order", "gate_order_id", "status", "reason", "charged", "currency", "delivery"]
    assert all(r[-5] == "completed" for r in out[1:])
    assert out[1][-1].startswith("voucher_code=")
    assert out[7][-1].startswith("vendor_order_id=")
