"""Finance exports over simulated days: orders and deposits placed across two digest periods, the daily digest
run by its job, then the ``ledger``, ``orders`` and ``deposits`` CSVs checked against what the digest said."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gatebot import monitor
from gatebot.clock import parse_when
from gatebot.finance.exports import Export, ExportError, build_export, safe_cell
from gatebot.money import Money
from gatebot.store.db import Database
from gatebot.store.models import Order
from tests.jobs.conftest import FINANCE, Harness

sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
MIN = timedelta(minutes=1)
FORMULA_REF = "=HYPERLINK(\"http://x.test\",\"pay\")"


def rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


async def a_day_of_business(h: Harness, deposit: str) -> None:
    for _ in range(2):
        await h.buy(101)  # USD 20.00 each
    h.sim.add_deposit("USD", deposit)
    h.clock.advance(2 * MIN)
    await h.run("track")
    await h.run("deposits")


@sqlite_only
async def test_the_ledger_chains_day_to_day_and_matches_the_digest(h: Harness) -> None:
    await h.run("deposits")
    await h.run("balance")  # the first reading opens the first digest period
    start = h.clock.now()
    await a_day_of_business(h, "300.00")
    h.clock.set(datetime(2026, 11, 25, 8, 0, tzinfo=UTC))
    first = (await h.run("digest")).result
    await a_day_of_business(h, "100.00")
    h.sim.set_balance("USD", "5000.00")  # money left without an order of ours: a mismatch on day two
    h.clock.set(datetime(2026, 11, 26, 8, 0, tzinfo=UTC))
    second = (await h.run("digest")).result
    assert isinstance(first, monitor.Digest) and isinstance(second, monitor.Digest)

    ledger = export_of(h.db, "ledger", since=start, until=h.clock.now(), currency="usd")
    day1, day2 = rows(ledger.text)
    assert (day1["day"], day2["day"]) == ("2026-11-25", "2026-11-26")
    assert day1["closing_balance"] == day2["opening_balance"] == "5260.00"
    (usd1,) = [line for line in first.lines if line.currency == "USD"]
    (usd2,) = [line for line in second.lines if line.currency == "USD"]
    assert (day1["opening_balance"], day1["deposits"], day1["spend"], day1["mismatch"]) == \
        (usd1.opening.as_api(), "300.00", "40.00", "0.00")  # type: ignore[union-attr]
    assert usd2.mismatch is not None and day2["mismatch"] == usd2.mismatch.as_api() == "-320.00"
    assert (day2["deposits"], day2["spend"], day2["expected_closing"]) == ("100.00", "40.00", "5320.00")
    assert day2["period_start"] == "2026-11-25T08:00:00Z" and day2["currency"] == "USD"
    # the window selects digests by the end of their period
    assert len(rows(export_of(h.db, "ledger", since=datetime(2026, 11, 25, 8, 0, tzinfo=UTC),
                                 until=h.clock.now(), currency="USD").text)) == 1
    assert rows(export_of(h.db, "ledger", since=start, until=h.clock.now(), currency="JPY").text) == []

    # the digest message names the export of exactly its figures
    found = re.search(r"/gate export ledger (\S+) (\S+)`", str(h.posts(FINANCE)[-1].blocks))
    assert found is not None
    since, until = (parse_when(t, now=h.clock.now()) for t in found.groups())
    linked = rows(export_of(h.db, "ledger", since=since, until=until, currency="USD").text)
    assert linked == [day2]

    # orders: one row each, money plain, no secret column; a formula-looking external_ref is escaped
    with h.db.session() as s:
        order = s.get(Order, 1)
        assert order is not None
        order.external_ref = FORMULA_REF  # e.g. an order adopted from Gate, placed by another client
        s.add(order)
        s.commit()
    orders = export_of(h.db, "orders", since=start, until=h.clock.now())
    listed = rows(orders.text)
    assert len(listed) == 4 and orders.rows == 4
    assert listed[0]["external_ref"] == "'" + FORMULA_REF
    assert listed[0]["charged_cost"] == "20.00" and listed[0]["currency"] == "USD"
    assert listed[0]["kind"] == "redeem_card" and listed[0]["created_at"].endswith("Z")
    assert not {"voucher_code", "code", "pin", "customer_account", "account"} & set(listed[0])

    deposits = rows(export_of(h.db, "deposits", since=start, until=h.clock.now()).text)
    assert [(d["amount"], d["status"]) for d in deposits] == [("300.00", "posted"), ("100.00", "posted")]


def test_spreadsheet_safe_cells() -> None:
    for text in ("=1+2", "+1", "-1", "@SUM(A1)", "\t=x"):
        assert safe_cell(text) == "'" + text
    assert safe_cell("INV-1001") == "INV-1001"
    assert safe_cell(Money.parse("-260", "USD")) == "-260.00"  # our own numbers stay numbers
    assert safe_cell(datetime(2026, 11, 24, 10, 0, tzinfo=UTC)) == "2026-11-24T10:00:00Z"


def test_bad_export_arguments_say_what_is_wrong() -> None:
    when = datetime(2026, 11, 24, tzinfo=UTC)
    with pytest.raises(ExportError, match="unknown export 'sales': use one of orders, deposits, ledger"):
        build_export(None, "sales", since=when, until=when + MIN)  # type: ignore[arg-type]
    with pytest.raises(ExportError, match="--until must be after --since"):
        build_export(None, "orders", since=when, until=when)  # type: ignore[arg-type]
    with pytest.raises(ExportError, match="--currency 'dollars': use a 3-letter code"):
        build_export(None, "orders", since=when, until=when + MIN, currency="dollars")  # type: ignore[arg-type]


def export_of(db: Database, kind: str, **window: Any) -> Export:
    with db.session() as s:
        return build_export(s, kind, **window)
