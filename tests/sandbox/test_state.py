"""The sandbox's state file: one Gate account across processes (each ``gatebot`` command is one).

Each "process" here is a fresh app built on the same file; the clock is a :class:`ManualClock`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import httpx

from gatebot.clock import ManualClock, OffsetClock
from gatebot.config import SANDBOX_API_KEY
from gatebot.sandbox.app import create_app
from gatebot.sandbox.simulator import SandboxConfig
from gatebot.sandbox.state import SandboxState

from .helpers import AGENT, ORDERS, decode, topup, voucher


@asynccontextmanager
async def process(path: Path, clock: ManualClock | OffsetClock) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(SandboxConfig(), clock=clock, state_path=path)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gate.test",
                                 headers={"Authorization": SANDBOX_API_KEY}) as http:
        yield http


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


async def test_a_later_process_carries_on_as_the_same_account(tmp_path: Path) -> None:
    path, clock = tmp_path / "gatebot.sandbox.json", ManualClock()
    async with process(path, clock) as gate:
        first = decode(await gate.post(ORDERS, json=topup(), headers={"Idempotency-Key": "k1"}))
    assert first["status"] == "pending" and path.exists()

    clock.advance(timedelta(seconds=10))  # past the completion delay, in the next process
    async with process(path, clock) as gate:
        again = decode(await gate.get(f"{ORDERS}/{first['id']}"))
        replay = await gate.post(ORDERS, json=topup(), headers={"Idempotency-Key": "k1"})
        second = decode(await gate.post(ORDERS, json=voucher(), headers={"Idempotency-Key": "k2"}))
        balance = decode(await gate.get(f"{AGENT}/balance"))

    assert again["status"] == "completed" and again["order_content"]
    assert replay.status_code == 200 and decode(replay)["id"] == first["id"]  # the key is remembered
    assert second["id"] != first["id"]  # the id sequence goes on
    usd = next(b for b in balance["items"] if b["currency_code"] == "USD")
    assert usd["available"] == "4967.50"  # 5000 - 12.50 - 20.00
    state = SandboxState.model_validate_json(path.read_bytes())  # pydantic, money as strings
    assert [o.id for o in state.orders] == [first["id"], second["id"]]
    assert '"charge":{"amount":"12.50","currency":"USD"}' in path.read_text()


async def test_saved_atomically_and_only_by_mutating_requests(tmp_path: Path) -> None:
    path, clock = tmp_path / "gatebot.sandbox.json", ManualClock()
    async with process(path, clock) as gate:
        await gate.get(f"{AGENT}/balance")
        assert not path.exists()  # reads save nothing
        await gate.post(ORDERS, json=voucher(), headers={"Idempotency-Key": "k1"})
    assert names(tmp_path) == ["gatebot.sandbox.json", "gatebot.sandbox.json.lock"]  # no temporary file left


async def test_two_live_processes_take_turns(tmp_path: Path) -> None:
    path, clock = tmp_path / "gatebot.sandbox.json", ManualClock()
    async with process(path, clock) as a, process(path, clock) as b:
        created = await asyncio.gather(*[
            gate.post(ORDERS, json=voucher(), headers={"Idempotency-Key": f"k{n}"})
            for n, gate in enumerate([a, b, a, b])])
        seen_by_a = decode(await a.get(f"{AGENT}/balance"))
    ids = {decode(r)["id"] for r in created}
    assert len(ids) == 4  # nobody handed out an id twice, nobody's order was lost
    usd = next(x for x in seen_by_a["items"] if x["currency_code"] == "USD")
    assert usd["available"] == "4920.00"


async def test_an_advanced_offset_clock_is_restored(tmp_path: Path) -> None:
    path = tmp_path / "gatebot.sandbox.json"
    async with process(path, OffsetClock()) as gate:
        await gate.post("/_sandbox/time", json={"advance": 3600})
    later = OffsetClock()
    async with process(path, later) as gate:
        await gate.get("/health")
    assert later.offset >= timedelta(hours=1)


async def test_an_unreadable_file_starts_from_the_seeded_account(tmp_path: Path) -> None:
    path = tmp_path / "gatebot.sandbox.json"
    path.write_text("{not json")
    async with process(path, ManualClock()) as gate:
        balance = decode(await gate.get(f"{AGENT}/balance"))
    assert any(b["available"] == "5000.00" for b in balance["items"])
