"""The alert buttons through a real Bolt AsyncApp served over loopback, clicked by the emulator's driver.

The app has only the alert listeners registered (``register(app, deps)``), exactly as ``app.py`` calls
it; clicks are signed like Slack's and the listener's Web API calls go to the emulator.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gatebot import monitor
from gatebot.clock import Clock
from gatebot.config import Settings
from gatebot.emulator import EmulatorServer, LoopbackServer, SlackDriver, find_action, running_asgi
from gatebot.slack import ids
from gatebot.slack.listeners.alerts import register
from gatebot.store import repo
from gatebot.store.db import Database
from tests.jobs.conftest import OPS, Harness

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)

SECRET = "alert-buttons-signing-secret"


@dataclass
class Deps:
    """What the alert buttons take (``AlertDeps``), over the harness's store and clock."""

    settings: Settings
    db: Database
    clock: Clock


@pytest.fixture
def bolt(h: Harness, emulator: EmulatorServer) -> Iterator[LoopbackServer]:
    app = AsyncApp(client=AsyncWebClient(base_url=emulator.api_url, token=h.ws.bot_token), signing_secret=SECRET)
    register(app, Deps(settings=h.settings, db=h.db, clock=h.clock))
    handler = AsyncSlackRequestHandler(app)

    async def endpoint(request: Request) -> Response:
        return await handler.handle(request)

    with running_asgi(Starlette(routes=[Route("/slack/events", endpoint, methods=["POST"])])) as server:
        yield server


@pytest.fixture
async def driver(bolt: LoopbackServer, emulator: EmulatorServer) -> AsyncIterator[SlackDriver]:
    async with emulator.driver(f"{bolt.url}/slack/events", SECRET) as driver:
        yield driver


async def fired(h: Harness) -> Any:
    h.sim.set_balance("USD", "450.00")
    for _ in range(3):
        await h.run("balance")
    (alert,) = h.posts(OPS)
    return alert


async def test_acknowledge_shows_who_and_is_audited(h: Harness, driver: SlackDriver) -> None:
    alert = await fired(h)
    mark = h.ws.call_count
    delivery = await driver.click("UBOB", alert, ids.ALERT_ACK)
    assert delivery.status == 200
    await h.ws.wait_for_call("chat.update", since=mark)
    await h.ws.wait_for(lambda: len(h.thread(alert)) == 1, what="the ack note in the thread")
    message = h.ws.message(OPS, alert.ts)
    assert "Acknowledged by <@UBOB>" in str(message.blocks)
    assert find_action(message.blocks or [], ids.ALERT_ACK) is None  # the Acknowledge button is gone
    assert find_action(message.blocks or [], ids.ALERT_SNOOZE_1H) is not None
    assert "app_redirect?app=A00000001&team=T00000001" in str(message.blocks)  # the link, from the click
    state = monitor.alert_state(h.db, "balance:USD")
    assert state is not None and state.alert.acked_by == "UBOB"
    with h.db.session() as s:
        (entry,) = repo.recent_audit(s, action="alert.ack")
    assert (entry.actor, entry.target, entry.allowed) == ("UBOB", "balance:USD", True)

    # reminders stop; the level change is still announced
    await h.simulate(9 * timedelta(hours=1), {"alerts": timedelta(minutes=5)})
    assert not any("Reminder" in m.text for m in h.thread(alert))


@pytest.mark.parametrize(("action_id", "hours"), [(ids.ALERT_SNOOZE_1H, 1), (ids.ALERT_SNOOZE_4H, 4),
                                                  (ids.ALERT_SNOOZE_24H, 24)])
async def test_snooze_buttons_silence_until_then_remind(h: Harness, driver: SlackDriver, action_id: str,
                                                        hours: int) -> None:
    alert = await fired(h)
    clicked_at = h.clock.now()
    mark = h.ws.call_count
    await driver.click("UCAROL", alert, action_id)
    await h.ws.wait_for_call("chat.update", since=mark)
    state = monitor.alert_state(h.db, "balance:USD")
    assert state is not None and state.alert.snoozed_until == clicked_at + timedelta(hours=hours)
    assert "Snoozed until" in str(h.ws.message(OPS, alert.ts).blocks)
    await h.ws.wait_for(lambda: len(h.thread(alert)) == 1, what="the snooze note")
    await h.simulate(timedelta(hours=hours) - timedelta(minutes=5), {"alerts": timedelta(minutes=5)})
    assert "Snooze ended" not in h.thread(alert)[-1].text
    await h.simulate(timedelta(minutes=6), {"alerts": timedelta(minutes=1)})
    assert "Snooze ended" in h.thread(alert)[-1].text
    with h.db.session() as s:
        (entry,) = repo.recent_audit(s, action="alert.snooze")
    assert entry.detail == f"snoozed for {hours} h"


async def test_a_click_on_a_resolved_alert_only_tells_the_clicker(h: Harness, driver: SlackDriver) -> None:
    alert = await fired(h)
    stale = copy.deepcopy(alert)  # as another user's client still shows it, buttons and all
    h.sim.set_balance("USD", "900.00")
    for _ in range(2):
        await h.run("balance")
    assert "Resolved" in str(h.ws.message(OPS, alert.ts).blocks)
    mark = h.ws.call_count
    await driver.click("UBOB", stale, ids.ALERT_SNOOZE_4H)
    ephemeral = await h.ws.wait_for(lambda: h.ws.latest_ephemeral("UBOB", channel=OPS), what="a private reply")
    assert "already resolved" in ephemeral.text
    assert h.ws.calls("chat.update", since=mark) == []


async def test_the_link_button_is_just_acknowledged(h: Harness, driver: SlackDriver) -> None:
    alert = await fired(h)
    mark = h.ws.call_count
    delivery = await driver.click("UALICE", alert, ids.ALERT_LINK)
    assert delivery.status == 200
    # nothing but Bolt's own authorization lookup: no edit, no reply
    assert [c.method for c in h.ws.calls(since=mark) if c.method != "auth.test"] == []
