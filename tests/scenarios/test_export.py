"""``/gate export``: finance (and admins) get the CSV in their DM through ``files_upload_v2`` against the
emulator; anyone else is refused; a bad window is explained in one line."""

from __future__ import annotations

import csv
import io

from gatebot.orders import OrderDraft
from gatebot.store import repo
from tests.scenarios.conftest import ADMIN, FINANCE, NOBODY, SUPPORT, Harness

ACCOUNT_VALUE = "player123secret"


async def test_finance_gets_the_orders_csv_by_dm(harness: Harness) -> None:
    h = harness
    await h.core.orders.place(OrderDraft(product=101, requester=ADMIN))
    await h.core.orders.place(OrderDraft(product=456, requester=ADMIN, amount="10.00",
                                         account={"steam_login": ACCOUNT_VALUE}))
    await h.complete()

    await h.command(FINANCE, "export orders 1d")
    reply = await h.reply_to(FINANCE)
    assert "by direct message" in reply.text and "gatebot-orders-" in reply.text
    (uploaded,) = h.ws.files.values()
    dm = h.ws.dm_channel(FINANCE).id
    assert [channel for channel, _ in uploaded.shares] == [dm]
    assert uploaded.filename.startswith("gatebot-orders-") and uploaded.filename.endswith(".csv")
    rows = list(csv.DictReader(io.StringIO(uploaded.text)))
    assert [r["product_id"] for r in rows] == ["101", "456"]
    assert rows[0]["status"] == "completed" and rows[1]["kind"] == "direct_top_up"
    assert ACCOUNT_VALUE not in uploaded.text
    for order in h.orders():
        for code in h.codes(order):
            assert code not in uploaded.text
    assert h.ws.messages(dm)[-1].text == "Your orders export: 2 row(s)."
    with h.core.db.session() as s:
        (entry,) = [a for a in repo.recent_audit(s, limit=50) if a.action == "export.orders"]
    assert entry.actor == FINANCE and entry.allowed

    await h.command(ADMIN, "export ledger 30d")  # admins may do everything
    assert "0 row(s)" in (await h.reply_to(ADMIN)).text


async def test_export_is_refused_without_the_finance_role_and_bad_windows_are_explained(harness: Harness) -> None:
    h = harness
    for user in (SUPPORT, NOBODY):
        await h.command(user, "export orders")
        assert "finance" in (await h.reply_to(user)).text
    assert h.ws.files == {}
    await h.command(FINANCE, "export orders 2026-12-01 2026-11-01")
    assert "until must be after since" in (await h.reply_to(FINANCE)).text
    result = await h.driver.slash_command(FINANCE, "export ledger yesterday", channel="COPS")
    assert "`yesterday` is not a time" in result.text
    assert h.ws.files == {}
