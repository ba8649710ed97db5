"""Words a user reads (ISSUE 11 defect 8): no repeated sentences, no code listed twice, dates Slack
renders, a product list that ends with a command one can run, and no Bolt warning at every start."""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gatebot.clock import ManualClock
from gatebot.emulator import EmulatorServer
from gatebot.gate.models import Health
from gatebot.orders import match_products
from gatebot.runtime import build_slack, core
from gatebot.slack.blocks.messages import health_message, order_delivery_dm, order_message, products_message
from gatebot.slack.deps import StatusReport
from tests.slack.test_blocks import VOUCHER, FakeOrder, completed_order
from tests.slack.test_serving import emulator, make_settings, workspace  # noqa: F401 (fixtures)

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d")


def test_a_failed_order_is_explained_once() -> None:
    for reason in ("Gate gave no reason", "Vendor refused the account."):
        order = FakeOrder(status="failed", failed_at=NOW, status_reason=reason)
        text = str(order_message(order)["blocks"])
        assert ".." not in text
        assert text.count("try again") == 1 and text.count("balance") == 1
        assert (f"Gate reported the order as failed: {reason.rstrip('.')}. The charge is returned to the balance; "
                "place a new order to try again.") in text


def test_the_voucher_dm_lists_each_code_once() -> None:
    first = {"voucher_code": "AAAA-1111", "pin": "0042"}
    content = {**first, "vouchers": [first, {"voucher_code": "BBBB-2222", "pin": "0043"}]}
    order = completed_order(product_type="redeem_card", amount=None, quantity=2)
    text = str(order_delivery_dm(order, content)["blocks"])
    assert text.count("AAAA-1111") == 1 and text.count("0042") == 1 and text.count("BBBB-2222") == 1
    # One voucher: shown once, at the top, without a one-item list repeating it.
    one = str(order_delivery_dm(order, {**first, "vouchers": [first]})["blocks"])
    assert one.count("AAAA-1111") == 1 and "*Code:* `AAAA-1111`" in one and "Vouchers" not in one
    # A lone top-level code (no list repeating it) is still shown.
    single = str(order_delivery_dm(order, {"voucher_code": "CCCC-3333"})["blocks"])
    assert "CCCC-3333" in single


def test_health_shows_dates_slack_renders_never_iso() -> None:
    job = type("Job", (), {"name": "track_orders", "ok": True, "last_success": NOW - timedelta(minutes=1),
                           "last_error": None})()
    report = StatusReport(at=NOW, database_ok=True, gate=Health(ok=True, status_code=200), circuit_open=False,
                          jobs=[job],
                          lease={"holder": "web.1:42:ab", "active": True,
                                 "expires_at": (NOW + timedelta(seconds=30)).isoformat()},
                          local_scheduler={"leader": True, "running": True})
    text = str(health_message(report.checks(), now=report.at)["blocks"])
    assert not ISO.search(text), text
    until = int((NOW + timedelta(seconds=30)).timestamp())
    assert f"lease until <!date^{until}^" in text and "|2026-11-24 09:00 UTC>" in text
    assert f"last success <!date^{int((NOW - timedelta(minutes=1)).timestamp())}^" in text


def test_the_product_list_ends_with_a_command_one_can_run() -> None:
    other = replace(VOUCHER, id=790, name="Google Play 50", is_active=False)
    msg = products_message(match_products([VOUCHER, other], "google"), "google")
    footer = msg["blocks"][-1]["elements"][0]["text"]
    assert "<" not in footer and footer.endswith("e.g. `/gate buy 789`.")


async def test_serve_does_not_log_bolts_token_warning(tmp_path: Path, sqlite_head_template: Path,
                                                      emulator: EmulatorServer,  # noqa: F811
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-emulator-token")  # how a deployment passes it
    caplog.set_level(logging.DEBUG)
    async with core(make_settings(tmp_path, sqlite_head_template, emulator), clock=ManualClock()) as c:
        build_slack(c)
    assert not [r for r in caplog.records if "will be unused" in r.getMessage()]
