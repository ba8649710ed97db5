"""The jobs harness: the store, the in-process Gate sandbox, the Slack emulator and a job context.

Everything shares one :class:`ManualClock`: tests advance it and call the job bodies (through
``run_job``) at their intervals instead of sleeping. Slack is the loopback emulator (``#gate-ops`` is the
alert channel, ``#finance`` the finance channel), reached through a real ``AsyncWebClient`` by the real
:class:`AlertPoster`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from slack_sdk.web.async_client import AsyncWebClient

from gatebot.bulk import BulkService
from gatebot.clock import ManualClock
from gatebot.config import SANDBOX_AGENT_ID, SANDBOX_API_KEY, Settings, load_settings
from gatebot.emulator import EmulatorServer, Message, Workspace
from gatebot.events import EventBus
from gatebot.gate import GateClient, RetryPolicy
from gatebot.jobs import JobContext, JobOutcome, run_job
from gatebot.monitor import CallRecorder
from gatebot.orders import OrderDraft, OrderService
from gatebot.runtime import Core, gate_up, job_context
from gatebot.sandbox.app import create_app
from gatebot.sandbox.simulator import SandboxConfig, Simulator
from gatebot.slack.alert_poster import AlertPoster
from gatebot.store.crypto import cipher_from_key
from gatebot.store.db import Database

TEST_KEY = "n2B6nLDWqPq3oC1PO1Yv4k3mJ0n1Yk1jzqKZ8Q5xv0M="
OPS = "COPS"
FINANCE = "CFIN"
HOME = "https://slack.example/app_redirect?app=A1"


@pytest.fixture(autouse=True)
def _clean_env(_clean_env: None) -> None:
    """Every jobs test runs in the shared clean environment (tests/conftest.py)."""


async def _no_sleep(_: float) -> None:
    return None


@dataclass
class Harness:
    """One gatebot's moving parts over a ManualClock, plus helpers to drive time."""

    clock: ManualClock
    db: Database
    sim: Simulator
    settings: Settings
    core: Core
    ctx: JobContext
    ws: Workspace
    slack: AsyncWebClient
    poster: AlertPoster
    calls: CallRecorder
    outcomes: list[JobOutcome] = field(default_factory=list)

    # -- jobs and time ------------------------------------------------------------------------------
    async def run(self, name: str, **kwargs: Any) -> JobOutcome:
        outcome = await run_job(self.ctx, name, **kwargs)
        self.outcomes.append(outcome)
        return outcome

    async def simulate(
        self,
        span: timedelta,
        jobs: dict[str, timedelta],
        *,
        before: Callable[[datetime], Awaitable[None] | None] | None = None,
    ) -> None:
        """Advance the clock by ``span``, running each job every ``jobs[name]`` from now on (the end itself
        is left to the next call), calling ``before(now)`` ahead of each step."""
        end = self.clock.now() + span
        due = dict.fromkeys(jobs, self.clock.now())
        while True:
            when = min(due.values())
            if when >= end:
                break
            self.clock.set(when)
            if before is not None:
                result = before(when)
                if result is not None:
                    await result
            for name in [n for n in jobs if due[n] == when]:
                await self.run(name)
                due[name] = when + jobs[name]
        self.clock.set(end)

    def new_poster(self) -> AlertPoster:
        return AlertPoster(self.slack, db=self.db, clock=self.clock, alert_channel=OPS, finance_channel=FINANCE,
                           link_for=lambda _key: (HOME, "Open gatebot"))

    # -- Slack ------------------------------------------------------------------------------------------
    def posts(self, channel: str = OPS) -> list[Message]:
        """Top-level messages in ``channel``."""
        return self.ws.messages(channel)

    def thread(self, message: Message) -> list[Message]:
        return [m for m in self.ws.replies(message.channel, message.ts) if m.ts != message.ts]

    def slack_calls(self, *methods: str) -> int:
        return sum(len(self.ws.calls(m)) for m in methods)

    # -- orders -------------------------------------------------------------------------------------------
    async def buy(self, product: int | str = 101, *, requester: str = "UALICE") -> Any:
        return await self.core.orders.place(OrderDraft(product=product, requester=requester))


def make_settings(url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": url,
        "gatebot_alert_channel": OPS,
        "gatebot_finance_channel": FINANCE,
        "gatebot_low_balance": "USD:500/100",
        "slack_bot_token": "xoxb-emulator-token",
        "gatebot_encryption_key": TEST_KEY,
    }
    values.update(overrides)
    return load_settings(**values)


async def build_harness(database: Database, url: str, emulator: EmulatorServer, ws: Workspace, clock: ManualClock,
                        **settings: Any) -> tuple[Harness, GateClient]:
    app = create_app(SandboxConfig(completion_delay=90.0), clock=clock)
    sim: Simulator = app.state.sim
    calls = CallRecorder()
    client = GateClient(base_url="http://gate.test/", api_key=SANDBOX_API_KEY, agent_id=SANDBOX_AGENT_ID,
                        transport=httpx.ASGITransport(app=app), sleep=_no_sleep,
                        retry=RetryPolicy(attempts=2, base_delay=0, jitter="none"), on_attempt=calls)
    conf = make_settings(url, **settings)
    orders = OrderService(db=database, gate_client=client, cipher=cipher_from_key(TEST_KEY), clock=clock,
                          events=EventBus(), default_margin=Decimal("0"),
                          gate_available=lambda: gate_up(database))
    core = Core(settings=conf, db=database, cipher=orders.cipher, gate=client, gate_calls=calls, orders=orders,
                events=orders.events, clock=clock, bulk=BulkService(orders=orders))
    slack = AsyncWebClient(base_url=emulator.api_url, token=ws.bot_token)
    poster = AlertPoster(slack, db=database, clock=clock, alert_channel=OPS, finance_channel=FINANCE,
                         link_for=lambda _key: (HOME, "Open gatebot"))
    ctx = job_context(core, poster)
    harness = Harness(clock=clock, db=database, sim=sim, settings=conf, core=core, ctx=ctx, ws=ws, slack=slack,
                      poster=poster, calls=calls)
    return harness, client


@pytest.fixture
def workspace(clock: ManualClock) -> Workspace:
    ws = Workspace.sample(clock=clock)
    ws.add_channel("finance", id=FINANCE, members=["UALICE", "UCAROL"])
    return ws


@pytest.fixture
def emulator(emulator_server: EmulatorServer, workspace: Workspace) -> EmulatorServer:
    emulator_server.workspace = workspace
    return emulator_server


@pytest.fixture
def harness_settings(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Setting overrides for the harness: parametrize it indirectly to change them."""
    return dict(getattr(request, "param", {}))


@pytest.fixture
async def h(database: Database, db_url: str, emulator: EmulatorServer, workspace: Workspace, clock: ManualClock,
            harness_settings: dict[str, Any]) -> AsyncIterator[Harness]:
    harness, client = await build_harness(database, db_url, emulator, workspace, clock, **harness_settings)
    async with client:
        await harness.core.orders.refresh_catalog()
        harness.calls.drain()
        yield harness
