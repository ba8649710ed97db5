"""The app's HTTP face and its commands: signatures, /healthz, App Home, and every /gate subcommand."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest

from gatebot import monitor
from gatebot.alerts import AlertPolicy, BalanceReading, HealthObservation
from gatebot.money import Money
from gatebot.orders import OrderDraft
from gatebot.slack import ids
from gatebot.store import repo

from .conftest import ADMIN, FINANCE, NO_BOT_CHANNEL, NOBODY, OPS, OPS_CHANNEL, SUPPORT, Harness


@pytest.mark.parametrize("signing", [{"secret": "forged-secret"}, {"timestamp_skew": -6 * 60}, {"unsigned": True}],
                         ids=["forged signature", "stale timestamp", "unsigned"])
async def test_bad_signatures_are_answered_401(harness: Harness, signing: dict[str, Any]) -> None:
    h = harness
    forged = h.driver.with_signing(**signing)
    result = await forged.slash_command(OPS, "balance", channel=OPS_CHANNEL)
    assert result.status == 401
    event = await forged.app_home_opened(OPS)
    assert event.status == 401
    assert h.ws.ephemerals() == [] and h.ws.calls("views.publish") == []


async def test_url_verification_is_echoed(harness: Harness) -> None:
    answer = await harness.driver.url_verification("challenge-123")
    assert answer.status == 200 and answer.json() == {"challenge": "challenge-123"}


@pytest.mark.parametrize("settings_overrides", [{"gatebot_health_token": "app-health-token-0123"}])
async def test_healthz_reports_database_circuit_jobs_and_scheduler(harness: Harness) -> None:
    h = harness
    async with httpx.AsyncClient(base_url=h.server.url,
                                 headers={"Authorization": "Bearer app-health-token-0123"}) as http:
        assert (await http.get("/healthz", headers={"Authorization": ""})).status_code == 401
        before = await http.get("/healthz")
        assert before.status_code == 503  # no instance runs the jobs yet
        body = before.json()
        assert body["status"] == "degraded" and body["database"] == {"ok": True}
        assert body["gate"]["circuit_open"] is False
        assert body["scheduler"]["ok"] is False and body["scheduler"]["lease"]["holder"] is None

        now = h.clock.now()
        with h.core.db.session() as s:
            assert repo.try_acquire_lease(s, monitor.SCHEDULER_LEASE, "web-1:42:abc", now, 60)
            s.commit()
        monitor.register_job(h.core.db, "track", timedelta(seconds=30), now)
        monitor.record_job_run(h.core.db, "track", interval=timedelta(seconds=30), started=now, finished=now)
        healthy = await http.get("/healthz")
        assert healthy.status_code == 200, healthy.text
        body = healthy.json()
        assert body["status"] == "ok" and body["scheduler"]["lease"]["holder"] == "web-1:42:abc"
        assert body["jobs"][0]["name"] == "track" and body["jobs"][0]["ok"] is True

        h.clock.advance(timedelta(minutes=10))  # the tracker missed three intervals; the lease lapsed
        late = await http.get("/healthz")
        assert late.status_code == 503
        assert late.json()["jobs"][0]["ok"] is False


async def test_home_tab_per_role_and_event_retries(harness: Harness) -> None:
    h = harness
    await h.core.orders.place(OrderDraft(product=101, requester=OPS, origin_channel=OPS_CHANNEL))
    first = await h.driver.app_home_opened(OPS)
    assert first.status == 200
    home = await h.wait(lambda: h.ws.home_view(OPS), "the Home tab")
    text = str(home.blocks)
    assert ids.HOME_NEW_ORDER in text, "ops get the New order button"
    assert "USD 5,000.00" in text and "warning" in text, "balances with their threshold status"
    assert "#1" in text, "the viewer's recent orders"
    assert "Gate circuit" in text and "Open alerts" in text

    retry = await h.driver.app_home_opened(OPS, event_id=first.event_id, retry_num=1)
    assert retry.status == 200
    await h.settle()
    assert len(h.ws.calls("views.publish")) == 1, "Slack's retry of a handled event is dropped"

    await h.driver.app_home_opened(NOBODY)
    nobody = await h.wait(lambda: h.ws.home_view(NOBODY), "the Home tab of someone without a role")
    text = str(nobody.blocks)
    assert ids.HOME_NEW_ORDER not in text and "don't have a gatebot role" in text and "USD" not in text


async def test_unknown_subcommand_and_bad_arguments_show_the_usage(harness: Harness) -> None:
    h = harness
    result = await h.command(OPS, "blance")
    assert result.ephemeral is not None, "answered in the ack itself"
    assert "I don't know the command `blance`. Did you mean `balance`?" in result.ephemeral.text
    assert "Usage: `/gate help [command] | order &lt;ref&gt; | orders" in str(result.ephemeral.blocks)
    result = await h.command(SUPPORT, "orders <!subteam^S1|@ops>")
    assert result.ephemeral is not None and "a user group can't be used here" in result.ephemeral.text


async def test_help_shows_only_what_the_role_allows(harness: Harness) -> None:
    h = harness
    await h.command(FINANCE, "help")
    finance = await h.reply_to(FINANCE)
    assert finance.text == "gatebot commands: help, balance, deposits, health, approvals, export"
    await h.command(ADMIN, "")  # empty text is help
    admin = await h.reply_to(ADMIN)
    assert admin.text == ("gatebot commands: help, order, orders, balance, deposits, buy, bulk, products, health, "
                          "approvals, export")
    await h.command(NOBODY, "help buy")
    refused = await h.reply_to(NOBODY)
    assert "*ops* role" in refused.text


async def test_balance_shows_threshold_status_per_currency(harness: Harness) -> None:
    h = harness
    await h.command(FINANCE, "balance")
    reply = await h.reply_to(FINANCE)
    text = str(reply.blocks)
    assert "USD 5,000.00* — warning (warning at USD 6,000.00, critical at USD 1,000.00)" in text
    assert "EUR 2,500.00* — ok" in text
    assert "GBP 800.00* — no alert threshold set" in text
    # when gatebot read it, not when Gate's balance last changed (a deposit weeks ago read as stale data)
    assert f"Read from Gate <!date^{int(h.clock.now().timestamp())}^" in text
    assert "as of" not in text


async def test_deposits_products_and_health(harness: Harness) -> None:
    h = harness
    await h.command(FINANCE, "deposits")
    deposits = await h.reply_to(FINANCE)
    assert deposits.text == "Recent deposits: 6" and "WIRE-2006" in str(deposits.blocks)

    await h.command(OPS, "products top-up gbp")
    products = await h.reply_to(OPS)
    assert "Vodafone UK Mobile Top-Up" in str(products.blocks) and "Steam" not in str(products.blocks)

    await h.command(NOBODY, "health")  # anyone may check health
    health = await h.reply_to(NOBODY)
    text = str(health.blocks)
    assert "Gate API /health" in text and "HTTP 200 ok" in text and "Gate circuit" in text
    assert "Database" in text and "Scheduler" in text


async def test_orders_lists_and_filters(harness: Harness) -> None:
    h = harness
    await h.core.orders.place(OrderDraft(product=101, requester=OPS, origin_channel=OPS_CHANNEL))
    await h.core.orders.place(OrderDraft(product=199, requester=ADMIN, origin_channel=NO_BOT_CHANNEL))
    await h.complete()  # 199 always fails
    answers: dict[str, str] = {}
    for n, text in enumerate(["orders", "orders failed", "orders pending", "orders mine", f"orders <@{OPS}|bob>",
                              f"orders <#{NO_BOT_CHANNEL}|general>"]):
        await h.command(SUPPORT, text)
        answers[text] = (await h.reply_to(SUPPORT, after=n)).text
    assert answers["orders"].startswith("Recent orders: 2 orders (#2 failed, #1 completed")
    assert answers["orders failed"].startswith("Failed and rejected orders: 1 orders (#2 failed")
    assert answers["orders pending"] == "Open orders (not finished yet): no orders"
    assert answers["orders mine"] == "Your orders: no orders"
    assert answers[f"orders <@{OPS}|bob>"].startswith("Orders by that person: 1 orders (#1 completed")
    assert answers[f"orders <#{NO_BOT_CHANNEL}|general>"].startswith("Orders from that channel: 1 orders (#2")


async def test_buy_with_an_empty_catalog_loads_it_after_opening_the_form(harness: Harness) -> None:
    h = harness
    with h.core.db.session() as s:  # forget the catalog loaded by the harness
        repo.kv_delete(s, repo.CATALOG_REFRESHED_KEY)
        s.commit()
    view = await h.open_modal(OPS, "buy")
    await h.wait(lambda: view.updates >= 1, "the note after loading the catalog")
    assert "Loaded 14 products from Gate" in str(view.blocks)


async def test_open_alerts_show_in_balance_and_home_and_the_circuit_refuses_orders(harness: Harness) -> None:
    h = harness
    policy = AlertPolicy.from_settings(h.core.settings)
    thresholds = h.core.settings.gatebot_low_balance["USD"]
    for _ in range(policy.fire_after):  # USD 5,000 is below the 6,000 warning level
        monitor.check_balance(h.core.db, BalanceReading(balance=Money.parse("5000", "USD")), h.clock.now(), policy,
                              thresholds=thresholds)
    await h.command(FINANCE, "balance")
    balance = await h.reply_to(FINANCE)
    assert "USD 5,000.00* — warning" in str(balance.blocks) and "alert firing" in str(balance.blocks)
    await h.driver.app_home_opened(FINANCE)
    home = await h.wait(lambda: h.ws.home_view(FINANCE), "the Home tab")
    assert "Open alerts* (1)" in str(home.blocks)

    failures = [HealthObservation(ok=False, detail="HTTP 503")] * policy.health_fail_after
    monitor.observe_health(h.core.db, failures, h.clock.now(), policy)
    assert monitor.circuit_open(h.core.db)
    view = await h.open_modal(OPS, "buy steam gift card 20")
    result = await h.submit(OPS, view)
    assert result.errors == {ids.ORDER_PRODUCT: "The Gate API is down right now (its circuit is open), so no "
                                                "order was sent. Try again when it has recovered — see /gate "
                                                "health."}
    assert h.gate_creates() == 0
    await h.command(NOBODY, "health")
    health = await h.reply_to(NOBODY)
    assert "Gate circuit* — open: Gate is failing, new orders are refused until it recovers" in str(health.blocks)


async def test_a_failing_listener_is_answered_politely(harness: Harness, monkeypatch: pytest.MonkeyPatch,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    h = harness

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the store exploded")

    monkeypatch.setattr(h.deps.status, "open_alerts", broken)
    await h.command(FINANCE, "balance")  # fails after the ack
    apology = await h.reply_to(FINANCE)
    assert apology.text.startswith("Sorry — something went wrong on gatebot's side")
    assert "unhandled RuntimeError in a Slack command listener" in caplog.text

    monkeypatch.setattr(repo, "search_products", broken)  # fails before the ack: an options load
    view = await h.open_modal(OPS, "buy")
    result = await h.driver.select_options(OPS, view, ids.ORDER_PRODUCT, "steam")
    assert result.status == 200 and result.options == []
