"""The sandbox over real loopback HTTP: ``running_sandbox`` in a thread, and ``python -m gatebot.sandbox``."""

from __future__ import annotations

import select
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable

import httpx
import pytest

import gatebot.sandbox.__main__ as sandbox_main
from gatebot.clock import ManualClock
from gatebot.config import SANDBOX_AGENT_ID, SANDBOX_API_KEY
from gatebot.sandbox.__main__ import build_parser, config_from_args, main
from gatebot.sandbox.server import running_sandbox
from gatebot.sandbox.simulator import SandboxConfig

from .helpers import AGENT, ORDERS, decode, voucher

KEY = {"Authorization": SANDBOX_API_KEY}


async def test_the_contract_over_real_sockets() -> None:
    clock = ManualClock()
    with running_sandbox(SandboxConfig(seed=5), clock=clock) as (base_url, sim):
        assert base_url.startswith("http://127.0.0.1:")
        async with httpx.AsyncClient(base_url=base_url, headers=KEY, timeout=5) as client:
            assert decode(await client.get("/health")) == {"status": "ok"}
            assert (await client.get(f"{AGENT}/balance", headers={"Authorization": "x"})).status_code == 401
            assert decode(await client.get(f"{AGENT}/products", params={"pageSize": 2}))["total"] == 14

            created = await client.post(ORDERS, json=voucher(), headers={"Idempotency-Key": "k1"})
            assert created.status_code == 201
            clock.advance(5)
            order = decode(await client.get(f"{ORDERS}/{decode(created)['id']}"))
            assert order["status"] == "completed" and order["order_content"]["voucher_code"]

            # A reset: the order is made, the answer breaks off; the same key then replays it.
            sim.update_faults({"create_error_rate": 1.0})
            outcomes: list[int | str] = []
            for n in range(2, 8):
                try:
                    outcomes.append((await client.post(ORDERS, json=voucher(),
                                                       headers={"Idempotency-Key": f"k{n}"})).status_code)
                except httpx.RemoteProtocolError:
                    outcomes.append("reset")
            assert "reset" in outcomes
            sim.update_faults({"create_error_rate": 0.0})
            reset_key = f"k{outcomes.index('reset') + 2}"
            replay = await client.post(ORDERS, json=voucher(), headers={"Idempotency-Key": reset_key})
            assert replay.status_code == 200 and decode(replay)["idempotency_key"] == reset_key
            assert sum(o["idempotency_key"] == reset_key for o in sim.all_orders()) == 1
        assert sim.stats()["requests"]["create_order"] == 8


async def test_a_hang_trips_the_client_timeout_and_does_not_block_shutdown() -> None:
    with running_sandbox() as (base_url, sim):
        sim.faults.hang_next = 1
        async with httpx.AsyncClient(base_url=base_url, headers=KEY, timeout=0.2) as client:
            with pytest.raises(httpx.ReadTimeout):
                await client.get(f"{AGENT}/balance")
            assert (await client.get(f"{AGENT}/balance")).status_code == 200


async def test_garbage_and_429_over_real_sockets() -> None:
    with running_sandbox() as (base_url, sim):
        sim.update_faults({"garbage_next": 1, "rate_limit_burst": 1, "retry_after": 3})
        async with httpx.AsyncClient(base_url=base_url, headers=KEY, timeout=5) as client:
            limited = await client.get(f"{AGENT}/deposits")
            assert limited.status_code == 429 and limited.headers["retry-after"] == "3"
            garbage = await client.get(f"{AGENT}/deposits")
            assert garbage.status_code == 200 and garbage.text.startswith("<html>")


def test_arguments_become_a_config() -> None:
    agent = uuid.uuid4()
    args = build_parser().parse_args([
        "--port", "0", "--seed", "9", "--completion-delay", "1.5", "--fail-product", "456",
        "--fail-product", "101", "--agent-id", str(agent), "--api-key", "k-test", "--error-rate", "0.1",
        "--retry-after", "4", "--health-down"])
    config = config_from_args(args)
    assert (config.seed, config.completion_delay, config.api_key) == (9, 1.5, "k-test")
    assert config.agent_id == agent
    assert config.fail_product_ids == {199, 456, 101}
    assert (config.faults.error_rate, config.faults.retry_after, config.faults.health_down) == (0.1, 4, True)
    defaults = config_from_args(build_parser().parse_args([]))
    assert (defaults.api_key, defaults.agent_id, args.port) == (SANDBOX_API_KEY, SANDBOX_AGENT_ID, 0)


def test_help_names_the_command_people_run() -> None:
    assert build_parser().format_help().startswith("usage: gatebot sandbox ")


def test_the_ready_line_says_which_key_the_sandbox_accepts(monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    def fake_serve(config: object, *, on_ready: Callable[[str], None], **_: object) -> None:
        on_ready("http://127.0.0.1:8099")

    monkeypatch.setattr(sandbox_main, "serve", fake_serve)
    assert main([]) == 0
    assert capsys.readouterr().out == (f"Gate sandbox listening on http://127.0.0.1:8099 "
                                       f"(agent_id {SANDBOX_AGENT_ID}, API key {SANDBOX_API_KEY})\n")
    assert main(["--api-key", "k-private"]) == 0
    line = capsys.readouterr().out
    assert "k-private" not in line and "API key as given with --api-key" in line


def test_out_of_range_arguments_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--error-rate", "2"])
    assert info.value.code == 2
    assert "error_rate" in capsys.readouterr().err


def test_a_taken_port_is_reported(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        assert main(["--port", str(port)]) == 1
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err


@pytest.mark.slow
def test_python_dash_m_serves_and_prints_its_url() -> None:
    command = [sys.executable, "-m", "gatebot.sandbox", "--port", "0", "--log-level", "warning"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 20)
        assert ready, "the sandbox printed nothing within 20 s"
        line = proc.stdout.readline()
        assert line.startswith("Gate sandbox listening on http://127.0.0.1:")
        assert str(SANDBOX_AGENT_ID) in line
        assert f"API key {SANDBOX_API_KEY})" in line
        url = line.split()[4]
        response = httpx.get(f"{url}/health", timeout=10)
        assert response.status_code == 200 and response.json() == {"status": "ok"}
        balance = httpx.get(f"{url}{AGENT}/balance", headers=KEY, timeout=10)
        assert balance.status_code == 200
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=20)
    # uvicorn shuts down gracefully, then re-raises the signal so the exit status tells the truth.
    assert proc.returncode in (0, -signal.SIGTERM)
    assert "Traceback" not in err
