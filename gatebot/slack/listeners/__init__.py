"""Bolt listeners, one module per Slack surface, each with ``register(app, deps)``.

* :mod:`~gatebot.slack.listeners.commands` — ``/gate ...``
* :mod:`~gatebot.slack.listeners.order_flow` — the order modal: options, product choice, review, placing
* :mod:`~gatebot.slack.listeners.lookups` — order lookups: buttons on order messages, the message shortcut
* :mod:`~gatebot.slack.listeners.home` — the App Home tab
* :mod:`~gatebot.slack.listeners.events` — Events API housekeeping (retries)
* :mod:`~gatebot.slack.listeners.alerts` — buttons on alert messages
* :mod:`~gatebot.slack.listeners.bulk` — bulk orders: the CSV modal, its summary, the batch message's buttons

Every listener acks first (Slack's 3 s), then talks to Gate. This module holds the small helpers they
share: replying privately (``response_url``, else ``chat.postEphemeral``, else a DM) and the error path
for listeners that ack first (the apology). What "Slack could not do it" means is
:mod:`gatebot.slack.failures` (re-exported here). Importing it does
nothing. Listener modules must not import the scheduler or ``gatebot.jobs``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from gatebot.slack.ackfirst import acks_first
from gatebot.slack.blocks.common import MAX_MESSAGE_BLOCKS, Message, context
from gatebot.slack.blocks.messages import error_message
from gatebot.slack.failures import SLACK_FAILURES, error_code

__all__ = ["APOLOGY", "SLACK_FAILURES", "Reply", "acked_first", "dm", "error_code", "private_reply",
           "report_failure", "request_kind", "with_note"]

log = logging.getLogger(__name__)

Reply = Callable[[Message], Awaitable[None]]
Listener = Callable[..., Awaitable[None]]

APOLOGY = ("Sorry — something went wrong on gatebot's side and I couldn't finish that. It has been logged; "
           "try again in a moment, and tell a gatebot admin if it keeps happening.")


def with_note(message: Message, text: str) -> Message:
    """``message`` with one more context line at the end (when Slack's 50-block limit allows)."""
    blocks = list(message.get("blocks") or [])
    if len(blocks) < MAX_MESSAGE_BLOCKS:
        blocks.append(context(text))
    return {**message, "blocks": blocks}


async def dm(client: AsyncWebClient, user: str, message: Message) -> bool:
    """Send ``message`` to ``user`` in the bot's DM. Returns whether it was sent."""
    try:
        opened = await client.conversations_open(users=user)
        channel = opened["channel"]["id"]
        await client.chat_postMessage(channel=channel, **message)
    except SLACK_FAILURES as exc:
        log.warning("could not DM %s (%s)", user, error_code(exc))
        return False
    return True


def private_reply(client: AsyncWebClient, *, user: str, channel: str | None = None,
                  respond: AsyncRespond | None = None) -> Reply:
    """A function that shows a message to ``user`` only: through the interaction's ``response_url``,
    else as an ephemeral in ``channel``, else in a DM (the bot may not be in the channel)."""

    async def send(message: Message) -> None:
        if respond is not None and respond.response_url:  # a view submission has none: respond() would raise
            try:
                answer: Any = await respond(response_type="ephemeral", text=message.get("text", ""),
                                            blocks=message.get("blocks"))
                if 200 <= int(getattr(answer, "status_code", 200)) < 300:
                    return
                log.info("response_url refused the reply (HTTP %s); trying another way",
                         getattr(answer, "status_code", "?"))
            except SLACK_FAILURES as exc:
                log.info("response_url failed (%s); trying another way", error_code(exc))
        if channel:
            try:
                await client.chat_postEphemeral(channel=channel, user=user, **message)
                return
            except SLACK_FAILURES as exc:
                log.info("ephemeral reply in %s failed (%s); sending a DM", channel, error_code(exc))
        await dm(client, user, message)

    return send


def request_kind(body: Mapping[str, Any]) -> str:
    """``command``, ``block_actions``, ``view_submission``, ``event_callback``... of a request body."""
    return str(body.get("type") or ("command" if "command" in body else "request"))


async def report_failure(error: BaseException, *, body: Mapping[str, Any], client: AsyncWebClient | None,
                         respond: AsyncRespond | None = None) -> None:
    """Log an unexpected listener error — its type and traceback, never the payload (it may hold a
    customer account) — and apologise to the person privately."""
    kind = request_kind(body)
    log.error("unhandled %s in a Slack %s listener", type(error).__name__, kind, exc_info=error)
    user = body.get("user_id") or (body.get("user") or {}).get("id") or (body.get("event") or {}).get("user")
    if client is None or not isinstance(user, str) or not user:
        return
    channel = body.get("channel_id") or (body.get("channel") or {}).get("id")
    await private_reply(client, user=user, channel=channel, respond=respond)(error_message(APOLOGY))


def acked_first(listener: Listener) -> Listener:
    """For listeners that ack first and then work: an error after the ack is reported here.

    Bolt, when a listener fails after acking, resets the ack it has not sent yet (a failure within its
    10 ms polling loses the answer: Slack sees a timeout). Errors after the ack are therefore handled
    by :func:`report_failure` in the listener's task; errors before it still go to the app's one error
    handler, which shapes the answer to Slack. The listener must declare ``ack``, ``body`` and
    ``client`` (Bolt injects arguments by name; the wrapper keeps the listener's signature).
    """

    @functools.wraps(listener)
    async def run(**kwargs: Any) -> None:
        ack = kwargs.get("ack")
        try:
            await listener(**(kwargs if ack is None else {**kwargs, "ack": acks_first(ack)}))
        except Exception as exc:
            if ack is None or getattr(ack, "response", None) is None:
                raise
            await report_failure(exc, body=kwargs.get("body") or {}, client=kwargs.get("client"),
                                 respond=kwargs.get("respond"))

    return run
