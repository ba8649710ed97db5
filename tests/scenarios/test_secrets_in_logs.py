"""No secret in any log line, at DEBUG as at INFO, whichever library writes it.

A voucher order and a top-up with customer-account fields go through the whole app — Slack modal,
Gate, the status message, the DM with the codes — with logging set up as ``gatebot serve`` sets it up
(:func:`gatebot.logs.configure_logging`). At DEBUG, ``slack_sdk`` logs every Web API request and
response (the DM's blocks hold the codes) and Bolt logs every reply (the confirm modal holds the
account); the redaction on the handler must catch them all.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from gatebot import logs
from gatebot.config import SANDBOX_API_KEY
from gatebot.logs import configure_logging
from gatebot.slack import ids
from tests.leaks import leaks

from .conftest import ENCRYPTION_KEY, OPS, OPS_CHANNEL, SECRET, Harness

STEAM_TOPUP = 456
LOGIN, EMAIL = "player_8812", "gamer8812@example.com"


@pytest.fixture(params=["DEBUG", "INFO"])
def level(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    # A fresh registry: what earlier tests taught it (the sandbox's codes repeat) must not hide a leak here.
    monkeypatch.setattr(logs, "_REGISTRY", logs._Registry())
    root = logging.getLogger()
    saved = root.level, {name: logging.getLogger(name).level for name in ("alembic",)}
    yield str(request.param)
    for handler in [h for h in root.handlers if getattr(h, "_gatebot_handler", False)]:
        root.removeHandler(handler)
    root.setLevel(saved[0])
    for name, lvl in saved[1].items():
        logging.getLogger(name).setLevel(lvl)


@pytest.mark.parametrize("fmt", ["text", "json"])
async def test_no_secret_in_any_log_line(harness: Harness, level: str, fmt: logs.LogFormat) -> None:
    h = harness
    stream = io.StringIO()
    configure_logging(h.core.settings, level=level, stream=stream, fmt=fmt)

    view = await h.open_modal(OPS, "buy steam gift card 20")
    confirm = (await h.submit(OPS, view)).view
    assert confirm is not None
    await h.submit(OPS, confirm)
    await h.wait(lambda: h.ws.latest_message(OPS_CHANNEL), "the voucher's status message")
    await h.settle()

    view = await h.open_modal(OPS)
    await h.choose_product(OPS, view, STEAM_TOPUP, query="steam")
    h.driver.set_input(view, ids.ORDER_AMOUNT, ids.ORDER_AMOUNT, "25")
    h.driver.set_input(view, ids.account_block_id("steam_login"), ids.account_block_id("steam_login"), LOGIN)
    h.driver.set_input(view, ids.account_block_id("email"), ids.account_block_id("email"), EMAIL)
    confirm = (await h.submit(OPS, view)).view
    assert confirm is not None and LOGIN in str(confirm.blocks)
    await h.submit(OPS, confirm)
    await h.settle()
    await h.complete()
    dms = await h.wait(lambda: len(h.ws.dm_messages(OPS)) >= 2 or None, "both delivery DMs")
    assert dms

    orders = h.orders()
    assert len(orders) == 2
    codes = [code for order in orders for code in h.codes(order)]
    content = [str(v) for order in orders for v in (h.core.orders.content(order) or {}).values()
               if isinstance(v, str)]
    assert codes and all(code in str(h.ws.dm_messages(OPS)) for code in codes), "the DMs carried the codes"
    secrets = [*codes, *content, LOGIN, EMAIL, SANDBOX_API_KEY, SECRET, ENCRYPTION_KEY, h.ws.bot_token]

    logged = stream.getvalue()
    if level == "DEBUG":  # the libraries did log the requests and replies that carried the secrets
        assert "Sending a request" in logged and "Responding with status" in logged
    else:
        assert "Sending a request" not in logged
    leaked = leaks(secrets, logged)
    assert not leaked, f"secrets in the {level} {fmt} log: {leaked}"
    if fmt == "json":  # one object per line, each with its fields; Slack requests say who and which
        records = [json.loads(line) for line in logged.splitlines()]
        assert records and all({"time", "level", "logger", "message"} <= r.keys() for r in records)
        assert all(r["time"].endswith("+00:00") for r in records)
        from_slack = [r for r in records if "request_id" in r]
        assert from_slack and all(r["slack_user"] == OPS for r in from_slack)
        if level == "DEBUG":  # the Gate request of an order says which order it was for
            refs = {order.external_ref for order in orders}
            about_orders = [r for r in records if "order" in r and r.get("logger", "").startswith("gatebot.gate")]
            assert about_orders and {r["external_ref"] for r in about_orders} <= refs
