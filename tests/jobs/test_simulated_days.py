"""Whole simulated days on a ManualClock: the job bodies at their intervals against the sandbox and the
Slack emulator. The figures are printed (``pytest -s``); the assertions are about noise, not speed."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from gatebot import monitor
from gatebot.money import Money
from tests.jobs.conftest import OPS, Harness

SEC = timedelta(seconds=1)
MIN = timedelta(minutes=1)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


def slack_figures(h: Harness) -> dict[str, int]:
    top = h.posts(OPS)
    replies = sum(len(h.thread(m)) for m in top)
    return {"messages": len(top), "thread replies": replies, "edits": h.slack_calls("chat.update")}


@pytest.mark.parametrize(("db_url", "harness_settings"), [
    ("sqlite", {"gatebot_health_interval": 60}),
    ("sqlite", {"gatebot_health_interval": 30}),
], indirect=True, ids=["probe-every-60s", "probe-every-30s"])
async def test_a_day_of_health_flapping_every_two_minutes_makes_a_handful_of_messages(
    h: Harness, harness_settings: dict[str, int]
) -> None:
    start = h.clock.now()
    probe = timedelta(seconds=harness_settings["gatebot_health_interval"])

    def flap(now: datetime) -> None:
        h.sim.faults.health_down = ((now - start) // (2 * MIN)) % 2 == 1

    await h.simulate(DAY, {"health": probe, "alerts": 5 * MIN}, before=flap)
    during = slack_figures(h)
    state = monitor.health_state(h.db)
    # then the API settles: the flapping alert resolves after its quiet period
    h.sim.faults.health_down = False
    await h.simulate(2 * HOUR, {"health": probe, "alerts": 5 * MIN})
    after = slack_figures(h)
    print(f"\nflapping day, probe every {probe.seconds} s: {during} during the day; {after} after settling; "
          f"fired {state.alert.fired_count}x, flapping={state.flapping}")
    assert during["messages"] <= 1
    assert during["messages"] + during["thread replies"] + during["edits"] <= 6
    assert after["messages"] + after["thread replies"] + after["edits"] <= 8
    final = monitor.health_state(h.db)
    assert not final.alert.open and not final.down


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_day_of_steady_spending_makes_one_alert_with_reminders(h: Harness) -> None:
    h.sim.set_balance("USD", "1000.00")

    async def spend(now: datetime) -> None:
        if now.minute % 30 == 0 and now < end:  # a USD 20 voucher every 30 minutes: USD 960 a day
            await h.buy(101)

    end = h.clock.now() + DAY
    await h.simulate(DAY, {"balance": 5 * MIN, "track": 5 * MIN, "alerts": 5 * MIN}, before=spend)
    figures = slack_figures(h)
    (alert,) = h.posts(OPS)
    thread = [m.text for m in h.thread(alert)]
    reminders = [t for t in thread if "Reminder" in t]
    escalations = [t for t in thread if "Escalated to critical" in t]
    spent = monitor.spent_last_24h(h.db, "USD", h.clock.now())
    print(f"\nspending day: {figures}; {len(reminders)} reminders, {len(escalations)} escalation; "
          f"spent {spent} in 24 h; {len(h.outcomes)} job runs")
    assert len(escalations) == 1
    assert len(reminders) == 2  # fired at ~12:45 h: reminders 4 h and 8 h later, then the escalation
    assert len(h.posts(OPS)) == 1  # one alert, not one per check
    last = h.ws.message(OPS, alert.ts)
    assert "Runway" in str(last.blocks) and "runs out around" in str(last.blocks)
    assert all(o.ok for o in h.outcomes)
    assert spent == Money.parse("960.00", "USD")


@pytest.mark.parametrize(("db_url", "harness_settings"), [("sqlite", {"gatebot_health_interval": 30})],
                         indirect=True)
async def test_health_probes_failing_fire_the_alert_while_business_calls_succeed(h: Harness) -> None:
    """``/health`` answers 503 for 90 s while the balance job succeeds every 2 s: the probes are their own
    signal, so the alert fires after N failed probes however many business calls work in between, and
    only a probe answering again resolves it (by editing the same message)."""
    fail_after = h.settings.gatebot_health_fail_after
    probe = timedelta(seconds=h.settings.gatebot_health_interval)
    h.sim.faults.health_down = True
    probes = h.sim.stats()["requests"].get("health", 0)
    await h.simulate(90 * SEC, {"balance": 2 * SEC, "health": probe})
    assert h.sim.stats()["requests"].get("health", 0) - probes == fail_after  # t = 0, 30, 60 s
    assert any(o.name == "balance" and o.ok for o in h.outcomes)  # business calls did succeed meanwhile
    (alert,) = h.posts(OPS)
    assert "Gate API down" in alert.text
    assert monitor.health_state(h.db).down

    # business calls alone do not resolve it: only the probe answering again does
    h.sim.faults.health_down = False
    await h.simulate(probe, {"balance": 2 * SEC, "health": probe})
    state = monitor.health_state(h.db)
    assert not state.down and not state.alert.open
    assert h.posts(OPS) == [alert]  # still exactly one message ...
    assert h.slack_calls("chat.update") >= 1  # ... edited in place to say so
    assert "Gate API recovered" in h.ws.message(OPS, alert.ts).text
