"""Fixtures for the emulator's tests: one emulator server per session, a fresh workspace per test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from gatebot.clock import ManualClock
from gatebot.emulator import EmulatorServer, Workspace


@pytest.fixture
def workspace(clock: ManualClock) -> Workspace:
    return Workspace.sample(clock=clock)


@pytest.fixture
def emulator(emulator_server: EmulatorServer, workspace: Workspace) -> EmulatorServer:
    """The session's server, now serving this test's workspace."""
    emulator_server.workspace = workspace
    return emulator_server


@pytest.fixture
async def client(emulator: EmulatorServer, workspace: Workspace) -> AsyncIterator[AsyncWebClient]:
    yield AsyncWebClient(base_url=emulator.api_url, token=workspace.bot_token)
