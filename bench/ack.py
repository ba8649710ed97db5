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
    $ python -m bench.ack --postgres --rounds 8   # the store on PostgreSQL behind a 20 ms round trip

``--apart``: the Gate sandbox and Slack (the emulator, and the driver that sends the commands and times
each ack: :mod:`bench.slackside`) each run in their own process, as they do in production, so only the
app under test runs in this one and its acks are not paying for the fakes' CPU.

``--postgres`` (implies ``--apart``): the store is a fresh schema of the local PostgreSQL
(``--postgres-url``, database ``test``) reached through :class:`bench.delayproxy.DelayProxy`, which adds
``--pg-delay`` ms (10) each way, so every database round trip costs 20 ms more; the flood run is skipped,
``--rounds`` bursts of each app alternate (which goes first alternates too, so drift on a shared machine
hits both alike), and the ratio of gatebot's ack p99 to the bare app's is printed. A store that blocks the
event loop shows here.

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
from bench.slackside import USER, Figures, SlackSide, in_process_slack, slack_process
from gatebot.config import SANDBOX_AGENT_ID, SANDBOX_API_KEY, Settings
from gatebot.emulator import LoopbackServer
from gatebot.metrics import render
from gatebot.orders import OrderDraft
from gatebot.runtime import build_runtime, core
from gatebot.sandbox.server import running_sandbox
from gatebot.sandbox.simulator import Faults, SandboxConfig
from gatebot.slack.web import create_web_app
from gatebot.store.db import make_engine, normalize_url, upgrade

SECRET = "bench-ack-signing-secret"


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


async def flooded_burst(slack: SlackSide, app_url: str, texts: list[str], *, clients: int, size: int) -> tuple[
        Figures, Counter[str], RssSampler]:
    """A burst while ``clients`` unsigned ``size``-byte bodies are in flight."""
    stop = asyncio.Event()
    with RssSampler() as rss:
        attackers = [asyncio.create_task(flood(app_url, stop, size=size, chunked=i % 3 != 0,
                                               forged=i % 3 == 2)) for i in range(clients)]
        await asyncio.sleep(0.3)  # let the bodies get going
        figures = await slack.burst(app_url, SECRET, texts, f"gatebot, {clients} x {size // MB} MB flood")
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


async def serve(web: Starlette, work: Callable[[str], Awaitable[Figures]]) -> Figures:
    """Serve ``web`` on loopback for the duration of ``work(events_url)``."""
    server = LoopbackServer(web)
    await server.start()
    try:
        return await work(f"{server.url}/slack/events")
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
    tmp = Path(tempfile.mkdtemp(prefix="gatebot-bench-"))
    try:
        with bench_store(args, tmp) as database_url:
            async with (slack_process() if args.apart else in_process_slack()) as slack:
                await measure(args, slack, database_url)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def gate_sandbox(args: argparse.Namespace) -> Iterator[tuple[str, Callable[[float], None]]]:
    """The Gate sandbox (orders never complete) and a way to set its latency. ``--apart`` runs it as its own
    process, as Gate is in production: its CPU then does not count against gatebot's acks."""
    if not args.apart:
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


async def measure(args: argparse.Namespace, slack: SlackSide, database_url: str) -> None:
    with gate_sandbox(args) as (gate_url, set_latency):
        settings = Settings(
            _env_file=None, slack_bot_token=slack.bot_token, slack_signing_secret=SECRET,
            slack_api_url=slack.api_url, gate_api_url=gate_url, gate_api_key=SANDBOX_API_KEY,
            gate_agent_id=SANDBOX_AGENT_ID, database_url=database_url,
            gatebot_admins=USER, gatebot_env="development",
        )
        async with core(settings) as c:
            await c.orders.refresh_catalog()
            order = await c.orders.place(OrderDraft(product=101, requester=USER, external_ref="BENCH-1"))
            set_latency(args.latency)
            store = (f"PostgreSQL behind a {2 * args.pg_delay:g} ms round trip" if args.postgres else "SQLite")
            where = "each in its own process" if args.apart else "both in this process"
            print(f"Gate sandbox at {gate_url} with every call taking {args.latency:g} s; Gate and Slack {where}; "
                  f"store: {store}; {args.requests} concurrent /gate commands per app.")
            texts = [("balance" if i % 2 == 0 else f"order {order.external_ref}") for i in range(args.requests)]
            surface = build_runtime(c, slack="http", jobs=False).slack
            assert surface is not None
            app, deps = surface.app, surface.deps
            replied = 0  # ephemeral replies so far (each gatebot burst earns one per command)
            ours = Figures("gatebot (balance + order)", [], 0, 0)
            bare = Figures("bare Bolt app (ack only)", [], 0, 0)
            flood_result: list[tuple[Figures, Counter[str], RssSampler]] = []

            async def gatebot_round(work: Callable[[str], Awaitable[Figures]]) -> Figures:
                """One burst at gatebot, then wait (bounded) for its replies, which need Gate."""
                nonlocal replied
                got = await serve(create_web_app(app, deps), work)
                replied += args.requests + 1  # one per command, and the warm-up's help
                await slack.replies(replied, timeout=args.latency * 2 + 5)
                return got

            async def measured(url: str) -> Figures:
                return await slack.burst(url, SECRET, texts, ours.name)

            async def baseline(url: str) -> Figures:
                return await slack.burst(url, SECRET, texts, bare.name)

            async def under_flood(url: str) -> Figures:
                flood_result.append(await flooded_burst(slack, url, texts, clients=args.flood,
                                                        size=args.flood_mb * MB))
                return flood_result[0][0]

            ours.add(await gatebot_round(measured))
            delivered = await slack.replies(0, timeout=0) - 1
            flooded = None if args.postgres else await gatebot_round(under_flood)
            bare.add(await serve(bare_app(slack.api_url, slack.bot_token), baseline))
            # More rounds, alternating which app goes first: drift on a shared machine hits both alike.
            for i in range(1, args.rounds if args.postgres else 1):
                for turn in (("ours", "bare") if i % 2 == 0 else ("bare", "ours")):
                    if turn == "bare":
                        bare.add(await serve(bare_app(slack.api_url, slack.bot_token), baseline))
                    else:
                        ours.add(await gatebot_round(measured))
            print(ours.line())
            if flooded is not None:
                print(flooded.line())
            print(bare.line())
            if bare.latencies and ours.latencies:
                print(f"ack p99 gatebot / bare Bolt app: {ours.percentile(99) / bare.percentile(99):.2f}x")
            print(f"gatebot replies delivered after the ack: {min(delivered, args.requests)} of {args.requests} "
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
    tmp = Path(tempfile.mkdtemp(prefix="gatebot-bench-"))
    try:
        engine = make_engine(f"sqlite:///{tmp / 'gatebot.db'}")
        upgrade(engine)
        engine.dispose()
        config = SandboxConfig(completion_delay=3600.0, faults=Faults(latency=0.0))
        async with slack_process() if args.apart else in_process_slack() as slack:
            with running_sandbox(config) as (gate_url, sim):
                settings = Settings(
                    _env_file=None, slack_bot_token=slack.bot_token, slack_signing_secret=SECRET,
                    slack_api_url=slack.api_url, gate_api_url=gate_url, gate_api_key=SANDBOX_API_KEY,
                    gate_agent_id=SANDBOX_AGENT_ID, database_url=f"sqlite:///{tmp / 'gatebot.db'}",
                    gatebot_admins=USER, gatebot_env="development",
                )
                async with core(settings) as c:
                    await c.orders.refresh_catalog()
                    order = await c.orders.place(OrderDraft(product=101, requester=USER, external_ref="BENCH-1"))
                    sim.faults.update({"latency": args.latency})
                    texts = [("balance" if i % 2 == 0 else f"order {order.external_ref}")
                             for i in range(args.requests)]
                    surface = build_runtime(c, slack="http", jobs=False).slack
                    assert surface is not None
                    app, deps = surface.app, surface.deps
                    on = Figures("metrics on", [], 0, 0)
                    off = Figures("metrics off", [], 0, 0)
                    replied = 0
                    for i in range(args.rounds):
                        turns = ((on, True), (off, False)) if i % 2 == 0 else ((off, False), (on, True))
                        for figures, instrumented in turns:
                            web = create_web_app(app, deps)
                            if not instrumented:
                                web.user_middleware.clear()  # no ack timer (the stack is built on first request)

                            async def measured(url: str, name: str = figures.name) -> Figures:
                                return await slack.burst(url, SECRET, texts, name)

                            figures.add(await serve(web, measured))
                            replied += args.requests + 1  # one per command, and the warm-up's help
                            await slack.replies(replied, timeout=args.latency * 2 + 5)  # they need Gate
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
    parser.add_argument("--apart", action="store_true",
                        help="run the Gate sandbox and Slack (emulator and the timing driver) each in its own "
                             "process, as in production, not in this one (--postgres implies it)")
    parser.add_argument("--postgres", action="store_true",
                        help="the store on PostgreSQL behind a delay proxy (no flood run)")
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/test",
                        help="--postgres: the server and database (a fresh schema is made and dropped)")
    parser.add_argument("--pg-delay", type=float, default=10.0,
                        help="--postgres: milliseconds added each way by the proxy (default 10)")
    args = parser.parse_args(argv)
    args.apart = args.apart or args.postgres
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
