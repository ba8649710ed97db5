"""The Bolt app: :func:`create_app` (client, signing secret, error handler, listeners), its settings check and
Web API client, and :func:`drain_listeners` (stopping waits for work still running after an ack).

:func:`gatebot.runtime.build_slack` assembles the Slack surface from these: :func:`check_settings` refuses
to start without ``SLACK_BOT_TOKEN``, and without ``SLACK_SIGNING_SECRET`` in HTTP mode (Bolt would answer
every request 500); :func:`make_client` is one ``AsyncWebClient`` pointed at ``SLACK_API_URL`` (Slack,
GovSlack or a local fake) with a retry handler for HTTP 429.

Listeners are grouped by surface; each module's ``register(app, deps)`` reads as its routing table.
One ``@app.error`` handler logs without secrets (no payloads: they may hold customer accounts) and
answers the person politely — only for a verified request (:func:`gatebot.slack.edge.is_verified`):
an unverified body's ``response_url``, channel and user are never used. HTTP requests are verified by
:mod:`gatebot.slack.edge`, so Bolt's own signature check is off; a middleware refuses any HTTP
request that did not come through the edge.

Nothing happens at import time. Must not import the scheduler or ``gatebot.runtime`` (the runtime hands
the pieces in).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from gatebot.config import ConfigError, Settings
from gatebot.slack.blocks.messages import error_message
from gatebot.slack.deps import Deps
from gatebot.slack.edge import is_verified
from gatebot.slack.listeners import (
    APOLOGY,
    bulk,
    commands,
    events,
    home,
    lookups,
    order_flow,
    report_failure,
    request_kind,
)
from gatebot.slack.listeners import alerts as alert_listeners
from gatebot.slack.listeners import approvals as approval_listeners
from gatebot.slack.metrics import MeteredWebClient

__all__ = ["SlackConfigError", "check_settings", "create_app", "drain_listeners", "make_client"]

log = logging.getLogger(__name__)

#: Timeout of one Slack Web API call (seconds).
SLACK_TIMEOUT = 10


class SlackConfigError(ConfigError):
    """The Slack settings cannot work; each problem names the variable (the CLI prints them)."""


def check_settings(settings: Settings, *, socket_mode: bool = False) -> tuple[str, str]:
    """``(bot token, signing secret or app token)``, or :class:`SlackConfigError` saying what is missing."""
    problems: list[str] = []
    bot = settings.slack_bot_token.get_secret_value().strip() if settings.slack_bot_token else ""
    if not bot:
        problems.append("SLACK_BOT_TOKEN is not set: gatebot needs the bot token (xoxb-…) from the Slack app's "
                        "'OAuth & Permissions' page to talk to Slack.")
    elif not bot.startswith("xoxb-"):
        problems.append("SLACK_BOT_TOKEN must be a bot token starting with xoxb-.")
    if socket_mode:
        other = settings.slack_app_token.get_secret_value().strip() if settings.slack_app_token else ""
        if not other:
            problems.append("SLACK_APP_TOKEN is not set: Socket Mode (gatebot socket) needs an app-level token "
                            "(xapp-…) with the connections:write scope, from the app's 'Basic Information' page.")
        elif not other.startswith("xapp-"):
            problems.append("SLACK_APP_TOKEN must be an app-level token starting with xapp-.")
    else:
        other = settings.slack_signing_secret.get_secret_value().strip() if settings.slack_signing_secret else ""
        if not other:
            problems.append("SLACK_SIGNING_SECRET is not set: HTTP mode (gatebot serve) needs it to check that "
                            "requests come from Slack (the app's 'Basic Information' page). For a machine "
                            "without a public URL, use Socket Mode: gatebot socket with SLACK_APP_TOKEN.")
    if problems:
        raise SlackConfigError(problems)
    return bot, other


def make_client(settings: Settings) -> AsyncWebClient:
    """The Web API client: ``SLACK_API_URL``, retries on connection errors and on HTTP 429 (Retry-After)."""
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    base_url = settings.slack_api_url or "https://slack.com/api/"
    return MeteredWebClient(  # counts calls by method and error (gatebot_slack_api_calls_total)
        token=token, base_url=base_url.rstrip("/") + "/", timeout=SLACK_TIMEOUT,
        retry_handlers=[AsyncConnectionErrorRetryHandler(max_retry_count=1),
                        AsyncRateLimitErrorRetryHandler(max_retry_count=2)],
    )


def _not_token_unused(record: logging.LogRecord) -> bool:
    """Bolt warns "`token` will be unused" whenever SLACK_BOT_TOKEN is in the environment and a client is
    given — at every start of a correctly configured deployment. The client carries that very token."""
    return "`token` will be unused" not in record.getMessage()


def create_app(deps: Deps, *, client: AsyncWebClient | None = None, socket_mode: bool = False) -> AsyncApp:
    """The Bolt app with every listener registered. Raises :class:`SlackConfigError` for bad settings."""
    _bot, secret = check_settings(deps.settings, socket_mode=socket_mode)
    logging.getLogger("gatebot.slack.bolt").addFilter(_not_token_unused)  # same filter object: added once
    app = AsyncApp(
        client=client or make_client(deps.settings),
        signing_secret=None if socket_mode else secret,
        # HTTP requests are verified (and parsed) by gatebot.slack.edge before Bolt sees them; Bolt's
        # own check would read unverified bodies first. _only_verified refuses anything that skipped it.
        request_verification_enabled=False,
        process_before_response=False,  # ack at once, keep working after the HTTP answer
        logger=logging.getLogger("gatebot.slack.bolt"),
    )
    app.middleware(_only_verified)
    app.error(_error_handler())
    # Listeners by surface, each module's register() is its routing table.
    events.register(app, deps)  # middleware first: drops Slack's retries of handled events
    commands.register(app, deps)
    order_flow.register(app, deps)
    lookups.register(app, deps)
    home.register(app, deps)
    alert_listeners.register(app, deps)
    approval_listeners.register(app, deps)
    bulk.register(app, deps)
    return app


#: The coroutine Bolt runs a listener in after the ack (``process_before_response=False``). Bolt starts it
#: with ``ensure_future`` and keeps no handle, so stopping finds these tasks by name; if Bolt renames it,
#: stopping merely stops waiting for them.
_BOLT_LISTENER_RUN = "run_ack_function_asynchronously"


async def drain_listeners(within: float) -> None:
    """Wait (up to ``within`` s) for listeners still working after their ack — a Gate call behind
    ``/gate balance``, an order being placed — so that stopping does not cancel them half-way."""
    running = {task for task in asyncio.all_tasks()
               if not task.done() and getattr(task.get_coro(), "__name__", "") == _BOLT_LISTENER_RUN}
    if not running:
        return
    _done, left = await asyncio.wait(running, timeout=within)
    if left:
        log.warning("stopped with %d Slack request(s) still being handled", len(left))


async def _only_verified(req: AsyncBoltRequest, next_: Callable[[], Awaitable[BoltResponse]]) -> BoltResponse:
    """HTTP requests must come through :class:`gatebot.slack.edge.SlackEdge` (it checks the signature);
    one that did not — the app served some other way — is refused before any listener runs."""
    if not is_verified(req):
        log.error("refused an HTTP request that did not pass gatebot's edge: serve the app with create_web_app")
        return BoltResponse(status=401, body="")
    return await next_()


def _error_handler() -> Any:
    async def on_error(error: Exception, body: dict[str, Any], response: BoltResponse | None,
                       client: AsyncWebClient, request: AsyncBoltRequest,
                       respond: AsyncRespond | None = None) -> BoltResponse | None:
        if not is_verified(request):  # never act on an unverified body: no reply, no response_url
            log.error("unhandled %s for an unverified request; not answered", type(error).__name__)
            return BoltResponse(status=401, body="")
        kind = request_kind(body)
        if response is None:  # acknowledged already: apologise privately
            await report_failure(error, body=body, client=client, respond=respond)
            return None
        # Not acknowledged yet: the answer to Slack is ours to shape.
        if kind in ("command", "block_suggestion"):
            log.error("unhandled %s in a Slack %s listener", type(error).__name__, kind, exc_info=error)
            if kind == "command":
                return _json_response({"response_type": "ephemeral", **error_message(APOLOGY)})
            return _json_response({"options": []})
        await report_failure(error, body=body, client=client, respond=respond)
        return BoltResponse(status=200, body="")  # closes a modal; the apology went privately

    return on_error


def _json_response(data: dict[str, Any]) -> BoltResponse:
    return BoltResponse(status=200, body=json.dumps(data), headers={"content-type": "application/json"})
