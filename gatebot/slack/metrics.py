"""The Slack edge's metrics hooks and the ``GET /metrics`` endpoint of ``gatebot serve``.

* :class:`AckTimer` — a pure ASGI middleware around the web app: for each request to the Slack endpoint
  it observes the time from the request's arrival to the start of our HTTP answer (the ack Slack waits
  for, 3 s at most) in ``gatebot_slack_ack_duration_seconds``. It only wraps ``send``: no body is read.
* :class:`MeteredWebClient` — the ``AsyncWebClient`` gatebot talks to Slack with, counting each Web API
  call by method and Slack's error code (``gatebot_slack_api_calls_total``).
* :func:`metrics_endpoint` — the Starlette handler: the scrape, with the store read off the event loop.

The figures and their definitions live in :mod:`gatebot.metrics` (core). Must not import the scheduler.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gatebot.metrics import CONTENT_TYPE, Metrics, StoreCollector, default_metrics, render
from gatebot.slack.deps import Deps

__all__ = ["AckTimer", "MeteredWebClient", "metrics_endpoint"]


class AckTimer:
    """ASGI middleware: time each request to ``path`` until its ``http.response.start``."""

    def __init__(self, app: ASGIApp, *, path: str, metrics: Metrics | None = None) -> None:
        self.app = app
        self.path = path
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") != self.path:
            await self.app(scope, receive, send)
            return
        metrics = self.metrics or default_metrics()
        started = time.perf_counter()
        answered = False

        async def timed(message: Message) -> None:
            nonlocal answered
            if not answered and message["type"] == "http.response.start":
                answered = True
                metrics.slack_ack(time.perf_counter() - started)
            await send(message)

        await self.app(scope, receive, timed)


class MeteredWebClient(AsyncWebClient):
    """An ``AsyncWebClient`` that counts every Web API call by method and error code."""

    async def api_call(
        self,
        api_method: str,
        *,
        http_verb: str = "POST",
        files: dict[str, Any] | None = None,
        data: dict[str, Any] | aiohttp.FormData | None = None,
        params: dict[str, Any] | None = None,
        json: dict[str, Any] | None = None,
        headers: dict[str, Any] | None = None,
        auth: dict[str, Any] | None = None,
    ) -> AsyncSlackResponse:
        metrics = default_metrics()
        try:
            response = await super().api_call(api_method, http_verb=http_verb, files=files, data=data,
                                              params=params, json=json, headers=headers, auth=auth)
        except SlackApiError as exc:
            error = exc.response.get("error") if exc.response is not None else None
            metrics.slack_call(api_method, str(error) if error else "unknown")
            raise
        except Exception:
            metrics.slack_call(api_method, "transport")
            raise
        metrics.slack_call(api_method, None)
        return response


def _leader(deps: Deps) -> bool | None:
    if deps.scheduler is None:
        return None
    return bool(deps.scheduler.status().get("leader"))


def metrics_endpoint(deps: Deps) -> Callable[[Request], Awaitable[Response]]:
    """``GET /metrics``: Prometheus text format (see :mod:`gatebot.metrics`)."""

    async def metrics(request: Request) -> Response:
        leader = _leader(deps)
        collector = StoreCollector(deps.db, now=deps.now, thresholds=deps.settings.gatebot_low_balance,
                                   leader=(lambda: leader) if leader is not None else None)
        body = await asyncio.to_thread(render, None, collector)
        return Response(body, media_type=CONTENT_TYPE, headers={"Cache-Control": "no-store"})

    return metrics
