"""Fixtures for the order pipeline: a store (SQLite and PostgreSQL), the in-process sandbox, a clock, and a
sandbox process for the crash test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from decimal import Decimal

import httpx
import pytest

from gatebot.clock import ManualClock
from gatebot.config import SANDBOX_AGENT_ID, SANDBOX_API_KEY
from gatebot.events import Event, EventBus
from gatebot.gate import GateClient, RetryPolicy
from gatebot.orders import OrderService
from gatebot.sandbox.app import create_app
from gatebot.sandbox.simulator import SandboxConfig, Simulator
from gatebot.store.crypto import cipher_from_key
from gatebot.store.db import Database

TEST_KEY = "n2B6nLDWqPq3oC1PO1Yv4k3mJ0n1Yk1jzqKZ8Q5xv0M="


async def _no_sleep(_: float) -> None:
    return None


@dataclass
class Pipeline:
    service: OrderService
    sim: Simulator
    clock: ManualClock
    db: Database
    events: list[Event]

    def creates(self) -> int:
        return int(self.sim.stats()["creates"]["attempted"])

    def gate_requests(self) -> int:
        return sum(self.sim.stats()["requests"].values())


@pytest.fixture
def sandbox_process(start_sandbox_process: Callable[..., str]) -> str:
    """A Gate sandbox process for the crash test: answers 0.1 s after processing, never completes.

    The latency is the window a SIGKILL must land in to lose Gate's answer; the test's random kill
    delays span 1.6 times it (before the request, in flight, after the answer). Every Gate request
    pays it, so it is most of the test's wall time: 0.1 s keeps the window and halves the test."""
    return start_sandbox_process("-m", "gatebot.sandbox", "--port", "0", "--latency", "0.1", "--log-level",
                                 "warning", "--completion-delay", "3600")


@pytest.fixture
async def pipeline(database: Database) -> AsyncIterator[Pipeline]:
    clock = ManualClock()
    app = create_app(SandboxConfig(completion_delay=90.0), clock=clock)
    sim: Simulator = app.state.sim
    client = GateClient(base_url="http://gate.test/", api_key=SANDBOX_API_KEY, agent_id=SANDBOX_AGENT_ID,
                        transport=httpx.ASGITransport(app=app), sleep=_no_sleep,
                        retry=RetryPolicy(attempts=3, base_delay=0, jitter="none"))
    bus = EventBus()
    seen: list[Event] = []

    async def record(event: Event) -> None:
        seen.append(event)

    bus.subscribe("order.", record)
    service = OrderService(db=database, gate_client=client, cipher=cipher_from_key(TEST_KEY), clock=clock,
                           events=bus, default_margin=Decimal("0"),
                           account_fields={"orange-france": [{"name": "msisdn", "label": "Mobile number",
                                                              "type": "phone", "required": True}]})
    await service.refresh_catalog()
    async with client:
        yield Pipeline(service=service, sim=sim, clock=clock, db=database, events=seen)
