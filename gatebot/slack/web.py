"""HTTP mode: the ASGI app (``POST /slack/events``, ``GET /healthz``) and ``gatebot serve``.

* :func:`create_web_app` — Starlette: every Slack request (slash commands, interactivity, options loads,
  events) goes to ``POST /slack/events`` through Bolt's Starlette adapter (which checks the signature:
  a bad or stale one is answered 401); ``GET /healthz`` answers JSON about the database, the Gate
  circuit, the jobs and the scheduler — 200 when all is well, 503 otherwise (see
  :class:`~gatebot.slack.deps.StatusReport`).
* :func:`serve` — uvicorn (a production ASGI server; Bolt's ``app.start()`` is a development server) on
  ``host:port``, until SIGINT/SIGTERM.
* :func:`run_http` — what ``gatebot serve`` runs: checks the Slack settings (a clear
  :class:`~gatebot.slack.app.SlackConfigError` without ``SLACK_SIGNING_SECRET`` / ``SLACK_BOT_TOKEN``),
  builds the app, starts the scheduler (if given) and serves on ``$PORT``.

Nothing happens at import time. Must not import the scheduler library (it is passed in).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import uvicorn
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gatebot.runtime import Core
from gatebot.slack.app import build_slack, shut_down
from gatebot.slack.deps import Deps, Scheduler
from gatebot.slack.metrics import AckTimer, metrics_endpoint

__all__ = ["EVENTS_PATH", "HEALTH_PATH", "create_web_app", "run_http", "serve"]

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"
METRICS_PATH = "/metrics"
#: How long shutdown waits for order notifications still being sent to Slack.


def create_web_app(app: AsyncApp, deps: Deps) -> Starlette:
    """The ASGI app serving ``app`` at :data:`EVENTS_PATH` and the health report at :data:`HEALTH_PATH`."""
    handler = AsyncSlackRequestHandler(app)

    async def slack_events(request: Request) -> Response:
        return await handler.handle(request)

    async def healthz(request: Request) -> Response:
        report = await deps.status_report(probe_gate=False)
        return JSONResponse(report.to_json(), status_code=200 if report.ok else 503,
                            headers={"Cache-Control": "no-store"})

    web = Starlette(routes=[
        Route(EVENTS_PATH, slack_events, methods=["POST"]),
        Route(HEALTH_PATH, healthz, methods=["GET"]),
        Route(METRICS_PATH, metrics_endpoint(deps), methods=["GET"]),
    ])
    web.add_middleware(AckTimer, path=EVENTS_PATH)  # Slack ack latency, to the start of our answer
    web.state.deps = deps
    return web


async def serve(web: Starlette, *, host: str, port: int, log_level: str = "info",
                stop: asyncio.Event | None = None, on_ready: Callable[[str], None] | None = None) -> None:
    """Serve ``web`` with uvicorn until SIGINT/SIGTERM (uvicorn handles them in the main thread) or until
    ``stop`` is set. ``on_ready(url)`` is called once the socket accepts connections (``port=0``: any)."""
    config = uvicorn.Config(web, host=host, port=port, lifespan="off", log_level=log_level.lower(),
                            access_log=False, proxy_headers=True, timeout_graceful_shutdown=10)
    server = uvicorn.Server(config)

    async def watch() -> None:
        while not server.started:  # noqa: ASYNC110 - uvicorn has no started event
            await asyncio.sleep(0.01)
        bound = server.servers[0].sockets[0].getsockname() if server.servers else (host, port)
        url = f"http://{bound[0]}:{bound[1]}"
        log.info("serving Slack requests on %s%s", url, EVENTS_PATH)
        if on_ready is not None:
            on_ready(url)
        if stop is not None:
            await stop.wait()
            server.should_exit = True

    watcher = asyncio.create_task(watch(), name="gatebot-web-watch")
    try:
        await server.serve()
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher


async def run_http(core: Core, *, port: int, host: str = "0.0.0.0", scheduler: Scheduler | None = None,
                   stop: asyncio.Event | None = None, on_ready: Callable[[str], None] | None = None) -> None:
    """``gatebot serve``: the Slack app over HTTP on ``host:port`` (plus ``scheduler`` in this process),
    until SIGINT/SIGTERM or ``stop``.

    Raises :class:`~gatebot.slack.app.SlackConfigError` before anything starts when the Slack settings
    are incomplete.
    """
    app, deps = build_slack(core, scheduler=scheduler)
    web = create_web_app(app, deps)
    if scheduler is not None:
        await scheduler.start()
    try:
        await serve(web, host=host, port=port, log_level=core.settings.gatebot_log_level, stop=stop,
                    on_ready=on_ready)
    finally:
        await shut_down(deps, scheduler)
