"""HTTP mode: the ASGI app (``POST /slack/events``, ``GET /healthz``) and ``gatebot serve``.

* :func:`create_web_app` — Starlette: every Slack request (slash commands, interactivity, options loads,
  events) goes to ``POST /slack/events`` through :class:`~gatebot.slack.edge.SlackEdge`, which caps the
  body (``GATEBOT_MAX_BODY_BYTES``: 413), checks the signature on the raw bytes (401) and parses the
  body (400) before Bolt sees anything. ``GET /healthz`` is a liveness answer for load balancers and
  platform checks — ``{"status": "ok"}``, 200 whenever the process answers, whatever Gate or the jobs
  are doing (a Gate outage must not get web processes restarted). With ``Authorization: Bearer
  <GATEBOT_HEALTH_TOKEN>`` it answers the detailed report instead — database, Gate circuit, jobs,
  scheduler; 200 when all is well, 503 otherwise (see :class:`~gatebot.slack.deps.StatusReport`); a
  missing or wrong token there is 401.
* :func:`serve` — uvicorn (a production ASGI server; Bolt's ``app.start()`` is a development server) on
  ``host:port``, until :func:`run_http` stops it (on SIGINT/SIGTERM: it installs no handlers of its own).
* :func:`run_http` — what ``gatebot serve`` runs: serves a :class:`~gatebot.runtime.Runtime`'s app on
  ``$PORT`` through :meth:`~gatebot.runtime.Runtime.run` (start, serve until a signal, the one stop sequence).

Nothing happens at import time. Must not import the scheduler library; ``gatebot.runtime`` only for types.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import uvicorn
from slack_bolt.async_app import AsyncApp
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gatebot.slack.deps import Deps
from gatebot.slack.edge import SlackEdge
from gatebot.slack.metrics import AckTimer, metrics_endpoint

if TYPE_CHECKING:
    from gatebot.runtime import Runtime

__all__ = ["EVENTS_PATH", "HEALTH_PATH", "create_web_app", "run_http", "serve"]

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"
METRICS_PATH = "/metrics"


def create_web_app(app: AsyncApp, deps: Deps) -> Starlette:
    """The ASGI app serving ``app`` at :data:`EVENTS_PATH` and the health answers at :data:`HEALTH_PATH`."""
    settings = deps.settings
    secret = settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else ""
    edge = SlackEdge(app, signing_secret=secret, max_body=settings.gatebot_max_body_bytes)
    token = settings.gatebot_health_token.get_secret_value() if settings.gatebot_health_token else ""
    metrics_token = settings.gatebot_metrics_token.get_secret_value() if settings.gatebot_metrics_token else ""
    no_store = {"Cache-Control": "no-store"}

    def refused(what: str, setting: str) -> Response:
        return JSONResponse({"error": f"{what} needs Authorization: Bearer <{setting}>"}, status_code=401,
                            headers={**no_store, "WWW-Authenticate": "Bearer"})

    async def healthz(request: Request) -> Response:
        if request.headers.get("authorization") is None:
            return JSONResponse({"status": "ok"}, headers=no_store)
        if not token or not bearer_matches(request, token):
            return refused("the detailed report", "GATEBOT_HEALTH_TOKEN")
        report = await deps.status_report(probe_gate=False)
        return JSONResponse(report.to_json(), status_code=200 if report.ok else 503, headers=no_store)

    scrape = metrics_endpoint(deps)

    async def metrics(request: Request) -> Response:
        if metrics_token and not bearer_matches(request, metrics_token):
            return refused("a scrape", "GATEBOT_METRICS_TOKEN")
        return await scrape(request)

    web = Starlette(routes=[
        Route(EVENTS_PATH, edge.handle, methods=["POST"]),
        Route(HEALTH_PATH, healthz, methods=["GET"]),
        Route(METRICS_PATH, metrics, methods=["GET"]),
    ])
    web.add_middleware(AckTimer, path=EVENTS_PATH)  # Slack ack latency, to the start of our answer
    web.state.deps = deps
    return web


def bearer_matches(request: Request, token: str) -> bool:
    """Whether the request carries ``Authorization: Bearer <token>`` (compared in constant time)."""
    given = request.headers.get("authorization", "")
    return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: :func:`run_http` owns SIGTERM/SIGINT.

    uvicorn's handlers re-raise the signal once it has served, so SIGTERM then killed the process
    (exit 143) before the scheduler was stopped and the job lease released.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve(web: Starlette, *, host: str, port: int, log_level: str = "info",
                stop: asyncio.Event | None = None, hurry: asyncio.Event | None = None,
                on_ready: Callable[[str], None] | None = None) -> None:
    """Serve ``web`` with uvicorn until ``stop`` is set, then return once in-flight requests are done
    (at most 10 s, or until ``hurry`` is set). Installs no signal handlers: :func:`run_http` sets
    ``stop`` on SIGTERM/SIGINT. ``on_ready(url)`` is called once the socket accepts connections
    (``port=0``: any)."""
    config = uvicorn.Config(web, host=host, port=port, lifespan="off", log_level=log_level.lower(),
                            access_log=False, proxy_headers=True, timeout_graceful_shutdown=10,
                            log_config=None)  # uvicorn's records go through our handlers (redaction)
    server = _Server(config)
    stop = stop or asyncio.Event()

    async def watch() -> None:
        while not server.started and not stop.is_set():  # noqa: ASYNC110 - uvicorn has no started event
            await asyncio.sleep(0.01)
        if server.started:
            bound = server.servers[0].sockets[0].getsockname() if server.servers else (host, port)
            url = f"http://{bound[0]}:{bound[1]}"
            log.info("serving Slack requests on %s%s", url, EVENTS_PATH)
            if on_ready is not None:
                on_ready(url)
        await stop.wait()
        server.should_exit = True
        if hurry is not None:
            await hurry.wait()
            server.force_exit = True

    watcher = asyncio.create_task(watch(), name="gatebot-web-watch")
    try:
        await server.serve()
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher


async def run_http(rt: Runtime, *, port: int, host: str = "0.0.0.0", stop: asyncio.Event | None = None,
                   on_ready: Callable[[str], None] | None = None) -> None:
    """``gatebot serve``: ``rt``'s Slack app over HTTP on ``host:port`` (plus its scheduler, if any) until
    SIGINT/SIGTERM or ``stop``; then :meth:`~gatebot.runtime.Runtime.stop` runs its one stop sequence and
    this returns normally. A second signal stops waiting for open requests."""
    if rt.slack is None:
        raise ValueError("this runtime has no Slack app: build it with slack='http'")
    web = create_web_app(rt.slack.app, rt.slack.deps)

    async def serving(stopped: asyncio.Event, hurry: asyncio.Event) -> None:
        await serve(web, host=host, port=port, log_level=rt.settings.gatebot_log_level, stop=stopped,
                    hurry=hurry, on_ready=on_ready)

    await rt.run(serving, stop=stop)
