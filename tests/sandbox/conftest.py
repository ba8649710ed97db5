"""Fixtures for the sandbox tests: a simulator on a :class:`ManualClock`, its app, and an in-process client.

``client`` talks to the app through ``httpx.ASGITransport`` with the sandbox key already set;
tests that need another key pass ``headers=`` per request. The real-socket tests build their own
server with :func:`gatebot.sandbox.server.running_sandbox`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette

from gatebot.clock import ManualClock
from gatebot.config import SANDBOX_API_KEY
from gatebot.sandbox.app import create_app
from gatebot.sandbox.simulator import SandboxConfig, Simulator


@pytest.fixture
def config() -> SandboxConfig:
    return SandboxConfig()


@pytest.fixture
def app(config: SandboxConfig, clock: ManualClock) -> Starlette:
    return create_app(config, clock=clock)


@pytest.fixture
def sim(app: Starlette) -> Simulator:
    simulator: Simulator = app.state.sim
    return simulator


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gate.test",
                                 headers={"Authorization": SANDBOX_API_KEY}) as http:
        yield http
