"""Fixtures for the Gate client tests: a scripted ``httpx.MockTransport``, a recording ``sleep``.

The loopback fixtures (the real sandbox over HTTP) live in ``test_client_sandbox.py`` so that
these unit tests do not depend on the sandbox package.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, cast

import httpx
import pytest

from gatebot.config import SANDBOX_AGENT_ID
from gatebot.gate import GateClient, RetryPolicy

API_KEY = "test-secret-key-1234"
AGENT = SANDBOX_AGENT_ID
BASE = "http://gate.test/api/v2"
AGENT_PATH = f"/api/v2/agent/{AGENT}"

#: What a scripted step may be: a response, an exception class to raise, or a callable.
Step = httpx.Response | type[Exception] | Callable[[httpx.Request], httpx.Response]


@dataclass
class Script:
    """Answers requests from a queue of steps, recording every request it saw.

    When the queue runs dry the ``default`` step answers (None: a failing test).
    """

    steps: list[Step] = field(default_factory=list)
    default: Step | None = None
    requests: list[httpx.Request] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        step = self.steps.pop(0) if self.steps else self.default
        if step is None:
            raise AssertionError(f"unexpected request {request.method} {request.url}")
        if isinstance(step, httpx.Response):
            return step
        if isinstance(step, type) and issubclass(step, Exception):
            exc_type: type[Exception] = step
            if issubclass(exc_type, httpx.RequestError):
                raise exc_type("scripted failure", request=request)
            raise exc_type("scripted failure")
        handler = cast(Callable[[httpx.Request], httpx.Response], step)
        return handler(request)

    def bodies(self) -> list[bytes]:
        return [r.content for r in self.requests]

    def header(self, name: str) -> list[str | None]:
        return [r.headers.get(name) for r in self.requests]


class Sleeps:
    """A ``sleep`` that returns at once and remembers what it was asked to wait."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def ok(data: Any, status: int = 200, **headers: str) -> httpx.Response:
    headers = {"content-type": "application/json", **headers}
    return httpx.Response(status, content=json.dumps(data).encode(), headers=headers)


def raw(status: int, text: str, **headers: str) -> httpx.Response:
    return httpx.Response(status, content=text.encode(), headers=headers)


def err(status: int, code: str | None, message: str = "nope", **headers: str) -> httpx.Response:
    if code is None:
        return raw(status, "<html>Bad Gateway</html>", **headers)
    return ok({"error": {"code": code, "message": message}}, status, **headers)


ORDER = {
    "id": "0b7d3c0e-1111-4222-8333-444455556666", "product_id": 456, "external_ref": "INV-1001",
    "idempotency_key": "k-1", "status": "pending", "order_content": {"vendor_order_id": "LC-123456"},
    "currency_code": "USD", "charged_amount": "12.50", "balance_before": "100.00", "balance_after": "87.50",
    "is_test": False, "region_code": "US", "created_at": "2024-11-01T10:00:00Z", "completed_at": None,
    "failed_at": None,
}

PRODUCT = {
    "id": 456, "name": "Steam Wallet Top Up", "slug": "steam-wallet", "category_id": 3, "product_type_id": 3,
    "region_code": "US", "currency_code": "USD", "logo": None, "price": 10, "min_amount": 5,
    "max_amount": 100, "step": 1, "description": "d", "is_active": True,
}


@dataclass
class Harness:
    script: Script
    sleeps: Sleeps
    attempts: list[tuple[str, bool]]
    client: GateClient


@pytest.fixture
def script() -> Script:
    return Script()


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
async def harness(script: Script, sleeps: Sleeps) -> AsyncIterator[Harness]:
    attempts: list[tuple[str, bool]] = []
    client = GateClient(
        base_url=BASE, api_key=API_KEY, agent_id=str(AGENT), transport=httpx.MockTransport(script),
        retry=RetryPolicy(attempts=4, base_delay=0.2, max_delay=5.0, jitter="none"), sleep=sleeps,
        on_attempt=lambda label, success: attempts.append((label, success)),
    )
    async with client:
        yield Harness(script, sleeps, attempts, client)
