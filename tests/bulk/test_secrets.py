"""No voucher code or customer-account value of a bulk order in any log line or any plaintext column: only
in the requester's results file and, encrypted, in the store."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from gatebot import logs
from gatebot.logs import configure_logging
from gatebot.store.models import BatchStatus, metadata
from tests.leaks import leaks

from .conftest import Bulk, csv_bytes, topup_rows, voucher_rows


@pytest.fixture
def log_stream(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    monkeypatch.setattr(logs, "_REGISTRY", logs._Registry())  # nothing learnt by earlier tests hides a leak
    root = logging.getLogger()
    saved = root.level
    stream = io.StringIO()
    configure_logging(level="DEBUG", stream=stream)
    yield stream
    for handler in [h for h in root.handlers if getattr(h, "_gatebot_handler", False)]:
        root.removeHandler(handler)
    root.setLevel(saved)


async def test_codes_and_accounts_of_a_batch_are_only_in_the_results_and_encrypted(
        bulk: Bulk, log_stream: io.StringIO) -> None:
    b, p = bulk.service, bulk.p
    plan = await b.plan(csv_bytes(voucher_rows(3) + topup_rows(3)), requester="U123", source_name="f.csv")
    await b.confirm(plan.batch_id, "U123")
    await b.run_batch(plan.batch_id)
    p.clock.advance(120)
    await p.service.track()
    assert (await b.settle(plan.batch_id)).status is BatchStatus.FINISHED
    results = (await b.results_csv(plan.batch_id, "U123")).decode()

    secrets: list[str] = []
    for order in p.sim.all_orders():
        content = order.get("order_content") or {}
        for voucher in content.get("vouchers", [content]):
            secrets += [str(v) for k, v in voucher.items() if k in ("voucher_code", "pin", "vendor_order_id")]
    accounts = [f"player_{i}" for i in range(1, 4)] + [f"p{i}@example.com" for i in range(1, 4)]
    assert len(secrets) >= 6 and all(s in results for s in secrets + accounts)  # the requester's file has them

    logged = log_stream.getvalue()
    assert "batch B1 finished" in logged  # the log did talk about the batch
    assert leaks(secrets + accounts, logged) == []

    with p.db.engine.connect() as connection:
        for table in metadata.sorted_tables:
            columns = [c for c in table.columns if not c.name.endswith("_enc")]
            for row in connection.execute(select(*columns)).all():
                text = " ".join(str(v) for v in row if v is not None)
                assert leaks(secrets + accounts, text) == [], table.name
