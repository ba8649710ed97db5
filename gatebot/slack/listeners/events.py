"""Events API housekeeping: Slack's retries of an event this process already handled are dropped.

Routing table::

    middleware  event_callback with a known event_id    answer 200, run nothing (a retry)

Slack retries an Events API delivery (``X-Slack-Retry-Num``, same ``event_id``) when the first one
was not answered with 200 within 3 s. Bolt acks events before running listeners, so a retry of an
event this process saw is a duplicate: it is acknowledged and dropped. A retry of an event that never
reached this process (another instance, or a restart) is handled normally — the listeners are
idempotent anyway (publishing the Home tab twice shows the same thing). ``url_verification`` is
answered by Bolt itself. Interactivity and commands are never retried by Slack; a repeated "Place
order" is made harmless by the draft id (see order_flow). Must not import the scheduler.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse

from gatebot.slack.deps import Deps

__all__ = ["register"]

log = logging.getLogger(__name__)


def register(app: AsyncApp, deps: Deps) -> None:
    app.middleware(_drop_retries(deps))


def _drop_retries(deps: Deps) -> Any:
    async def drop_event_retries(req: AsyncBoltRequest, body: dict[str, Any],
                                 next: Callable[[], Awaitable[None]]) -> BoltResponse | None:
        if body.get("type") == "event_callback" and not deps.first_delivery(body.get("event_id")):
            retry = (req.headers.get("x-slack-retry-num") or ["?"])[0]
            log.info("dropping Slack's retry #%s of event %s (already handled)", retry, body.get("event_id"))
            return BoltResponse(status=200, body="")
        await next()
        return None

    return drop_event_retries
