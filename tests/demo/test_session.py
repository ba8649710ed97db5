"""The session on a running demo: buttons, forms, roles, App Home, the shortcut, faults, time, errors.

Every test runs the whole demo in-process (sandbox, store, the real Slack app over loopback HTTP, the
emulator) on a manual clock: time moves only with ``:time``, nothing sleeps.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from gatebot.demo.render import Line
from gatebot.demo.runner import DEMO_START, running_demo
from gatebot.demo.session import DemoSession
from gatebot.store.models import OrderStatus
from tests.demo.conftest import Demo, buy_voucher


async def test_a_voucher_order_from_the_form_to_the_dm(demo: Demo) -> None:
    placed = await buy_voucher(demo)
    assert demo.ok
    assert "#gate-ops · gatebot" in placed and "*Order #1* · Steam Gift Card 20 USD" in placed
    assert "*Pending*" in placed and "✓ the form closed" in placed
    done = await demo.run(":time +1m")
    assert "✎ edited #gate-ops message" in done and "*Completed* — Delivered to @alice by DM." in done
    dm = done[done.index("[DM to @alice] · gatebot"):]
    code = next(line.split("`")[1] for line in dm.splitlines() if "*Code:*" in line)
    channel_part = done[: done.index("[DM to @alice]")]
    assert code not in channel_part and code not in placed
    order = await demo.rt.core.orders.find("INV-1001")
    assert order is not None and order.status == OrderStatus.COMPLETED


async def test_buttons_by_number_and_label_and_stale_ones(demo: Demo) -> None:
    placed = await buy_voucher(demo)
    refresh = demo.button("Refresh", placed)
    details = demo.button("View details", placed)
    shown = await demo.run(f":press {details}")
    assert "[only you] #gate-ops" in shown and "== Order #1 · Pending ==" in shown
    await demo.run(":time +1m")  # completed: the message is edited, its Refresh button is gone
    gone = await demo.run(f":press {refresh}")
    assert f"✗ [{refresh}] Refresh is gone" in gone
    assert not demo.outcomes[-1].ok
    again = await demo.run(":press view details")  # a label presses the newest button with it
    assert "== Order #1 · Completed ==" in again
    missing = await demo.run(":press 999", ":press Launch rockets")
    assert "✗ there is no button [999] on screen" in missing and "✗ no button “Launch rockets”" in missing


async def test_a_validation_error_appears_inline_and_can_be_fixed(demo: Demo) -> None:
    await demo.run("/gate buy steam wallet", ":set amount 25", ":set steam login bad login!")
    refused = await demo.run(":submit")
    assert "the app found 1 problem in the form" in refused
    lines = refused.splitlines()
    login = next(i for i, line in enumerate(lines) if line.startswith("│ Steam login *: bad login!"))
    assert any(line.startswith("│   ⚠ ") and "Steam login" in line for line in lines[login + 1: login + 4])
    assert demo.rt.sim.stats()["creates"]["attempted"] == 0  # nothing went to Gate
    confirm = await demo.run(":set steam login player_one", ":submit")
    assert "┌ Confirm order" in confirm and "*Amount*: USD 25.00" in confirm
    placed = await demo.run(":submit")
    assert "*Order #1* · Steam Wallet Top Up" in placed


async def test_the_slack_client_checks_required_fields_before_sending(demo: Demo) -> None:
    await demo.run("/gate buy steam wallet")
    out = await demo.run(":submit")
    assert "Slack does not send the form: fix the marked fields" in out
    assert "⚠ Please complete this required field." in out


async def test_roles_at_work(demo: Demo) -> None:
    out = await demo.run(":user dave", "/gate buy", "/gate balance")
    assert "you are now @dave" in out
    assert out.count("🔒 Sorry") == 2 and "*ops* role" in out and "*finance* role" in out
    assert demo.rt.workspace.top_view("UDAVE") is None
    erin = await demo.run(":user erin", "/gate orders")  # support through the @gate-support group
    assert "== Recent orders ==" in erin
    carol = await demo.run(":user carol", "/gate balance")
    assert "== Gate balance ==" in carol and "USD 5,000.00" in carol
    listing = await demo.run(":user")
    assert "→ @carol" in listing and "@dave" in listing


async def test_app_home_and_its_new_order_button(demo: Demo) -> None:
    home = await demo.run(":home")
    assert "[App Home of @alice]" in home and "*Open alerts* (0)" in home
    button = demo.button("New order", home)
    form = await demo.run(f":press {button}")
    assert "┌ New order  (modal of @alice)" in form
    refused = await demo.run(":user bob", f":press {button}")  # alice's Home is not bob's
    assert "✗ only @alice sees that" in refused
    closed = await demo.run(":user alice", ":cancel")
    assert "✓ the form closed" in closed


async def test_look_up_order_shortcut_on_a_message(demo: Demo) -> None:
    await buy_voucher(demo, ref="INV-7")
    out = await demo.run(":lookup where is INV-7 please?")
    assert "#gate-ops · alice\n  where is INV-7 please?" in out
    assert "[only you] #gate-ops" in out and "Order #1" in out


async def test_health_fault_fires_an_alert_and_recovery_clears_it(demo: Demo) -> None:
    down = await demo.run(":fault health-down", ":time +5m")
    assert "🔧 sandbox faults: health_down=True" in down  # /health alone: other calls keep working
    assert "*Gate API down*" in down and "[1] Acknowledge" in down
    refused = await demo.run("/gate buy steam gift card 20", ":submit")
    assert "⚠ The Gate API is down right now" in refused  # refused up front, inline
    assert demo.rt.sim.stats()["creates"]["attempted"] == 0
    up = await demo.run(":fault ok", ":time +5m")
    assert "🔧 sandbox faults: none (all clear)" in up
    assert "✎ edited #gate-ops message" in up and "Resolved" in up


async def test_time_runs_each_job_at_its_interval(demo: Demo) -> None:
    report = await demo.rt.jobs.advance(timedelta(minutes=30))
    interval = demo.rt.settings.gatebot_balance_interval
    assert report.runs["balance"] == 1800 // interval
    assert report.now == DEMO_START + timedelta(minutes=30) and not report.failures
    out = await demo.run(":time +90s")
    assert out.startswith("⏱ 90s later: 2026-11-24 09:31 UTC")
    assert demo.rt.clock.now() == DEMO_START + timedelta(minutes=31, seconds=30)


async def test_plain_messages_channels_history_and_dms(demo: Demo) -> None:
    out = await demo.run("hello team", ":channel", ":channel #finance", ":history", ":channel #gate-ops", ":history 1")
    assert "#gate-ops · alice\n  hello team" in out
    assert "#general" in out and "gatebot is not in it" in out
    assert "now in #finance (0 messages" in out and "no messages in #finance yet" in out
    assert out.rstrip().endswith("#gate-ops · alice\n  hello team")
    assert demo.session.prompt == "alice@#gate-ops> "
    assert "no DMs between @alice and gatebot yet" in await demo.run(":dm")


async def test_demo_command_mistakes_are_explained(demo: Demo) -> None:
    out = await demo.run(":nonsense", ":submit", ":pick 1", ":time -1h", ":time soon", "/weather",
                         ":user zed", ":channel #nowhere", ":fault meteor", ":deposit lots", ":set amount 5")
    errors = [line for line in out.splitlines() if line.startswith("✗ ")]
    assert len(errors) == 11, out
    assert "unknown command :nonsense — :help lists the commands" in out
    assert "no form is open (/gate buy opens one)" in out
    assert not any(o.ok for o in demo.outcomes)
    assert "commands:" in await demo.run(":help")
    assert (await demo.session.execute(":quit")).quit


async def test_sandbox_knobs(demo: Demo) -> None:
    out = await demo.run(":deposit USD 500", ":balance 20 usd", ":fault latency 0.01", ":fault errors 0.3")
    assert "🏦 sandbox: deposit #7 of USD 500.00 posted" in out
    assert "💰 sandbox: USD balance set to 20.00" in out
    assert "latency=0.01" in out and "error_rate=0.3" in out
    assert demo.rt.sim.faults.error_rate == pytest.approx(0.3)


async def test_the_demo_ignores_the_environment_and_config_files(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name, value in {"GATE_API_URL": "http://gate.invalid/", "SLACK_API_URL": "http://slack.invalid/api/",
                        "SLACK_BOT_TOKEN": "xoxb-real", "GATEBOT_LOW_BALANCE": "nonsense",
                        "DATABASE_URL": "postgresql://nowhere/db"}.items():
        monkeypatch.setenv(name, value)
    (tmp_path / ".env").write_text("GATEBOT_ENV=production\n")
    (tmp_path / "gatebot.toml").write_text('gatebot_alert_channel = "C-ELSEWHERE"\n')
    async with running_demo() as rt:
        assert rt.settings.uses_builtin_sandbox and rt.settings.gatebot_env == "development"
        assert rt.settings.slack_api_url == rt.emulator.api_url
        assert rt.settings.gatebot_alert_channel == "COPS"
        assert str(rt.settings.gatebot_low_balance["USD"].critical) == "USD 100.00"
        lines: list[str] = []
        session = DemoSession(rt, lambda new: lines.extend(line.text for line in new))
        try:
            assert (await session.execute("/gate balance")).ok
        finally:
            session.close()
    assert any("USD 5,000.00" in line for line in lines)


async def test_a_named_database_keeps_the_orders(tmp_path: Path) -> None:
    db = tmp_path / "demo" / "keep.db"
    async with running_demo(db=db) as rt:
        session = DemoSession(rt, lambda _: None)
        try:
            demo = Demo(rt, session)
            await buy_voucher(demo, ref="KEEP-1")
        finally:
            session.close()
    assert db.is_file()
    async with running_demo(db=db) as rt:
        order = await rt.core.orders.find("KEEP-1")
        assert order is not None and order.product_name == "Steam Gift Card 20 USD"


async def test_wait_lets_background_work_finish(demo: Demo) -> None:
    await buy_voucher(demo)
    assert await demo.run(":wait") == ""
    assert demo.ok


async def test_the_live_demo_runs_the_real_scheduler_and_time_jumps() -> None:
    """Interactive mode: real time plus an offset, APScheduler running the jobs; ``:time`` still works."""
    async with running_demo(live=True) as rt:
        assert rt.live and rt.scheduler is not None
        shown: list[Line] = []
        session = DemoSession(rt, shown.extend, settle_timeout=10.0)
        try:
            demo = Demo(rt, session, shown)
            await buy_voucher(demo, ref="LIVE-1")
            before = rt.clock.now()
            jumped = await demo.run(":time +1h")
            assert demo.ok and jumped.startswith("⏱ 1h later")
            assert rt.clock.now() - before >= timedelta(hours=1)
            order = await rt.core.orders.find("LIVE-1")
            assert order is not None and order.status == OrderStatus.COMPLETED
            health = await demo.run("/gate health")
            assert "🟢 *Scheduler*" in health  # the lease was renewed right after the jump
        finally:
            session.close()
    assert any(line.text == "[DM to @alice] · gatebot" for line in shown)
