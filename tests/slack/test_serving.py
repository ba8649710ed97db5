"""Serving: `gatebot serve` (run_http on a real port) and `gatebot socket` (Socket Mode), and the refusals
to start with incomplete Slack settings."""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse

from gatebot.clock import ManualClock
from gatebot.config import ConfigError, Settings
from gatebot.emulator import EmulatorServer, Workspace, running_emulator
from gatebot.runtime import Core, build_notifier, build_runtime, build_slack, core
from gatebot.slack.app import SlackConfigError, check_settings
from gatebot.slack.socket import socket_handler
from gatebot.slack.web import run_http

SECRET = "serving-test-signing-secret"


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorServer]:
    with running_emulator() as emu:
        yield emu


@pytest.fixture
def workspace(emulator: EmulatorServer) -> Workspace:
    ws = Workspace.sample(clock=ManualClock())
    emulator.workspace = ws
    return ws


def make_settings(tmp_path: Path, template: Path, emulator: EmulatorServer, **overrides: Any) -> Settings:
    db = tmp_path / "gatebot.db"
    if not db.exists():
        shutil.copyfile(template, db)
    values: dict[str, Any] = {"slack_bot_token": "xoxb-emulator-token", "slack_signing_secret": SECRET,
                              "slack_api_url": emulator.api_url, "database_url": f"sqlite:///{db}",
                              "gatebot_ops": "UALICE", "gatebot_finance": "UALICE", "gatebot_env": "development",
                              "gatebot_health_token": "health-token-for-serving",
                              "gatebot_metrics_token": "metrics-token-for-serving"}
    values.update(overrides)
    return Settings(_env_file=None, **values)


@pytest.fixture
async def the_core(tmp_path: Path, sqlite_head_template: Path, emulator: EmulatorServer,
                   workspace: Workspace) -> AsyncIterator[Core]:
    async with core(make_settings(tmp_path, sqlite_head_template, emulator), clock=ManualClock()) as c:
        yield c


class FakeScheduler:
    def __init__(self) -> None:
        self.events: list[str] = []

    async def start(self) -> None:
        self.events.append("start")

    async def shutdown(self) -> None:
        self.events.append("shutdown")

    def status(self) -> dict[str, Any]:
        return {"owner": "test:1", "leader": True, "running": "start" in self.events}


# -- refusing to start ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("overrides", "socket_mode", "variable"), [
    ({"slack_signing_secret": None}, False, "SLACK_SIGNING_SECRET is not set"),
    ({"slack_signing_secret": "  "}, False, "SLACK_SIGNING_SECRET is not set"),
    ({"slack_bot_token": None}, False, "SLACK_BOT_TOKEN is not set"),
    ({"slack_bot_token": "xoxp-user-token"}, False, "SLACK_BOT_TOKEN must be a bot token"),
    ({}, True, "SLACK_APP_TOKEN is not set"),
    ({"slack_app_token": "xoxb-not-an-app-token"}, True, "SLACK_APP_TOKEN must be an app-level token"),
])
def test_start_up_refuses_incomplete_slack_settings(tmp_path: Path, sqlite_head_template: Path,
                                                    emulator: EmulatorServer, overrides: dict[str, Any],
                                                    socket_mode: bool, variable: str) -> None:
    settings = make_settings(tmp_path, sqlite_head_template, emulator, **overrides)
    with pytest.raises(SlackConfigError) as info:
        check_settings(settings, socket_mode=socket_mode)
    assert isinstance(info.value, ConfigError), "the CLI prints ConfigError problems, one line each"
    assert any(p.startswith(variable) for p in info.value.problems), info.value.problems


def test_socket_mode_needs_no_signing_secret(tmp_path: Path, sqlite_head_template: Path,
                                             emulator: EmulatorServer) -> None:
    settings = make_settings(tmp_path, sqlite_head_template, emulator, slack_signing_secret=None,
                             slack_app_token="xapp-1-A1-123-abc")
    assert check_settings(settings, socket_mode=True) == ("xoxb-emulator-token", "xapp-1-A1-123-abc")


async def test_run_http_and_run_socket_refuse_before_starting(tmp_path: Path, sqlite_head_template: Path,
                                                              emulator: EmulatorServer) -> None:
    settings = make_settings(tmp_path, sqlite_head_template, emulator, slack_signing_secret=None)
    scheduler = FakeScheduler()
    async with core(settings, clock=ManualClock()) as c:
        with pytest.raises(SlackConfigError, match="SLACK_SIGNING_SECRET"):
            build_runtime(c, slack="http", scheduler=scheduler)
        with pytest.raises(SlackConfigError, match="SLACK_APP_TOKEN"):
            build_runtime(c, slack="socket", scheduler=scheduler)
    assert scheduler.events == [], "nothing started"


# -- gatebot serve ----------------------------------------------------------------------------------------------


async def test_run_http_serves_slack_and_healthz_then_stops(the_core: Core, emulator: EmulatorServer,
                                                           workspace: Workspace) -> None:
    scheduler = FakeScheduler()
    stop = asyncio.Event()
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    rt = build_runtime(the_core, slack="http", scheduler=scheduler)
    task = asyncio.create_task(run_http(rt, port=0, host="127.0.0.1", stop=stop, on_ready=ready.set_result))
    url = await asyncio.wait_for(ready, 5)
    async with httpx.AsyncClient(base_url=url) as http:
        alive = await http.get("/healthz")
        health = await http.get("/healthz", headers={"Authorization": "Bearer health-token-for-serving"})
        unscraped = await http.get("/metrics")
        wrong = await http.get("/metrics", headers={"Authorization": "Bearer health-token-for-serving"})
        scraped = await http.get("/metrics", headers={"Authorization": "Bearer metrics-token-for-serving"})
    assert unscraped.status_code == wrong.status_code == 401, "GATEBOT_METRICS_TOKEN set: no scrape without it"
    assert scraped.status_code == 200 and "gatebot_orders" in scraped.text
    assert alive.status_code == 200 and alive.json() == {"status": "ok"}, "liveness: nothing more to anyone"
    assert health.status_code == 503  # no jobs have run and nobody holds the lease in this test
    assert health.json()["scheduler"]["this_process"] == {"owner": "test:1", "leader": True, "running": True}
    async with emulator.driver(f"{url}/slack/events", SECRET) as driver:
        result = await driver.slash_command("UALICE", "help", channel="gate-ops")
        assert result.status == 200
        reply = await workspace.wait_for(lambda: workspace.latest_ephemeral("UALICE"), what="the help reply")
        assert reply.text.startswith("gatebot commands: help, balance, deposits, buy, bulk, products, health")
        forged = await driver.with_signing(secret="wrong").slash_command("UALICE", "help", channel="gate-ops")
        assert forged.status == 401
    stop.set()
    await asyncio.wait_for(task, 10)
    assert scheduler.events == ["start", "shutdown"]


# -- gatebot socket -----------------------------------------------------------------------------------------------


class CapturingSocketClient:
    """Stands in for the websocket: records what the handler answers Slack."""

    def __init__(self) -> None:
        self.responses: list[SocketModeResponse] = []
        self.logger = logging.getLogger("tests.socket")

    async def send_socket_mode_response(self, response: SocketModeResponse) -> None:
        self.responses.append(response)


async def test_the_same_app_answers_over_socket_mode(tmp_path: Path, sqlite_head_template: Path,
                                                     emulator: EmulatorServer, workspace: Workspace) -> None:
    settings = make_settings(tmp_path, sqlite_head_template, emulator, slack_signing_secret=None,
                             slack_app_token="xapp-1-A1-123-abc")
    async with core(settings, clock=ManualClock()) as c:
        surface = build_slack(c, socket_mode=True)
        deps = surface.deps
        handler = socket_handler(surface.app, "xapp-1-A1-123-abc")
        try:
            await _socket_round_trips(handler, emulator, workspace)
        finally:
            await handler.close_async()
        assert deps.notifier is not None


async def _socket_round_trips(handler: AsyncSocketModeHandler, emulator: EmulatorServer, workspace: Workspace) -> None:
    assert handler.client.web_client.base_url == emulator.api_url, "SLACK_API_URL is used for the socket too"
    socket = CapturingSocketClient()
    unknown = SocketModeRequest(type="slash_commands", envelope_id="env-1", payload={
        "command": "/gate", "text": "frobnicate", "user_id": "UALICE", "channel_id": "COPS",
        "team_id": workspace.team_id, "api_app_id": workspace.app_id, "trigger_id": "t",
        "response_url": workspace.issue_response_url(emulator.base_url, user="UALICE", channel="COPS")})
    await handler.handle(socket, unknown)  # type: ignore[arg-type]
    (answer,) = socket.responses
    assert answer.envelope_id == "env-1"
    assert "I don't know the command `frobnicate`" in json.dumps(answer.payload)

    balance = SocketModeRequest(type="slash_commands", envelope_id="env-2", payload={
        **unknown.payload, "text": "balance"})
    await handler.handle(socket, balance)  # type: ignore[arg-type]
    assert socket.responses[-1].envelope_id == "env-2" and not socket.responses[-1].payload  # a bare ack
    reply = await workspace.wait_for(lambda: workspace.latest_ephemeral("UALICE"), what="the balance reply")
    assert reply.text.startswith("Gate balance: EUR 2,500.00")

    # Socket Mode hands Bolt parsed objects: a command mentioning "payload" is a command here too.
    payload_word = SocketModeRequest(type="slash_commands", envelope_id="env-3", payload={
        **unknown.payload, "text": "frobnicate payload-77", "channel_name": "payload-ops"})
    await handler.handle(socket, payload_word)  # type: ignore[arg-type]
    assert socket.responses[-1].envelope_id == "env-3"
    assert "I don't know the command `frobnicate`" in json.dumps(socket.responses[-1].payload)


async def test_build_notifier_alone_for_the_clock_process(the_core: Core) -> None:
    notifier = build_notifier(the_core)
    assert notifier.client.base_url == the_core.settings.slack_api_url


async def test_stopping_waits_for_listener_work_still_running_after_the_ack(
    the_core: Core, emulator: EmulatorServer, workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Slack got its ack at once; the listener's Gate call is still running when SIGTERM/SIGINT (``stop``)
    arrives. Stopping drains it: the reply is posted before run_http returns, not cancelled."""
    entered, release = asyncio.Event(), asyncio.Event()
    real_balances = the_core.orders.balances

    async def slow_balances(**kwargs: Any) -> Any:
        entered.set()
        await release.wait()
        return await real_balances(**kwargs)

    monkeypatch.setattr(the_core.orders, "balances", slow_balances)
    scheduler = FakeScheduler()
    stop = asyncio.Event()
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    rt = build_runtime(the_core, slack="http", scheduler=scheduler)
    task = asyncio.create_task(run_http(rt, port=0, host="127.0.0.1", stop=stop, on_ready=ready.set_result))
    url = await asyncio.wait_for(ready, 5)
    async with emulator.driver(f"{url}/slack/events", SECRET) as driver:
        result = await driver.slash_command("UALICE", "balance", channel="gate-ops")
    assert result.status == 200  # acked while the work goes on
    await asyncio.wait_for(entered.wait(), 5)
    stop.set()
    done, _ = await asyncio.wait({task}, timeout=0.5)
    assert not done, "run_http returned while a listener was still working"
    release.set()
    await asyncio.wait_for(task, 10)
    reply = workspace.latest_ephemeral("UALICE")
    assert reply is not None and reply.text.startswith("Gate balance:")
    assert scheduler.events == ["start", "shutdown"]
