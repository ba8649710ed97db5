"""Benchmark: how fast gatebot acknowledges Slack while Gate is slow.

The Gate sandbox is served over real loopback HTTP (``running_sandbox``) with its latency fault at
``--latency`` seconds (5 by default): every Gate call takes that long. gatebot's web app (Starlette +
Bolt, built by ``gatebot.runtime`` exactly as for ``gatebot serve``) and a bare Bolt ``AsyncApp`` that only acks are
served by uvicorn on loopback; the Slack emulator plays Slack. ``--requests`` concurrent, signed
``/gate balance`` and ``/gate order <ref>`` commands (half each) go through each app's real HTTP endpoint,
and the time until each HTTP answer (the ack) is recorded. Slack allows 3 s.

Prints p50 / p99 / max ack latency for gatebot and for the bare app, measured in the same run, and how
many of gatebot's replies (which need Gate, so arrive ~``--latency`` s later) were delivered.

A third run sends the same signed commands to gatebot while ``--flood`` clients (3) keep posting
unsigned ``--flood-mb`` MB bodies (30) at the same endpoint — one with ``Content-Length``, one chunked,
one chunked with well-formed but forged signature headers (read up to the body cap, then cut off) — and
prints the ack latencies under that load, what the flood got back and the process's peak RSS growth
(sampled from ``/proc/self/statm``; the flood's bodies are generated from one reused chunk, so the
growth is the server's). A figure printer, not a test: nothing here asserts speed.

    $ python -m bench.ack --requests 50 --latency 5
    $ python -m bench.ack --metrics --requests 50 --rounds 4   # ack p99 with /metrics on vs off
    $ python -m bench.ack --postgres   # the store on PostgreSQL behind a 20 ms round trip

``--postgres``: the store is a fresh schema of the local PostgreSQL (``--postgres-url``, database
``test``) reached through :class:`bench.delayproxy.DelayProxy`, which adds ``--pg-delay`` ms (10) each
way, so every database round trip costs 20 ms more; the flood run is skipped, ``--rounds`` bursts of
each app alternate (which goes first alternates too, so drift on a shared machine hits both alike),
and the ratio of gatebot's ack p99 to the bare app's is printed. A store that blocks the event loop
shows here.

Finishes in well under a minute.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.web.async_client import AsyncWebClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bench.delayproxy import DelayProxy
from bench.stats import percentile
from gatebot.clock import ManualClock
from gatebot.config import SANDBOX_AGENT_ID, SANDBOX_API_KEY, Settings
from gatebot.emulator import AckTimeoutError, EmulatorServer, LoopbackServer, SlackDriver, Workspace, running_emulator
from gatebot.metrics import render
from gatebot.orders import OrderDraft
from gatebot.runtime import build_runtime, core
from gatebot.sandbox.server import running_sandbox
from gatebot.sandbox.simulator import Faults, SandboxConfig
from gatebot.slack.web import create_web_app
from gatebot.store.db import make_engine, normalize_url, upgrade

SECRET = "bench-ack-signing-secret"
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


MB = 1024 * 1024
FLOOD_CHUNK = b"a" * 65536


class RssSampler:
    """Samples this process's resident set every few milliseconds in a thread; ``growth`` is the
    peak above the level when sampling started (bytes), ``None`` without ``/proc``."""

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.baseline: int | None = None
        self.peak: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    @staticmethod
    def rss() -> int | None:
        try:
            with open("/proc/self/statm") as statm:
                return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except OSError:
            return None

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            now = self.rss()
            if now is not None and (self.peak is None or now > self.peak):
                self.peak = now

    def __enter__(self) -> RssSampler:
        self.baseline = self.peak = self.rss()
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def growth(self) -> int | None:
        return None if self.baseline is None or self.peak is None else self.peak - self.baseline


async def flood(url: str, stop: asyncio.Event, *, size: int, chunked: bool, forged: bool) -> Counter[str]:
    """Post unsigned ``size``-byte bodies at ``url`` one after another until ``stop``; count the outcomes."""

    async def body() -> AsyncIterator[bytes]:
        for _ in range(size // len(FLOOD_CHUNK)):
            yield FLOOD_CHUNK

    outcomes: Counter[str] = Counter()
    async with httpx.AsyncClient(timeout=30) as http:
        while not stop.is_set():
            headers = {"Content-Type": "application/x-www-form-urlencoded"}
            if not chunked:
                headers["Content-Length"] = str(size // len(FLOOD_CHUNK) * len(FLOOD_CHUNK))
            if forged:
                headers |= {"X-Slack-Request-Timestamp": str(int(time.time())), "X-Slack-Signature": "v0=" + "0" * 64}
            try:
                answer = await http.post(url, content=body(), headers=headers)
                outcomes[f"HTTP {answer.status_code}"] += 1
            except httpx.TransportError:  # the server answered (413/401) and closed while the body was going
                outcomes["cut off mid-body"] += 1
    return outcomes


async def flooded_burst(driver: SlackDriver, texts: list[str], *, clients: int, size: int) -> tuple[
        Figures, Counter[str], RssSampler]:
    """:func:`burst` while ``clients`` unsigned ``size``-byte bodies are in flight."""
    stop = asyncio.Event()
    with RssSampler() as rss:
        attackers = [asyncio.create_task(flood(driver.app_url, stop, size=size, chunked=i % 3 != 0,
                                               forged=i % 3 == 2)) for i in range(clients)]
        await asyncio.sleep(0.3)  # let the bodies get going
        figures = await burst(driver, texts, f"gatebot, {clients} x {size // MB} MB flood")
        stop.set()
        outcomes: Counter[str] = Counter()
        for counted in await asyncio.gather(*attackers):
            outcomes += counted
    return figures, outcomes, rss


def bare_app(api_url: str, token: str) -> Starlette:
    """A Bolt AsyncApp that only acks ``/gate``: the floor for ack latency on this machine."""
    app = AsyncApp(client=AsyncWebClient(base_url=api_url, token=token), signing_secret=SECRET)

    @app.command("/gate")
    async def gate(ack: AsyncAck) -> None:
        await ack()

    handler = AsyncSlackRequestHandler(app)

    async def endpoint(request: Request) -> Response:
        return await handler.handle(request)

    return Starlette(routes=[Route("/slack/events", endpoint, methods=["POST"])])


async def serve(web: Starlette, emulator: EmulatorServer,
                work: Callable[[SlackDriver], Awaitable[Figures]]) -> Figures:
    server = LoopbackServer(web)
    await server.start()
    try:
        async with emulator.driver(f"{server.url}/slack/events", SECRET, ack_timeout=10.0) as driver:
            await driver.slash_command(USER, "help", channel=CHANNEL)  # warm-up (auth.test, connections)
            return await work(driver)
    finally:
        await server.stop()


@contextlib.contextmanager
def bench_store(args: argparse.Namespace, tmp: Path) -> Iterator[str]:
    """The store's URL, migrated: a SQLite file in ``tmp``, or (``--postgres``) a fresh schema of the
    local PostgreSQL reached through a :class:`DelayProxy` (dropped afterwards)."""
    if not args.postgres:
        url = f"sqlite:///{tmp / 'gatebot.db'}"
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        yield url
        return
    import psycopg

    base = normalize_url(args.postgres_url)
    schema = f"bench_ack_{uuid.uuid4().hex[:10]}"
    admin = base.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        direct = base.update_query_dict({"options": f"-csearch_path={schema}"})
        engine = make_engine(direct)
        upgrade(engine)
        engine.dispose()
        host, port = base.host or "127.0.0.1", base.port or 5432
        with DelayProxy((host, port), delay=args.pg_delay / 1000) as proxy:
            yield direct.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


async def main(args: argparse.Namespace) -> None:
    clock = ManualClock()  # only the emulator's trigger ids and message ts use it
    workspace = Workspace.sample(clock=clock)
    tmp = Path(tempfile.mkdtemp(prefix="gatebot-bench-"))
    try:
        with bench_store(args, tmp) as database_url:
            await measure(args, workspace, database_url)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def gate_sandbox(args: argparse.Namespace) -> Iterator[tuple[str, Callable[[float], None]]]:
    """The Gate sandbox (orders never complete) and a way to set its latency. ``--gate-process`` runs it as
    its own process, as Gate is in production: its CPU then does not count against gatebot's acks."""
    if not args.gate_process:
        config = SandboxConfig(completion_delay=3600.0, faults=Faults(latency=0.0))
        with running_sandbox(config) as (url, sim):
            yield url, lambda seconds: sim.faults.update({"latency": seconds})
        return
    proc = subprocess.Popen([sys.executable, "-m", "gatebot", "sandbox", "--port", "0", "--completion-delay",
                             "3600", "--log-level", "warning"], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if "listening on " not in line:
            raise RuntimeError(f"the Gate sandbox did not start: {line!r}")
        url = line.split("listening on ", 1)[1].split()[0]

        def set_latency(seconds: float) -> None:
            httpx.patch(f"{url.rstrip('/')}/_sandbox/faults", json={"latency": seconds}).raise_for_status()

        yield url, set_latency
    finally:
        proc.terminate()
        proc.wait(10)


async def measure(args: argparse.Namespace, workspace: Workspace, database_url: str) -> None:
    with gate_sandbox(args) as (gate_url, set_latency), running_emulator(workspace) as emulator:
        settings = Settings(
            _env_file=None, slack_bot_token=workspace.bot_token, slack_signing_secret=SECRET,
            slack_api_url=emulator.api_url, gate_api_url=gate_url, gate_api_key=SANDBOX_API_KEY,
            gate_agent_id=SANDBOX_AGENT_ID, database_url=database_url,
            gatebot_admins=USER, gatebot_env="development",
        )
        async with core(settings) as c:
            await c.orders.refresh_catalog()
            order = await c.orders.place(OrderDraft(product=101, requester=USER, external_ref="BENCH-1"))
            set_latency(args.latency)
            store = (f"PostgreSQL behind a {2 * args.pg_delay:g} ms round trip" if args.postgres else "SQLite")
            print(f"Gate sandbox at {gate_url} with every call taking {args.latency:g} s; store: {store}; "
                  f"{args.requests} concurrent /gate commands per app.")
            texts = [("balance" if i % 2 == 0 else f"order {order.external_ref}") for i in range(args.requests)]
            surface = build_runtime(c, slack="http", jobs=False).slack
            assert surface is not None
            app, deps = surface.app, surface.deps
            calls_before = len(workspace.ephemerals(USER))

            async def measured(driver: SlackDriver) -> Figures:
                return await burst(driver, texts, "gatebot (balance + order)")

            ours = await serve(create_web_app(app, deps), emulator, measured)
            # The replies need Gate: wait for them (bounded) before measuring the baseline.
            with contextlib.suppress(TimeoutError):
                await workspace.wait_for(
                    lambda: len(workspace.ephemerals(USER)) - calls_before >= args.requests,
                    timeout=args.latency * 2 + 5, what="gatebot's replies")
            delivered = len(workspace.ephemerals(USER)) - calls_before

            flood_result: list[tuple[Figures, Counter[str], RssSampler]] = []

            async def under_flood(driver: SlackDriver) -> Figures:
                flood_result.append(await flooded_burst(driver, texts, clients=args.flood,
                                                        size=args.flood_mb * MB))
                return flood_result[0][0]

            flooded = None
            if not args.postgres:
                flooded = await serve(create_web_app(app, deps), emulator, under_flood)
                with contextlib.suppress(TimeoutError):
                    await workspace.wait_for(
                        lambda: len(workspace.ephemerals(USER)) - calls_before >= 2 * args.requests,
                        timeout=args.latency * 2 + 5, what="gatebot's replies")

            async def baseline(driver: SlackDriver) -> Figures:
                return await burst(driver, texts, "bare Bolt app (ack only)")

            bare = await serve(bare_app(emulator.api_url, workspace.bot_token), emulator, baseline)
            if args.postgres:  # more rounds, alternating which app goes first: drift hits both alike
                for i in range(1, args.rounds):
                    for turn in (("ours", "bare") if i % 2 == 0 else ("bare", "ours")):
                        if turn == "bare":
                            more = await serve(bare_app(emulator.api_url, workspace.bot_token), emulator, baseline)
                            bare.latencies += more.latencies
                        else:
                            before = len(workspace.ephemerals(USER))
                            more = await serve(create_web_app(app, deps), emulator, measured)
                            ours.latencies += more.latencies

                            def replied(before: int = before) -> bool:
                                return len(workspace.ephemerals(USER)) - before >= int(args.requests)

                            with contextlib.suppress(TimeoutError):
                                await workspace.wait_for(replied, timeout=args.latency * 2 + 5,
                                                         what="gatebot's replies")
                        target = ours if turn == "ours" else bare
                        target.timeouts += more.timeouts
                        target.errors += more.errors
            print(ours.line())
            if flooded is not None:
                print(flooded.line())
            print(bare.line())
            if bare.latencies and ours.latencies:
                print(f"ack p99 gatebot / bare Bolt app: {ours.percentile(99) / bare.percentile(99):.2f}x")
            print(f"gatebot replies delivered after the ack: {delivered} of {args.requests} "
                  f"(they wait for Gate: ~{args.latency:g} s, or the last known balance after "
                  f"{deps.command_balance_wait:g} s)")
            if flood_result:
                _figures, outcomes, rss = flood_result[0]
                answered = ", ".join(f"{k}: {v}" for k, v in sorted(outcomes.items())) or "nothing"
                growth = "n/a (no /proc)" if rss.growth is None else f"{rss.growth / MB:.1f} MB"
                since = "" if rss.baseline is None else f" (from {rss.baseline / MB:.0f} MB)"
                print(f"flood of unsigned {args.flood_mb} MB bodies ({args.flood} clients): {answered}; "
                      f"peak RSS growth during the flood run {growth}{since}")
            await asyncio.sleep(0)


async def metrics_overhead(args: argparse.Namespace) -> None:
    """``--metrics``: gatebot's ack latency with ``/metrics`` instrumentation on (the ack timer middleware, the
    metered Slack client, the Gate call hook) and off (the middleware removed), in the same run, alternating
    ``--rounds`` bursts of each (which goes first alternates too) so drift on a shared machine hits both alike."""
    clock = ManualClock()
    workspace = Workspace.sample(clock=clock)
    tmp = Path(tempfile.mkdtemp(prefix="gatebot-bench-"))
    try:
        engine = make_engine(f"sqlite:///{tmp / 'gatebot.db'}")
        upgrade(engine)
        engine.dispose()
        config = SandboxConfig(completion_delay=3600.0, faults=Faults(latency=0.0))
        with running_sandbox(config) as (gate_url, sim), running_emulator(workspace) as emulator:
            settings = Settings(
                _env_file=None, slack_bot_token=workspace.bot_token, slack_signing_secret=SECRET,
                slack_api_url=emulator.api_url, gate_api_url=gate_url, gate_api_key=SANDBOX_API_KEY,
                gate_agent_id=SANDBOX_AGENT_ID, database_url=f"sqlite:///{tmp / 'gatebot.db'}",
                gatebot_admins=USER, gatebot_env="development",
            )
            async with core(settings) as c:
                await c.orders.refresh_catalog()
                order = await c.orders.place(OrderDraft(product=101, requester=USER, external_ref="BENCH-1"))
                sim.faults.update({"latency": args.latency})
                texts = [("balance" if i % 2 == 0 else f"order {order.external_ref}") for i in range(args.requests)]
                surface = build_runtime(c, slack="http", jobs=False).slack
                assert surface is not None
                app, deps = surface.app, surface.deps
                on = Figures("metrics on", [], 0, 0)
                off = Figures("metrics off", [], 0, 0)
                for i in range(args.rounds):
                    turns = ((on, True), (off, False)) if i % 2 == 0 else ((off, False), (on, True))
                    for figures, instrumented in turns:
                        web = create_web_app(app, deps)
                        if not instrumented:
                            web.user_middleware.clear()  # no ack timer (the stack is built on first request)

                        async def measured(driver: SlackDriver, name: str = figures.name) -> Figures:
                            return await burst(driver, texts, name)

                        before = len(workspace.ephemerals(USER))
                        got = await serve(web, emulator, measured)

                        def replied(before: int = before) -> bool:
                            return len(workspace.ephemerals(USER)) - before >= int(args.requests)

                        with contextlib.suppress(TimeoutError):  # let the replies (they need Gate) finish
                            await workspace.wait_for(replied, timeout=args.latency * 2 + 5, what="gatebot's replies")
                        figures.latencies += got.latencies
                        figures.timeouts += got.timeouts
                        figures.errors += got.errors
                print(f"{args.rounds} alternating rounds of {args.requests} concurrent /gate commands each; "
                      f"Gate calls take {args.latency:g} s")
                print(on.line())
                print(off.line())
                ratio = on.percentile(99) / off.percentile(99) if off.latencies else float("nan")
                print(f"p99 with metrics / without: {ratio:.2f}x")
                scrape = render(None)
                print(f"/metrics process counters: {len(scrape)} bytes")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=50, help="concurrent commands per app (default 50)")
    parser.add_argument("--latency", type=float, default=5.0, help="seconds every Gate call takes (default 5)")
    parser.add_argument("--flood", type=int, default=3, help="clients posting unsigned bodies (default 3)")
    parser.add_argument("--flood-mb", type=int, default=30, help="size of each unsigned body in MB (default 30)")
    parser.add_argument("--verbose", action="store_true", help="log warnings from gatebot and Bolt")
    parser.add_argument("--metrics", action="store_true", help="instead: ack latency with metrics on vs off")
    parser.add_argument("--rounds", type=int, default=4,
                        help="--metrics/--postgres: alternating rounds of each (default 4)")
    parser.add_argument("--gate-process", action="store_true",
                        help="run the Gate sandbox as its own process (as Gate is), not in this one")
    parser.add_argument("--postgres", action="store_true",
                        help="the store on PostgreSQL behind a delay proxy (no flood run)")
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/test",
                        help="--postgres: the server and database (a fresh schema is made and dropped)")
    parser.add_argument("--pg-delay", type=float, default=10.0,
                        help="--postgres: milliseconds added each way by the proxy (default 10)")
    args = parser.parse_args(argv)
    if args.requests < 2 or args.latency < 0:
        parser.error("--requests must be at least 2 and --latency not negative")
    if args.flood < 1 or args.flood_mb < 1:
        parser.error("--flood and --flood-mb must be at least 1")
    return args


def run(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.verbose else logging.ERROR)
    asyncio.run(metrics_overhead(args) if args.metrics else main(args))


if __name__ == "__main__":
    run()
