"""The composition root: what :func:`gatebot.runtime.build_runtime` builds for each process, and the one
stop sequence :meth:`Runtime.run` / :meth:`Runtime.stop` own (serve, socket and clock all go through it)."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gatebot.clock import ManualClock
from gatebot.config import Settings
from gatebot.demo.runner import Settler
from gatebot.emulator import EmulatorServer, running_emulator
from gatebot.monitor import LogPoster
from gatebot.runtime import Runtime, build_core, build_runtime, until_stopped
from gatebot.slack.alert_poster import AlertPoster


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorServer]:
    with running_emulator() as emu:
        yield emu


def settings(tmp_path: Path, template: Path, **overrides: Any) -> Settings:
    db = tmp_path / "gatebot.db"
    if not db.exists():
        shutil.copyfile(template, db)
    return Settings(_env_file=None, database_url=f"sqlite:///{db}", gatebot_env="development", **overrides)


class Recorder:
    """Stands in for the scheduler and the notifier; notes the order things are stopped in."""

    def __init__(self, events: list[str], name: str) -> None:
        self.events, self.name = events, name

    async def start(self) -> None:
        self.events.append(f"{self.name} start")

    async def shutdown(self) -> None:
        self.events.append(f"{self.name} shutdown")

    def status(self) -> dict[str, Any]:
        return {}

    async def drain(self, within: float) -> None:
        self.events.append(f"{self.name} drain")


async def test_one_shot_commands_get_the_core_alone(tmp_path: Path, sqlite_head_template: Path) -> None:
    rt = build_runtime(build_core(settings(tmp_path, sqlite_head_template), clock=ManualClock()), notifier=False)
    try:
        assert (rt.slack, rt.notifier, rt.scheduler, rt.poster) == (None, None, None, None)
    finally:
        await rt.stop()


async def test_clock_without_a_bot_token_logs_alerts(tmp_path: Path, sqlite_head_template: Path) -> None:
    rt = build_runtime(build_core(settings(tmp_path, sqlite_head_template), clock=ManualClock()), jobs=True)
    try:
        assert rt.slack is None and rt.notifier is None and rt.scheduler is not None
        assert isinstance(rt.poster, LogPoster)
    finally:
        await rt.stop()


async def test_serve_builds_the_app_notifier_scheduler_and_poster(tmp_path: Path, sqlite_head_template: Path,
                                                                 emulator: EmulatorServer) -> None:
    conf = settings(tmp_path, sqlite_head_template, slack_bot_token="xoxb-emulator-token",
                    slack_signing_secret="s", slack_api_url=emulator.api_url)
    rt = build_runtime(build_core(conf, clock=ManualClock()), slack="http")  # GATEBOT_RUN_JOBS defaults to true
    try:
        assert rt.slack is not None and rt.notifier is rt.slack.deps.notifier
        assert rt.scheduler is not None and rt.slack.deps.scheduler is rt.scheduler
        assert isinstance(rt.poster, AlertPoster)
        assert rt.slack.deps.orders is rt.core.orders and rt.slack.deps.db is rt.core.db
    finally:
        await rt.stop()


async def test_run_stops_in_one_order_and_once(tmp_path: Path, sqlite_head_template: Path) -> None:
    events: list[str] = []
    built = build_core(settings(tmp_path, sqlite_head_template), clock=ManualClock())
    closed = built.aclose

    async def aclose() -> None:
        events.append("core close")
        await closed()

    built.aclose = aclose  # type: ignore[method-assign]
    rt = Runtime(core=built, scheduler=Recorder(events, "scheduler"),
                 notifier=Recorder(events, "notifier"))  # type: ignore[arg-type]
    stop = asyncio.Event()
    task = asyncio.create_task(rt.run(until_stopped, stop=stop))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert events == ["scheduler start"]
    stop.set()
    await asyncio.wait_for(task, 5)
    await rt.stop()  # the context manager's exit calls it again: nothing happens twice
    assert events == ["scheduler start", "scheduler shutdown", "notifier drain", "core close"]


async def test_the_demo_settles_only_when_the_store_is_idle() -> None:
    """A unit of work whose caller is gone still runs to its commit: no task shows it, db.busy does."""
    settler = Settler()
    busy = [True]
    settler.store_busy = lambda: busy[0]
    asyncio.get_running_loop().call_later(0.02, busy.__setitem__, 0, False)
    assert await settler.settle(set(), timeout=5)
    assert busy == [False]


async def test_the_clock_serves_metrics_between_start_and_stop(tmp_path: Path, sqlite_head_template: Path) -> None:
    import httpx

    rt = build_runtime(build_core(settings(tmp_path, sqlite_head_template), clock=ManualClock()), jobs=True,
                       job_specs=[], metrics_port=0)
    await rt.start()
    try:
        async with httpx.AsyncClient() as http:
            scrape = await http.get(f"http://127.0.0.1:{rt.metrics_bound}/metrics")
        assert scrape.status_code == 200
        assert "gatebot_leader 1.0" in scrape.text  # this process took the lease at start
    finally:
        await rt.stop()
    with pytest.raises(httpx.TransportError):
        async with httpx.AsyncClient() as http:
            await http.get(f"http://127.0.0.1:{rt.metrics_bound}/metrics")
