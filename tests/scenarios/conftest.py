"""The scenario harness: the whole Slack app over real loopback HTTP, offline and deterministic.

* **Slack** is the emulator (:mod:`gatebot.emulator`), served from a background thread once per session;
  each test gets a fresh :class:`Workspace` on a :class:`ManualClock`. The :class:`SlackDriver` sends
  signed requests to the app exactly as Slack does.
* **The app** is gatebot's web app (Starlette + Bolt, :func:`gatebot.slack.web.create_web_app`) served by
  uvicorn inside the test's event loop, built by :func:`gatebot.runtime.build_runtime` from real
  :class:`Settings` — the code path ``gatebot serve`` runs.
* **Gate** is the sandbox in-process (``httpx.ASGITransport``) on the same clock: :meth:`Harness.complete`
  advances the clock past the sandbox's completion delay and runs the tracker instead of sleeping.
* **The store** is a SQLite file migrated to head.

Every message, ephemeral, view and Home tab the emulator receives is checked against Slack's Block Kit
limits (:mod:`gatebot.slack.blocks.limits`) when the test ends.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode

import httpx
import pytest
from slack_bolt.async_app import AsyncApp
from sqlmodel import col, select

from gatebot.clock import ManualClock
from gatebot.config import Settings
from gatebot.emulator import (
    Change,
    EmulatorServer,
    LoopbackServer,
    Message,
    SlackDriver,
    SubmitResult,
    View,
    Workspace,
)
from gatebot.runtime import Core, build_runtime, core
from gatebot.sandbox.app import create_app as create_sandbox
from gatebot.sandbox.simulator import SandboxConfig, Simulator
from gatebot.slack import ids
from gatebot.slack.blocks.limits import check_message, check_options, check_view
from gatebot.slack.deps import Deps
from gatebot.slack.listeners.order_flow import DRAFT_PREFIX
from gatebot.slack.web import create_web_app
from gatebot.store import repo
from gatebot.store.models import AuditEntry, KeyValue, Order

SECRET = "scenario-signing-secret-0123456789"
ENCRYPTION_KEY = "n2B6nLDWqPq3oC1PO1Yv4k3mJ0n1Yk1jzqKZ8Q5xv0M="
COMPLETION_DELAY = 90.0

# People (see ``workspace``): alice admin, bob ops, carol support (through the user group SSUPPORT),
# dan finance, erin nobody.
ADMIN, OPS, SUPPORT, FINANCE, NOBODY = "UALICE", "UBOB", "UCAROL", "UDAN", "UERIN"
OPS_CHANNEL = "COPS"
NO_BOT_CHANNEL = "CGENERAL"  # the bot is not a member

T = TypeVar("T")


class LimitsRecorder:
    """Collects everything the emulator stored, to check it against Slack's limits at the end."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.views: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def __call__(self, change: Change) -> None:
        with self._lock:
            item = change.message or change.ephemeral
            if item is not None and change.kind.endswith(("posted", "updated")):
                self.messages.append({"text": item.text, "blocks": list(item.blocks or [])})
            if change.view is not None and change.kind in ("view.opened", "view.pushed", "view.updated",
                                                           "home.published"):
                v = change.view
                spec: dict[str, Any] = {"type": v.type, "blocks": v.blocks, "private_metadata": v.private_metadata}
                if v.callback_id:
                    spec["callback_id"] = v.callback_id
                for key in ("title", "submit", "close"):
                    if getattr(v, key) is not None:
                        spec[key] = getattr(v, key)
                self.views.append(spec)

    def check(self) -> int:
        with self._lock:
            for msg in self.messages:
                check_message(msg)
            for view in self.views:
                check_view(view)
            return len(self.messages) + len(self.views)


@dataclass
class Harness:
    clock: ManualClock
    ws: Workspace
    emulator: EmulatorServer
    core: Core
    deps: Deps
    app: AsyncApp
    server: LoopbackServer
    driver: SlackDriver
    sim: Simulator
    limits: LimitsRecorder
    options_seen: list[dict[str, Any]] = field(default_factory=list)

    # -- waiting (on the workspace, never on wall-clock sleeps) --------------------------------------
    async def wait(self, probe: Callable[[], T | None], what: str, timeout: float = 5.0) -> T:  # noqa: ASYNC109
        return await self.ws.wait_for(probe, timeout=timeout, what=what)

    async def settle(self) -> None:
        """Let the notifier finish what the last events queued."""
        assert self.deps.notifier is not None
        await asyncio.sleep(0)
        await self.deps.notifier.drain(5.0)

    async def complete(self) -> None:
        """Move time past the sandbox's completion delay and let the tracker pick the results up."""
        self.clock.advance(timedelta(seconds=COMPLETION_DELAY + 1))
        await self.core.orders.track()
        await self.settle()

    # -- the store -------------------------------------------------------------------------------------
    def orders(self) -> list[Order]:
        with self.core.db.session() as s:
            return list(reversed(repo.list_orders(s, limit=100)))

    def audit(self, action: str | None = None) -> list[AuditEntry]:
        with self.core.db.session() as s:
            return list(reversed(repo.recent_audit(s, action=action, limit=200)))

    def draft_rows(self) -> list[KeyValue]:
        """The order-form drafts kept between review and placing."""
        with self.core.db.session() as s:
            return list(s.exec(select(KeyValue).where(col(KeyValue.key).startswith(DRAFT_PREFIX))).all())

    def gate_creates(self) -> int:
        return int(self.sim.stats()["creates"]["attempted"])

    def codes(self, order: Order) -> list[str]:
        """Every code and PIN of a completed order (to prove they never reach a channel)."""
        content = self.core.orders.content(order) or {}
        found: list[str] = []

        def walk(value: Any) -> None:
            if isinstance(value, dict):
                for key, item in value.items():
                    if key in ("voucher_code", "pin") and isinstance(item, str):
                        found.append(item)
                    walk(item)
            elif isinstance(value, list):
                for item in value:
                    walk(item)

        walk(content)
        return found

    # -- Slack ---------------------------------------------------------------------------------------------
    def texts_in(self, channel: str, *, ephemerals: bool = True) -> str:
        """Everything ever shown in ``channel``: messages, replies, earlier edits (and ephemerals)."""
        parts: list[str] = []
        for m in self.ws.messages(channel, include_replies=True):
            parts += [m.text, json.dumps(m.blocks or [])]
            for rev in m.edits:
                parts += [rev.text, json.dumps(rev.blocks or [])]
        for e in self.ws.ephemerals(channel=channel) if ephemerals else []:
            parts += [e.text, json.dumps(e.blocks or [])]
        return "\n".join(parts)

    async def command(self, user: str, text: str, channel: str = OPS_CHANNEL) -> Any:
        result = await self.driver.slash_command(user, text, channel=channel)
        assert result.status == 200, result.text
        return result

    async def reply_to(self, user: str, channel: str = OPS_CHANNEL, *, after: int = 0) -> Any:
        """The next ephemeral shown to ``user`` in ``channel`` (beyond the first ``after``)."""
        return await self.wait(lambda: (lambda found: found[after] if len(found) > after else None)(
            self.ws.ephemerals(user, channel=channel)), f"an ephemeral reply to {user}")

    async def options(self, user: str, view: View, query: str) -> list[dict[str, Any]]:
        result = await self.driver.select_options(user, view, ids.ORDER_PRODUCT, query)
        assert result.status == 200
        body = result.json()
        check_options(body)
        self.options_seen.append(body)
        return result.options

    async def open_modal(self, user: str, text: str = "buy", channel: str = OPS_CHANNEL) -> View:
        before = len(self.ws.calls("views.open"))
        await self.command(user, text, channel)
        await self.wait(lambda: len(self.ws.calls("views.open")) > before, "views.open")
        view = self.ws.top_view(user)
        assert view is not None and view.callback_id == ids.ORDER_MODAL
        return view

    async def choose_product(self, user: str, view: View, product_id: int, query: str = "") -> View:
        options = await self.options(user, view, query)
        option = next(o for o in options if o["value"] == str(product_id))
        before = view.updates
        await self.driver.click(user, view, ids.ORDER_PRODUCT, selected_option=option)
        await self.wait(lambda: view.updates > before, "the form to reshape for the product")
        return view

    async def submit(self, user: str, view: View, *, force: bool = False) -> SubmitResult:
        result = await self.driver.submit_view(user, view, force=force)
        assert result.client_error is None, result.client_error
        return result

    def status_message(self, order: Order) -> Message:
        """The order's status message: in its channel, or (``message_in_dm``) in the requester's DM."""
        ts = order.message_ts
        assert ts is not None, "no status message was posted"
        channel = self.ws.dm_channel(order.requester).id if order.message_in_dm else order.origin_channel
        assert channel is not None
        return self.ws.message(channel, ts)

    async def send_view_submission(self, user: str, view: View, *, retry_num: int | None = None) -> httpx.Response:
        """A ``view_submission`` for ``view`` sent as Slack would (used to replay a double click or a retry)."""
        payload = {"type": "view_submission", "user": self.ws.user_ref(user), "api_app_id": self.ws.app_id,
                   "team": self.ws.team_ref(), "trigger_id": self.ws.issue_trigger(user),
                   "view": self.ws.view_dict(view), "response_urls": [], "token": "x"}
        headers = {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": "http_timeout"} if retry_num else {}
        return await self.driver.post(urlencode({"payload": json.dumps(payload)}).encode(),
                                      "application/x-www-form-urlencoded", headers=headers)


def scenario_settings(*, db_path: Path, api_url: str, bot_token: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "slack_bot_token": bot_token, "slack_signing_secret": SECRET, "slack_api_url": api_url,
        "database_url": f"sqlite:///{db_path}", "gatebot_encryption_key": ENCRYPTION_KEY,
        "gatebot_admins": ADMIN, "gatebot_ops": OPS, "gatebot_support": "SSUPPORT", "gatebot_finance": FINANCE,
        "gatebot_low_balance": "USD:6000/1000,EUR:300/50", "gatebot_env": "development",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@pytest.fixture
def workspace(clock: ManualClock) -> Workspace:
    ws = Workspace.sample(clock=clock)
    ws.add_user(FINANCE, "dan", real_name="Dan Diaz")
    ws.add_user(NOBODY, "erin", real_name="Erin Evans")
    for channel in (OPS_CHANNEL, NO_BOT_CHANNEL):
        ws.channel(channel).members.extend([FINANCE, NOBODY])
    ws.add_usergroup("gate-support", id="SSUPPORT", members=[SUPPORT])
    return ws


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Override in a test module to change the app's settings."""
    return {}


@pytest.fixture
def load_catalog() -> bool:
    return True


@pytest.fixture
async def harness(emulator_server: EmulatorServer, workspace: Workspace, clock: ManualClock, tmp_path: Path,
                  sqlite_head_template: Path, settings_overrides: dict[str, Any],
                  load_catalog: bool) -> AsyncIterator[Harness]:
    emulator_server.workspace = workspace
    limits = LimitsRecorder()
    remove = workspace.add_listener(limits)
    db_path = tmp_path / "gatebot.db"
    shutil.copyfile(sqlite_head_template, db_path)
    settings = scenario_settings(db_path=db_path, api_url=emulator_server.api_url, bot_token=workspace.bot_token,
                                 **settings_overrides)
    sandbox = create_sandbox(SandboxConfig(completion_delay=COMPLETION_DELAY), clock=clock)
    async with core(settings, clock=clock, gate_transport=httpx.ASGITransport(app=sandbox)) as c:
        if load_catalog:
            await c.orders.refresh_catalog()
        rt = build_runtime(c, slack="http", jobs=False)
        assert rt.slack is not None
        app, deps = rt.slack.app, rt.slack.deps
        server = LoopbackServer(create_web_app(app, deps))
        await server.start()
        driver = emulator_server.driver(f"{server.url}/slack/events", SECRET)
        h = Harness(clock=clock, ws=workspace, emulator=emulator_server, core=c, deps=deps, app=app,
                    server=server, driver=driver, sim=sandbox.state.sim, limits=limits)
        try:
            yield h
            await h.settle()
        finally:
            await driver.aclose()
            await server.stop()
            remove()
    limits.check()
