"""The AlertPoster against the Slack emulator, and its pure message builders against Slack's limits."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from gatebot import monitor
from gatebot.alerts import BalanceReading, Notification
from gatebot.clock import ManualClock
from gatebot.emulator import EmulatorServer, Workspace
from gatebot.money import Money
from gatebot.monitor import DepositNotice, Digest, DigestLine
from gatebot.slack.alert_poster import (
    AlertPoster,
    alert_card,
    app_home_link,
    deposit_message,
    digest_message,
    thread_text,
)
from gatebot.slack.blocks.limits import check_message
from tests.jobs.conftest import FINANCE, OPS, Harness

sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def usd(amount: str) -> Money:
    return Money.parse(amount, "USD")


def note(kind: str = "post", key: str = "balance:USD", **changes: Any) -> Notification:
    values: dict[str, Any] = {"kind": kind, "alert_key": key, "severity": "warning", "title": "USD balance low",
                              "text": "The USD balance is USD 450.00.", "fields": {"State": "firing"},
                              "reason": "fired"}
    values.update(changes)
    return Notification(**values)


async def fire(h: Harness) -> None:
    h.sim.set_balance("USD", "450.00")
    for _ in range(3):
        await h.run("balance")


@sqlite_only
async def test_without_a_channel_it_logs_once_and_skips(h: Harness, caplog: pytest.LogCaptureFixture) -> None:
    poster = AlertPoster(h.slack, db=h.db, clock=h.clock, alert_channel=None, discover_home_link=False)
    h.ctx.poster = poster
    await fire(h)
    await poster.deliver([note()])
    assert await poster.announce_deposit(DepositNotice(7, usd("5.00"), None, None, None))  # done: nowhere to post
    assert h.slack_calls("chat.postMessage") == 0
    warnings = [r for r in caplog.records if "no Slack channel configured" in r.getMessage()]
    assert len(warnings) == 2  # once for alerts, once for deposits/digest


@sqlite_only
async def test_slack_failures_are_logged_never_raised(h: Harness, caplog: pytest.LogCaptureFixture) -> None:
    h.ws.fail_next("chat.postMessage", "channel_not_found", times=4)
    await fire(h)  # raises nothing
    assert "Slack refused the post (channel_not_found)" in caplog.text
    assert "xoxb" not in caplog.text
    assert not await h.poster.announce_deposit(DepositNotice(7, usd("5.00"), None, None, None))  # retried later


@sqlite_only
async def test_an_update_of_a_deleted_message_posts_it_again(h: Harness) -> None:
    await fire(h)
    (first,) = h.posts(OPS)
    h.ws.delete_message(OPS, first.ts)
    h.sim.set_balance("USD", "420.00")
    await h.run("balance")
    (again,) = h.posts(OPS)
    assert again.ts != first.ts and "USD 420.00" in str(again.blocks)
    state = monitor.alert_state(h.db, "balance:USD")
    assert state is not None and state.alert.ts == again.ts


@sqlite_only
async def test_a_batch_that_posts_twice_keeps_one_message(h: Harness) -> None:
    # e.g. the API fails and recovers within one health run before the first post was stored
    down = note(key="health", title="Gate API down", severity="critical")
    back = note(key="health", title="Gate API recovered", severity="ok", fields={"State": "resolved"})
    await h.poster.deliver([down, back])
    (msg,) = h.posts(OPS)
    assert "Gate API recovered" in msg.text and msg.edited
    assert [r.text for r in msg.edits] == ["CRITICAL: Gate API down (firing)"]


@sqlite_only
async def test_a_late_update_never_paints_over_a_newer_ack(h: Harness) -> None:
    await fire(h)
    (alert,) = h.posts(OPS)
    h.clock.advance(timedelta(minutes=5))
    # the clock process decides an edit (new balance) ...
    stale = monitor.check_balance(h.db, BalanceReading(balance=usd("440.00")), h.clock.now(), h.ctx.policy,
                                  thresholds=h.ctx.thresholds["USD"])
    # ... a web process handles an Acknowledge click and edits the message first ...
    await h.new_poster().deliver(monitor.ack_alert(h.db, "balance:USD", by="UBOB", now=h.clock.now()))
    # ... then the clock process's edit arrives
    await h.poster.deliver(stale)
    final = h.ws.message(OPS, alert.ts)
    assert "Acknowledged by <@UBOB>" in str(final.blocks) and "USD 440.00" in str(final.blocks)


@sqlite_only
async def test_balance_alerts_can_go_to_finance(h: Harness) -> None:
    poster = AlertPoster(h.slack, db=h.db, clock=h.clock, alert_channel=OPS, finance_channel=FINANCE,
                         balance_alerts_to_finance=True, discover_home_link=False)
    h.ctx.poster = poster
    await fire(h)
    assert len(h.posts(FINANCE)) == 1 and h.posts(OPS) == []
    assert poster.channel_for("health") == OPS
    assert AlertPoster(h.slack, db=h.db, clock=h.clock, alert_channel=None, finance_channel=FINANCE).channel_for(
        "balance:EUR") == FINANCE


@sqlite_only
async def test_the_home_link_is_discovered_once_or_left_out(h: Harness, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    poster = AlertPoster(h.slack, db=h.db, clock=h.clock, alert_channel=OPS)  # the emulator has no bots.info
    await poster.deliver([note(key="job:a"), note(key="job:b")])
    assert len(h.ws.calls("auth.test")) == 1
    assert "Open gatebot" not in str(h.posts(OPS)[0].blocks)
    assert "no link button on alerts" in caplog.text


def test_app_home_links_stay_on_the_configured_slack() -> None:
    assert app_home_link("https://slack.com/api/", team_id="T1", app_id="A1") == \
        "https://slack.com/app_redirect?app=A1&team=T1"
    assert app_home_link("https://slack-gov.com/api/", team_id="T1", app_id="A1").startswith(
        "https://slack-gov.com/app_redirect?")


def test_the_card_and_thread_text() -> None:
    card = alert_card(note(fields={"State": "acked", "Acked by": "<@UBOB> at 09:00", "Balance": "USD 450.00"}),
                      None, link=("https://x.test", "Open"))
    assert card.state == "acked" and card.fields == [("Balance", "USD 450.00")] and card.link == "https://x.test"
    resolved = alert_card(note(severity="ok", fields={}), None)
    assert resolved.state == "resolved" and resolved.severity == "info"
    text = thread_text(note(kind="thread", text="Acknowledged by <@UBOB> <!channel> & co", severity="info"))
    assert text == ":information_source: Acknowledged by <@UBOB> &lt;!channel&gt; &amp; co"


def test_every_message_stays_within_slacks_limits() -> None:
    lines = tuple(
        DigestLine(currency=cur, opening=Money.parse("1000", cur), deposits=Money.parse("10", cur), deposit_count=1,
                   spend=Money.parse("5", cur), order_count=3, closing=Money.parse("1000", cur))
        for cur in ["AUD", "CAD", "CHF", "EUR", "GBP", "JPY", "NOK", "SEK", "SGD", "USD", "ZAR", "NZD"]
    )
    digest = Digest(start=T0, end=T0 + timedelta(days=1), lines=lines, closing_at=T0, from_baseline=True)
    for msg in (digest_message(digest), digest_message(Digest(start=T0, end=T0, lines=(), closing_at=None)),
                deposit_message(DepositNotice(7, usd("500.00"), "bank_wire", "R" * 200, T0, resumed=3))):
        check_message(msg)
    assert len(digest.mismatches) == 12
    assert "…and 2 more currencies" in str(digest_message(digest)["blocks"])
    from gatebot.slack.blocks.alerts import alert_message

    long = note(text="x" * 5000, title="t" * 300, fields={f"f{i}": "v" * 3000 for i in range(40)})
    check_message(alert_message(alert_card(long, None)))


@pytest.fixture
def bare_poster(emulator: EmulatorServer, workspace: Workspace, database: Any, clock: ManualClock) -> AlertPoster:
    return AlertPoster(AsyncWebClient(base_url=emulator.api_url, token=workspace.bot_token), db=database,
                       clock=clock, alert_channel=OPS, discover_home_link=False)


@sqlite_only
async def test_a_post_for_an_alert_the_store_does_not_know_is_still_sent(bare_poster: AlertPoster,
                                                                          workspace: Workspace) -> None:
    await bare_poster.deliver([note(key="job:ghost"), note(kind="thread", key="job:ghost")])  # thread has no ts
    (msg,) = workspace.messages(OPS)
    assert msg.text.startswith("WARNING: USD balance low")
