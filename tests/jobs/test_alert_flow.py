"""Every alert rule end to end: job bodies -> monitor (the store) -> AlertPoster -> the Slack emulator.

The Gate sandbox runs in-process on the same ManualClock; time only moves when a test moves it.
USD thresholds are 500 (warning) / 100 (critical); the hysteresis margin is 10 % of the warning level,
so an alert clears only above USD 550.00 (defaults: fire after 3 readings, clear after 2, remind every 4 h).
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from gatebot import monitor
from gatebot.orders import GateDown, OrderDraft
from tests.jobs.conftest import FINANCE, HOME, OPS, Harness

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)

MIN = timedelta(minutes=1)
HOUR = timedelta(hours=1)


def text_of(message: object) -> str:
    """Everything a person reads in a message: fallback text and all block text."""
    import json

    blocks = getattr(message, "blocks", None) or []
    return f"{getattr(message, 'text', '')} {json.dumps(blocks)}"


async def fire_usd_low(h: Harness, amount: str = "450.00") -> None:
    h.sim.set_balance("USD", amount)
    for _ in range(3):
        await h.run("balance")
        h.clock.advance(5 * MIN)


async def test_low_balance_fires_after_n_readings_and_is_edited_in_place(h: Harness) -> None:
    h.sim.set_balance("USD", "450.00")
    for _ in range(2):
        assert (await h.run("balance")).ok
        h.clock.advance(5 * MIN)
    assert h.posts(OPS) == []  # two low readings are not enough

    await h.run("balance")
    (alert,) = h.posts(OPS)
    assert "USD balance low" in alert.text
    assert "USD 450.00" in text_of(alert)
    assert "Acknowledge" in text_of(alert) and HOME in text_of(alert)  # buttons and the link
    state = monitor.alert_state(h.db, "balance:USD")
    assert state is not None and (state.alert.channel, state.alert.ts) == (OPS, alert.ts)

    h.clock.advance(5 * MIN)
    h.sim.set_balance("USD", "430.00")
    await h.run("balance")
    assert len(h.posts(OPS)) == 1  # still one message ...
    edited = h.ws.message(OPS, alert.ts)
    assert edited.edited and "USD 430.00" in text_of(edited)  # ... edited with the current balance


async def test_hysteresis_and_all_clear_with_the_deposit_as_cause(h: Harness) -> None:
    await h.run("deposits")  # first run: takes note of the history, announces nothing
    assert h.posts(FINANCE) == []
    await fire_usd_low(h)
    (alert,) = h.posts(OPS)

    h.sim.set_balance("USD", "520.00")  # above the warning level, but not above warning + margin (550)
    for _ in range(4):
        await h.run("balance")
        h.clock.advance(5 * MIN)
    state = monitor.alert_state(h.db, "balance:USD")
    assert state is not None and state.alert.open
    assert "stays until it is above USD 550.00" in text_of(h.ws.message(OPS, alert.ts))

    deposit = h.sim.add_deposit("USD", "500.00", method="bank_wire", external_ref="WIRE-9")
    await h.run("deposits")
    (announcement,) = h.posts(FINANCE)
    assert f"Deposit #{deposit['id']} posted: USD 500.00" in announcement.text
    await h.run("balance")
    h.clock.advance(5 * MIN)
    assert monitor.alert_state(h.db, "balance:USD").alert.open  # type: ignore[union-attr]  # one good reading
    await h.run("balance")

    resolved = h.ws.message(OPS, alert.ts)
    assert "Resolved" in text_of(resolved) and "Acknowledge" not in text_of(resolved)  # no buttons any more
    notes = [m.text for m in h.thread(alert)]
    assert any(f"deposit #{deposit['id']} of USD 500.00 posted" in n for n in notes), notes
    assert len(h.posts(OPS)) == 1


async def test_reminders_every_repeat_interval_until_acked(h: Harness) -> None:
    await fire_usd_low(h)
    (alert,) = h.posts(OPS)
    await h.simulate(9 * HOUR - MIN, {"balance": 5 * MIN, "alerts": 5 * MIN})
    reminders = [m for m in h.thread(alert) if "Reminder" in m.text]
    assert len(reminders) == 2  # at 4 h and at 8 h: one per interval, never a burst

    notes = monitor.ack_alert(h.db, "balance:USD", by="UBOB", now=h.clock.now())
    await h.poster.deliver(notes)
    acked = h.ws.message(OPS, alert.ts)
    assert "Acknowledged by <@UBOB>" in text_of(acked)
    await h.simulate(9 * HOUR, {"balance": 5 * MIN, "alerts": 5 * MIN})
    assert len([m for m in h.thread(alert) if "Reminder" in m.text]) == 2  # none after the ack
    assert len(h.posts(OPS)) == 1


async def test_level_change_is_announced_both_ways(h: Harness) -> None:
    await fire_usd_low(h)
    (alert,) = h.posts(OPS)
    h.sim.set_balance("USD", "80.00")
    for _ in range(3):
        await h.run("balance")
        h.clock.advance(5 * MIN)
    assert "critically low" in text_of(h.ws.message(OPS, alert.ts))
    assert any("Escalated to critical" in m.text for m in h.thread(alert))

    h.sim.set_balance("USD", "300.00")  # above critical + margin (150): back to warning after 2 readings
    for _ in range(2):
        await h.run("balance")
        h.clock.advance(5 * MIN)
    assert any("Lowered to warning" in m.text for m in h.thread(alert))
    assert "critically" not in h.ws.message(OPS, alert.ts).text
    assert len(h.posts(OPS)) == 1


async def test_snooze_expires_by_itself_with_a_reminder(h: Harness) -> None:
    await fire_usd_low(h)
    (alert,) = h.posts(OPS)
    await h.poster.deliver(monitor.snooze_alert(h.db, "balance:USD", by="UCAROL", duration=HOUR,
                                                now=h.clock.now()))
    assert "Snoozed until" in text_of(h.ws.message(OPS, alert.ts))
    before = len(h.thread(alert))
    await h.simulate(HOUR - 2 * MIN, {"alerts": MIN})
    assert len(h.thread(alert)) == before  # quiet while snoozed
    await h.simulate(3 * MIN, {"alerts": MIN})
    (ended,) = h.thread(alert)[before:]
    assert "Snooze ended; still firing" in ended.text
    assert "Firing" in text_of(h.ws.message(OPS, alert.ts))


async def test_inhibition_while_the_api_is_down_and_recovery_with_the_outage_duration(h: Harness) -> None:
    h.sim.faults.health_down = True
    for _ in range(3):
        await h.run("health")
        h.clock.advance(MIN)
    (down,) = h.posts(OPS)
    assert "Gate API down" in down.text
    assert monitor.circuit_open(h.db)
    with pytest.raises(GateDown, match="down right now"):  # new orders are refused up front
        await h.buy()

    h.sim.set_balance("USD", "50.00")
    for _ in range(4):  # the balance job skips while the circuit is open ...
        outcome = await h.run("balance")
        assert outcome.skipped == "Gate API down (circuit open)"
        h.clock.advance(5 * MIN)
    for _ in range(4):  # ... and a reading that does arrive is held back: no alert storm from one cause
        from gatebot.jobs import run_balance_check

        assert await run_balance_check(h.ctx) == []
    assert len(h.posts(OPS)) == 1

    h.clock.advance(40 * MIN)
    h.sim.faults.health_down = False
    await h.run("health")
    resolved = h.ws.message(OPS, down.ts)
    assert "Gate API recovered" in resolved.text
    assert any("answers again after 1 h" in m.text for m in h.thread(down))  # the outage duration
    assert not monitor.circuit_open(h.db)

    for _ in range(3):
        await h.run("balance")
        h.clock.advance(5 * MIN)
    assert [m.text for m in h.posts(OPS)][1].startswith("CRITICAL")  # now the balance alert may fire


async def test_an_open_balance_alert_holds_its_reminders_during_an_outage(h: Harness) -> None:
    await fire_usd_low(h)
    (balance,) = h.posts(OPS)
    h.sim.faults.health_down = True
    await h.simulate(6 * HOUR, {"health": MIN, "balance": 5 * MIN, "alerts": 5 * MIN})
    balance_alert, health_alert = h.posts(OPS)
    assert balance_alert.ts == balance.ts and "Gate API down" in health_alert.text
    assert not any("Reminder" in m.text for m in h.thread(balance))  # inhibited: one root cause, one alert
    assert any("Reminder" in m.text for m in h.thread(health_alert))  # the root cause itself reminds

    h.sim.faults.health_down = False
    await h.simulate(5 * HOUR, {"health": MIN, "balance": 5 * MIN, "alerts": 5 * MIN})
    assert any("Reminder" in m.text for m in h.thread(balance))  # back to normal handling
    assert len(h.posts(OPS)) == 2


async def test_failed_real_calls_count_towards_the_health_alert(h: Harness) -> None:
    h.sim.faults.health_down = True
    h.sim.faults.error_rate = 1.0
    await h.run("balance")  # two attempts, both 503: recorded by the client's on_attempt hook
    await h.run("balance")
    assert h.outcomes[-1].error is not None and "GateUnavailable" in h.outcomes[-1].error
    await h.run("health")  # 4 failed calls + 1 failed probe: down at once, not after 3 probes
    (down,) = h.posts(OPS)
    assert "Gate API down" in down.text
    assert "balance call failed" in text_of(down) or "HTTP 503" in text_of(down)


async def test_probes_back_off_exponentially_while_down(h: Harness) -> None:
    h.sim.faults.health_down = True
    probes_before = h.sim.stats()["requests"].get("health", 0)
    await h.simulate(30 * MIN, {"health": MIN})
    probes = h.sim.stats()["requests"].get("health", 0) - probes_before
    # 3 probes to go down, then waits of 2, 4, 8, 15 (capped) minutes: far fewer than 31
    assert 5 <= probes <= 8, probes


async def test_a_restart_continues_the_same_message(h: Harness) -> None:
    await fire_usd_low(h)
    (alert,) = h.posts(OPS)

    # A new process: new poster, new job context, new Database object over the same store.
    from gatebot.runtime import job_context
    from gatebot.store.db import Database, make_engine

    db2 = Database(make_engine(h.db.engine.url))
    try:
        core2 = type(h.core)(**{**h.core.__dict__, "db": db2})
        poster2 = h.new_poster()
        poster2.db = db2
        ctx2 = job_context(core2, poster2)
        h.ctx = ctx2
        h.sim.set_balance("USD", "420.00")
        await h.run("balance")
        await h.simulate(4 * HOUR + MIN, {"alerts": MIN})
    finally:
        db2.dispose()
    assert len(h.posts(OPS)) == 1  # never re-posted as new
    assert "USD 420.00" in text_of(h.ws.message(OPS, alert.ts))
    assert any("Reminder" in m.text for m in h.thread(alert))


async def test_an_alert_whose_post_failed_is_posted_later(h: Harness) -> None:
    h.ws.fail_next("chat.postMessage", "not_in_channel")
    await fire_usd_low(h)
    assert h.posts(OPS) == []
    state = monitor.alert_state(h.db, "balance:USD")
    assert state is not None and state.alert.open and state.alert.ts is None
    await h.simulate(11 * MIN, {"alerts": MIN})  # repost_after = 10 min
    (alert,) = h.posts(OPS)
    assert "USD balance low" in alert.text


async def test_orders_resume_when_a_deposit_posts(h: Harness) -> None:
    await h.run("deposits")
    draft = OrderDraft(product=101, requester="UALICE")
    quote = await h.core.orders.quote(draft)
    order = await h.core.orders.save_intent(quote, draft)
    h.sim.set_balance("USD", "5.00")  # the balance dropped between the quote and the send
    assert order.id is not None
    waiting = await h.core.orders.submit(order.id)
    assert waiting.status == "waiting_funds"

    h.sim.add_deposit("USD", "100.00")
    await h.run("deposits")
    (announcement,) = h.posts(FINANCE)
    assert "1 order waiting for USD funds re-submitted" in text_of(announcement)
    assert (await h.core.orders.find(str(order.id))).status == "pending"  # type: ignore[union-attr]
    await h.run("deposits")
    assert len(h.posts(FINANCE)) == 1  # announced once


async def test_a_pending_deposit_is_announced_when_it_posts(h: Harness) -> None:
    await h.run("deposits")
    pending = h.sim.add_deposit("EUR", "250.00", status="pending")
    await h.run("deposits")
    assert h.posts(FINANCE) == []
    h.sim.post_deposit(pending["id"])
    await h.run("deposits")
    (announcement,) = h.posts(FINANCE)
    assert "EUR 250.00" in announcement.text
