"""``GET /metrics`` on the real web app: scraped over HTTP after an order, a Gate fault, an alert and a slash
command, parsed with ``prometheus_client``'s own parser; every family is there with the expected values and
nothing secret is in the scrape."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from gatebot import monitor
from gatebot.alerts import AlertPolicy, BalanceReading
from gatebot.clock import ManualClock
from gatebot.gate import GateError
from gatebot.metrics import StoreCollector, render
from gatebot.money import Money
from gatebot.orders import OrderDraft
from tests.scenarios.conftest import ADMIN, ENCRYPTION_KEY, SECRET, Harness

ACCOUNT_VALUE = "player123secret"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: str) -> tuple[Samples, set[str]]:
    """Every sample by (name, labels), and the family names, as prometheus_client parses them."""
    out: Samples = {}
    families: set[str] = set()
    for family in text_string_to_metric_families(text):
        families.add(family.name)
        s: Sample
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out, families


def value(found: Samples, name: str, **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


def total(found: Samples, name: str, **labels: str) -> float:
    """Sum over the samples of ``name`` whose labels include ``labels``."""
    want = set(labels.items())
    return sum(v for (n, ls), v in found.items() if n == name and want <= ls)


def label_values(found: Samples, names: Iterable[str]) -> set[str]:
    return {v for (n, ls), _ in found.items() if n in names for _, v in ls}


async def scrape(h: Harness) -> str:
    async with httpx.AsyncClient(base_url=h.server.url) as http:
        response = await http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return response.text


async def test_metrics_after_an_order_a_gate_fault_and_an_alert(harness: Harness) -> None:
    h = harness
    before, _ = samples(await scrape(h))

    # an order (a voucher: completes with a code) and a top-up with a customer account value
    voucher = await h.core.orders.place(OrderDraft(product=101, requester=ADMIN))
    await h.core.orders.place(OrderDraft(product=456, requester=ADMIN, amount="10.00",
                                         account={"steam_login": ACCOUNT_VALUE}))
    await h.complete()
    # a Gate fault: one 429 (retried at once) then an unreadable answer
    h.sim.faults.update({"rate_limit_burst": 1, "retry_after": 0})
    await h.core.gate.get_balance()
    h.sim.faults.update({"garbage_next": 1})
    with pytest.raises(GateError):
        await h.core.gate.get_balance()
    # an alert: the balance reads low (critical) long enough to fire
    now = h.clock.now()
    policy = AlertPolicy.from_settings(h.core.settings)
    usd = Money.parse("500.00", "USD")
    monitor.record_readings(h.core.db, [usd], now)
    for i in range(5):
        monitor.check_balance(h.core.db, BalanceReading(balance=usd), now + timedelta(minutes=i), policy,
                              thresholds=h.core.settings.gatebot_low_balance["USD"])
    monitor.record_job_run(h.core.db, "balance", interval=timedelta(minutes=5), started=now,
                           finished=now + timedelta(milliseconds=250))
    # a slash command through the real endpoint (ack latency)
    await h.command(ADMIN, "help")
    await h.settle()

    text = await scrape(h)
    after, families = samples(text)

    def delta(name: str, **labels: str) -> float:
        return total(after, name, **labels) - total(before, name, **labels)

    expected = {
        "gatebot_orders", "gatebot_gate_calls", "gatebot_gate_call_duration_seconds", "gatebot_gate_retries",
        "gatebot_gate_rate_limited", "gatebot_gate_circuit_open", "gatebot_balance", "gatebot_balance_threshold",
        "gatebot_balance_alert_level", "gatebot_open_alerts", "gatebot_job_last_success_timestamp_seconds",
        "gatebot_job_last_duration_seconds", "gatebot_job_on_time", "gatebot_slack_api_calls",
        "gatebot_slack_ack_duration_seconds", "gatebot_scheduler_lease_active", "gatebot_store_up",
    }
    assert expected <= families, expected - families

    assert value(after, "gatebot_orders", status="completed", kind="redeem_card") == 1
    assert total(after, "gatebot_orders", kind="direct_top_up") == 1
    assert delta("gatebot_gate_calls_total", endpoint="POST /orders", outcome="ok") == 2
    assert delta("gatebot_gate_calls_total", endpoint="GET /balance", outcome="rate_limited") == 1
    assert delta("gatebot_gate_calls_total", endpoint="GET /balance", outcome="bad_response") == 1
    assert delta("gatebot_gate_rate_limited_total", endpoint="GET /balance") == 1
    assert delta("gatebot_gate_retries_total", endpoint="GET /balance") == 1
    assert delta("gatebot_gate_call_duration_seconds_count", endpoint="GET /balance") == \
        delta("gatebot_gate_calls_total", endpoint="GET /balance") >= 3
    assert delta("gatebot_gate_calls_total", endpoint="GET /orders/{id}") >= 1  # the tracker
    assert value(after, "gatebot_gate_circuit_open") == 0
    assert value(after, "gatebot_balance", currency="USD") == 500.0
    assert value(after, "gatebot_balance_threshold", currency="USD", level="critical") == 1000.0
    assert value(after, "gatebot_balance_alert_level", currency="USD") == 2
    assert value(after, "gatebot_open_alerts", kind="balance", state="firing") == 1
    assert value(after, "gatebot_job_last_success_timestamp_seconds", job="balance") == \
        (now + timedelta(milliseconds=250)).timestamp()
    assert value(after, "gatebot_job_last_duration_seconds", job="balance") == 0.25
    assert value(after, "gatebot_job_on_time", job="balance") == 1
    assert delta("gatebot_slack_api_calls_total", error="none") >= 1  # the notifier's posts
    assert delta("gatebot_slack_ack_duration_seconds_count") == 1
    assert value(after, "gatebot_scheduler_lease_active") == 0

    # nothing secret, no code, no account value, no order or user id in a label
    completed = await h.core.orders.find(str(voucher.id))
    assert completed is not None
    codes = h.codes(completed)
    assert codes
    # Whole tokens: a 4-digit PIN may turn up inside a latency figure (0.0039668279…) by chance.
    tokens = set(re.findall(r"[\w.:+/=-]+", text))
    for secret in [ACCOUNT_VALUE, SECRET, ENCRYPTION_KEY, h.ws.bot_token, h.core.settings.effective_gate_key,
                   *codes]:
        assert secret not in tokens and not any(secret in t for t in tokens if not _is_number(t))
    labels = label_values(after, {n for n, _ in after})
    assert ADMIN not in labels and voucher.external_ref not in labels and str(voucher.gate_order_id) not in labels


def test_the_leader_gauge_and_an_unreadable_store() -> None:
    from gatebot.store.db import Database, make_engine

    db = Database(make_engine("sqlite:////nonexistent-dir/gatebot.db"))
    clock = ManualClock()
    found, _ = samples(render(None, StoreCollector(db, now=clock.now, leader=lambda: True)).decode())
    assert value(found, "gatebot_leader") == 1
    assert value(found, "gatebot_store_up") == 0


def test_gatebot_clock_serves_metrics_on_its_own_port(tmp_path: Path) -> None:
    from gatebot.metrics import serve_metrics
    from gatebot.store.db import Database, make_engine, upgrade

    engine = make_engine(f"sqlite:///{tmp_path / 'clock.db'}")
    upgrade(engine)
    clock = ManualClock()
    leader = [False]
    port, stop = serve_metrics(0, StoreCollector(Database(engine), now=clock.now, leader=lambda: leader[0]),
                               addr="127.0.0.1")
    try:
        leader[0] = True
        response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
        found, families = samples(response.text)
        assert response.status_code == 200
        assert value(found, "gatebot_leader") == 1 and value(found, "gatebot_store_up") == 1
        assert {"gatebot_orders", "gatebot_gate_calls", "gatebot_slack_ack_duration_seconds"} <= families
    finally:
        stop()
        engine.dispose()


@pytest.mark.slow
def test_counters_add_up_over_processes_in_multiprocess_mode(tmp_path: Path) -> None:
    """Two processes count Gate calls into PROMETHEUS_MULTIPROC_DIR; a third one's scrape has the sum."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    count = ("from gatebot.gate.client import CallAttempt; from gatebot.metrics import default_metrics; "
             "[default_metrics().gate_call(CallAttempt('balance', 'ok', 0.1)) for _ in range({n})]")
    for n in (2, 3):
        subprocess.run([sys.executable, "-c", count.format(n=n)], env=env, check=True, timeout=60)
    out = subprocess.run([sys.executable, "-c", "import sys; from gatebot.metrics import render; "
                          "sys.stdout.write(render().decode())"], env=env, check=True, timeout=60,
                         capture_output=True, text=True).stdout
    found, _ = samples(out)
    assert value(found, "gatebot_gate_calls_total", endpoint="GET /balance", outcome="ok") == 5
    assert value(found, "gatebot_gate_call_duration_seconds_count", endpoint="GET /balance") == 5


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True
