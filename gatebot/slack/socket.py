"""Socket Mode: ``gatebot socket`` runs the same Bolt app over Slack's websocket (no inbound port).

The app-level token (``SLACK_APP_TOKEN``, ``xapp-…`` with ``connections:write``) opens the connection
through ``apps.connections.open`` on ``SLACK_API_URL``; requests arrive unsigned over the socket, so no
signing secret is needed — the bot token still is. :func:`run_socket` refuses to start without them
(:class:`~gatebot.slack.app.SlackConfigError`, printed by the CLI) and serves a
:class:`~gatebot.runtime.Runtime`'s app through :meth:`~gatebot.runtime.Runtime.run` (its scheduler
alongside, the one stop sequence on SIGINT/SIGTERM). Nothing happens at import time. Must not import
the scheduler library; ``gatebot.runtime`` only for types.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp

from gatebot.slack.app import check_settings

if TYPE_CHECKING:
    from gatebot.runtime import Runtime

__all__ = ["run_socket", "socket_handler"]

log = logging.getLogger(__name__)



def socket_handler(app: AsyncApp, app_token: str) -> AsyncSocketModeHandler:
    """The Socket Mode handler for ``app`` (its Web API client, hence ``SLACK_API_URL``, is reused)."""
    return AsyncSocketModeHandler(app, app_token=app_token, web_client=app.client)


async def run_socket(rt: Runtime, *, stop: asyncio.Event | None = None) -> None:
    """``gatebot socket``: ``rt``'s Slack app over Socket Mode until SIGINT/SIGTERM (or ``stop``), then
    :meth:`~gatebot.runtime.Runtime.stop`'s one stop sequence."""
    _bot, app_token = check_settings(rt.settings, socket_mode=True)
    if rt.slack is None or not rt.slack.socket_mode:
        raise ValueError("this runtime has no Socket Mode app: build it with slack='socket'")
    handler = socket_handler(rt.slack.app, app_token)

    async def serving(stopped: asyncio.Event, _hurry: asyncio.Event) -> None:
        try:
            await handler.connect_async()  # type: ignore[no-untyped-call]
            log.info("connected to Slack over Socket Mode")
            await stopped.wait()
        finally:
            await handler.close_async()  # type: ignore[no-untyped-call]

    await rt.run(serving, stop=stop)
