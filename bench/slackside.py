"""Slack's side of :mod:`bench.ack`: the emulator (Web API, ``response_url``s) and the driver that times
each ack — in the bench's process (:class:`InProcessSlack`) or in its own (:class:`SlackProcess`, as Slack
is in production: its CPU then does not count against the app under test).

Run as ``python -m bench.slackside``, it is that other process: it prints one JSON line
(``{"api_url", "bot_token"}``), then answers one JSON line per request read from stdin —
``{"op": "burst", "app_url", "secret", "texts", "name"}`` → the burst's :class:`Figures`;
``{"op": "replies", "at_least", "timeout"}`` → how many ephemeral replies the user has received.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from bench.stats import percentile
from gatebot.clock import ManualClock
from gatebot.emulator import AckTimeoutError, EmulatorServer, SlackDriver, Workspace

USER = "UALICE"
CHANNEL = "COPS"


@dataclass
class Figures:
    name: str
    latencies: list[float]
    timeouts: int
    errors: int

    def percentile(self, p: float) -> float:
        """Nearest-rank percentile in milliseconds."""
        return percentile(self.latencies, p) * 1000

    def line(self) -> str:
        return (f"{self.name:<26} n={len(self.latencies):>3}  p50 {self.percentile(50):7.1f} ms  "
                f"p99 {self.percentile(99):7.1f} ms  max {max(self.latencies, default=0) * 1000:7.1f} ms  "
                f"timeouts {self.timeouts}  errors {self.errors}")

    def add(self, more: Figures) -> None:
        self.latencies += more.latencies
        self.timeouts += more.timeouts
        self.errors += more.errors


async def burst(driver: SlackDriver, texts: list[str], name: str) -> Figures:
    """Send every command at once; time each until its HTTP answer."""
    figures = Figures(name, [], 0, 0)

    async def one(text: str) -> None:
        started = time.perf_counter()
        try:
            result = await driver.slash_command(USER, text, channel=CHANNEL)
        except AckTimeoutError:
            figures.timeouts += 1
            return
        figures.latencies.append(time.perf_counter() - started)
        if result.status != 200:
            figures.errors += 1

    await asyncio.gather(*(one(t) for t in texts))
    return figures


class SlackSide(Protocol):
    api_url: str
    bot_token: str

    async def burst(self, app_url: str, secret: str, texts: list[str], name: str) -> Figures:
        """A warm-up command, then :func:`burst` against the app at ``app_url``."""
        ...

    async def replies(self, at_least: int, timeout: float) -> int:  # noqa: ASYNC109 - a budget
        """Ephemeral replies the user has received, once there are ``at_least`` (or after ``timeout``)."""
        ...


class InProcessSlack:
    """The emulator served from this process's event loop."""

    def __init__(self, emulator: EmulatorServer) -> None:
        self.emulator = emulator
        self.workspace = emulator.workspace
        self.api_url = emulator.api_url
        self.bot_token = self.workspace.bot_token

    async def burst(self, app_url: str, secret: str, texts: list[str], name: str) -> Figures:
        async with self.emulator.driver(app_url, secret, ack_timeout=10.0) as driver:
            await driver.slash_command(USER, "help", channel=CHANNEL)  # warm-up (auth.test, connections)
            return await burst(driver, texts, name)

    async def replies(self, at_least: int, timeout: float) -> int:  # noqa: ASYNC109
        def count() -> int:
            return len(self.workspace.ephemerals(USER))

        with contextlib.suppress(TimeoutError):
            await self.workspace.wait_for(lambda: count() >= at_least, timeout=timeout, what="the replies")
        return count()


@contextlib.asynccontextmanager
async def in_process_slack() -> AsyncIterator[InProcessSlack]:
    async with EmulatorServer(Workspace.sample(clock=ManualClock())) as emulator:
        try:
            yield InProcessSlack(emulator)
        finally:
            await emulator.stop()


class SlackProcess:
    """``python -m bench.slackside`` as a child process, spoken to in JSON lines."""

    def __init__(self) -> None:
        self._proc = subprocess.Popen([sys.executable, "-m", "bench.slackside"], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, text=True)
        hello = self._read()
        self.api_url = str(hello["api_url"])
        self.bot_token = str(hello["bot_token"])
        self._lock = asyncio.Lock()

    def _read(self) -> dict[str, Any]:
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError("the Slack process ended")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def _ask(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self._proc.stdin is not None
        self._proc.stdin.write(json.dumps(request) + "\n")
        self._proc.stdin.flush()
        return self._read()

    async def _call(self, request: dict[str, Any]) -> dict[str, Any]:
        async with self._lock:  # one request at a time on the pipe; the wait is off this event loop
            return await asyncio.to_thread(self._ask, request)

    async def burst(self, app_url: str, secret: str, texts: list[str], name: str) -> Figures:
        answer = await self._call({"op": "burst", "app_url": app_url, "secret": secret, "texts": texts,
                                   "name": name})
        return Figures(**answer)

    async def replies(self, at_least: int, timeout: float) -> int:  # noqa: ASYNC109
        return int((await self._call({"op": "replies", "at_least": at_least, "timeout": timeout}))["count"])

    def close(self) -> None:
        if self._proc.stdin is not None:
            self._proc.stdin.close()  # the child ends at end of input
        try:
            self._proc.wait(10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


@contextlib.asynccontextmanager
async def slack_process() -> AsyncIterator[SlackProcess]:
    slack = await asyncio.to_thread(SlackProcess)
    try:
        yield slack
    finally:
        await asyncio.to_thread(slack.close)


async def serve_stdin() -> None:
    """The child's side: the emulator on this loop, one request per stdin line."""
    async with in_process_slack() as slack:
        print(json.dumps({"api_url": slack.api_url, "bot_token": slack.bot_token}), flush=True)
        while line := await asyncio.to_thread(sys.stdin.readline):
            request = json.loads(line)
            if request["op"] == "burst":
                figures = await slack.burst(request["app_url"], request["secret"], request["texts"], request["name"])
                answer: dict[str, Any] = asdict(figures)
            else:
                answer = {"count": await slack.replies(int(request["at_least"]), float(request["timeout"]))}
            print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    asyncio.run(serve_stdin())
