"""Socket Mode: ``gatebot socket`` runs the same Bolt app over Slack's websocket (no inbound port).

The app-level token (``SLACK_APP_TOKEN``, ``xapp-…`` with ``connections:write``) opens the connection
through ``apps.connections.open`` on ``SLACK_API_URL``; requests arrive unsigned over the socket, so no
signing secret is needed — the bot token still is. :func:`run_socket` refuses to start without them
(:class:`~gatebot.slack.app.SlackConfigError`, printed by the CLI), runs the scheduler alongside if
given, and stops cleanly on SIGINT/SIGTERM. Nothing happens at import time. Must not import the
scheduler library (it is passed in).
"""

from __future__ import annotations

import asyncio
import logging

from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp

from gatebot.runtime import Core
from gatebot.signals import stop_on_signals
from gatebot.slack.app import build_slack, check_settings, shut_down
from gatebot.slack.deps import Scheduler

__all__ = ["run_socket", "socket_handler"]

log = logging.getLogger(__name__)



def socket_handler(app: AsyncApp, app_token: str) -> AsyncSocketModeHandler:
    """The Socket Mode handler for ``app`` (its Web API client, hence ``SLACK_API_URL``, is reused)."""
    return AsyncSocketModeHandler(app, app_token=app_token, web_client=app.client)


async def run_socket(core: Core, *, scheduler: Scheduler | None = None, stop: asyncio.Event | None = None) -> None:
    """``gatebot socket``: serve the Slack app over Socket Mode until SIGINT/SIGTERM (or ``stop``)."""
    _bot, app_token = check_settings(core.settings, socket_mode=True)
    app, deps = build_slack(core, scheduler=scheduler, socket_mode=True)
    handler = socket_handler(app, app_token)
    with stop_on_signals(stop or asyncio.Event()) as stopped:
        if scheduler is not None:
            await scheduler.start()
        try:
            await handler.connect_async()  # type: ignore[no-untyped-call]
            log.info("connected to Slack over Socket Mode")
            await stopped.wait()
        finally:
            await handler.close_async()  # type: ignore[no-untyped-call]
            await shut_down(deps, scheduler)
