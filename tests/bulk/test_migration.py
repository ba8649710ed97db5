"""Migration 0006 on SQLite and PostgreSQL: batches and the batch columns come and go; a downgrade ends the
rows never sent (``queued``, a status 0005 does not know) as ``rejected``."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import inspect, text
from sqlmodel import Session

from gatebot.store import repo
from gatebot.store.crypto import cipher_from_key
from gatebot.store.db import downgrade, make_engine, upgrade
from gatebot.store.models import Batch, BatchStatus, Order, OrderStatus


def test_0006_up_and_down_keeps_every_order(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        upgrade(engine)
        now = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
        with Session(engine) as s:
            batch = repo.add_batch(s, Batch(requester="U1", status=BatchStatus.RUNNING, source_name="f.csv",
                                            source_digest="0" * 64, rows=1, totals_json="{}", created_at=now,
                                            updated_at=now))
            order = Order(external_ref="R-1", idempotency_key="gbk_1", product_id=101, product_name="Steam",
                          product_type="redeem_card", currency="USD", status=OrderStatus.QUEUED, requester="U1",
                          created_at=now, updated_at=now, batch_id=batch.id, batch_row=2)
            order.set_secret_fields(cipher_from_key(None), body={"product_id": 101})
            repo.add_order(s, order)
            s.commit()
        downgrade(engine, "0005")
        assert "batches" not in inspect(engine).get_table_names()
        assert "batch_id" not in {c["name"] for c in inspect(engine).get_columns("orders")}
        with engine.connect() as connection:
            assert connection.execute(text("SELECT status FROM orders")).scalars().all() == ["rejected"]
        upgrade(engine)
        assert "batches" in inspect(engine).get_table_names()
    finally:
        engine.dispose()
