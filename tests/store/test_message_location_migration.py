"""Migration 0004: rows written with the packed ``origin_ts`` (``claim:``, ``dm:``, ts) become typed columns.

The rows are written exactly as gatebot wrote them before 0004 (raw SQL at revision 0003), on SQLite and
PostgreSQL; the upgrade converts them, and the downgrade packs them back.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, text
from sqlmodel import select

from gatebot.store.db import Database, downgrade, make_engine, upgrade
from gatebot.store.models import Order

CLAIM_EPOCH = 1_764_855_000  # 2025-12-04 13:30:00 UTC
PACKED = {
    1: None,  # nothing posted yet
    2: "1764855600.000100",  # in origin_channel
    3: "dm:1764855601.000200",  # in the requester's DM
    4: f"claim:{CLAIM_EPOCH:012d}",  # a process was posting the first message
}


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


def _write_packed_rows(engine: Engine) -> None:
    created = "2026-11-24 09:00:00" if engine.dialect.name == "sqlite" else "2026-11-24 09:00:00+00"
    with engine.begin() as connection:
        for order_id, packed in PACKED.items():
            connection.execute(
                text(
                    "INSERT INTO orders (id, external_ref, idempotency_key, product_id, product_name, product_type,"
                    " currency, quantity, status, is_test, request_body_enc, requester, origin_channel, origin_ts,"
                    " dm_sent, attempts, created_at, updated_at) VALUES (:id, :ref, :key, 456, 'Steam', "
                    "'direct_top_up', 'USD', 1, 'pending', false, 'p1:{}', 'U123', 'COPS', :packed, false, 1, "
                    ":created, :created)"
                ),
                {"id": order_id, "ref": f"INV-{order_id}", "key": f"k{order_id}", "packed": packed,
                 "created": created},
            )


def test_packed_origin_ts_becomes_typed_columns_and_back(engine: Engine) -> None:
    upgrade(engine, "0003")
    _write_packed_rows(engine)

    upgrade(engine)  # 0004, and later revisions that leave these columns alone (the models read the head)
    db = Database(engine)
    with db.session() as s:
        orders = {o.id: o for o in s.exec(select(Order)).all()}
    assert (orders[1].message_ts, orders[1].message_in_dm, orders[1].message_claimed_at) == (None, False, None)
    assert (orders[2].message_ts, orders[2].message_in_dm, orders[2].message_claimed_at) == (
        "1764855600.000100", False, None)
    assert (orders[3].message_ts, orders[3].message_in_dm, orders[3].message_claimed_at) == (
        "1764855601.000200", True, None)
    assert (orders[4].message_ts, orders[4].message_in_dm) == (None, False)
    assert orders[4].message_claimed_at == datetime.fromtimestamp(CLAIM_EPOCH, UTC)

    downgrade(engine, "0003")
    with engine.connect() as connection:
        result = connection.execute(text("SELECT id, origin_ts FROM orders"))
        rows: dict[int, str | None] = {row[0]: row[1] for row in result}
    assert rows == PACKED
