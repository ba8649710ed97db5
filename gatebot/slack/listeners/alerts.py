"""Buttons on alert messages: Acknowledge, Snooze 1 h / 4 h / 24 h, and the link button.

Routing table (:func:`register`)::

    alert_ack          ack, then alerts.stored.ack_alert    -> message shows who acked, note in its thread
    alert_snooze_1h    ack, then alerts.stored.snooze_alert -> message shows until when; a reminder when it ends
    alert_snooze_4h    (same, 4 h)
    alert_snooze_24h   (same, 24 h)
    alert_link         ack only (a URL button: Slack opens the link itself)

Anyone who can see the alert channel may ack or snooze (an alert is everybody's business); every
click is recorded in the audit log by :mod:`gatebot.monitor` in the same transaction as the change.
A click on an alert that is already resolved (or already acked by that person) changes nothing and
tells only the clicker why. The alert state lives in the store, so a click handled by any web
process updates the one message the clock process posted.

Must not import the scheduler (apscheduler) or ``gatebot.jobs``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, Protocol, TypeVar

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from gatebot.alerts import stored as alert_store
from gatebot.clock import Clock
from gatebot.config import Settings
from gatebot.slack import ids
from gatebot.slack.alert_poster import AlertPoster, app_home_link
from gatebot.slack.blocks.common import esc, message, section
from gatebot.slack.listeners import private_reply
from gatebot.store.db import Database

__all__ = ["AlertDeps", "register"]

log = logging.getLogger(__name__)

Handler = Callable[..., Awaitable[None]]
T = TypeVar("T")


class AlertDeps(Protocol):
    """What the alert buttons need from the app's dependencies (``gatebot.slack.deps.Deps`` has it)."""

    @property
    def settings(self) -> Settings: ...
    @property
    def db(self) -> Database: ...
    @property
    def clock(self) -> Clock: ...


def register(app: AsyncApp, deps: AlertDeps) -> None:
    """Route the alert buttons (see the module docstring)."""
    app.action(ids.ALERT_ACK)(_acknowledge(deps))
    for action_id, seconds in ids.ALERT_SNOOZE_SECONDS.items():
        app.action(action_id)(_snooze(deps, timedelta(seconds=seconds)))
    app.action(ids.ALERT_LINK)(_link_clicked)


def _click(body: dict[str, Any], action: dict[str, Any]) -> tuple[str, str, str | None]:
    """(alert key, user id, channel id) of a button click."""
    key = str(action.get("value") or "").strip()
    user = str((body.get("user") or {}).get("id") or "")
    channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
    return key, user, channel


def _poster(deps: AlertDeps, client: AsyncWebClient, body: dict[str, Any]) -> AlertPoster:
    """A poster on the request's client; the link button comes from the click (no extra API calls)."""
    team = str((body.get("team") or {}).get("id") or "")
    app_id = str(body.get("api_app_id") or "")
    if team and app_id:
        home = app_home_link(client.base_url, team_id=team, app_id=app_id)
        return AlertPoster.for_settings(deps.settings, db=deps.db, clock=deps.clock, client=client,
                                        link_for=lambda _key: (home, "Open gatebot"))
    return AlertPoster.for_settings(deps.settings, db=deps.db, clock=deps.clock, client=client,
                                    discover_home_link=False)


async def _explain_no_change(deps: AlertDeps, client: AsyncWebClient, respond: AsyncRespond, *, key: str, user: str,
                             channel: str | None, what: str) -> None:
    state = await deps.db.run(lambda s: alert_store.alert_state(s, key))
    if state is None:
        text = "That alert no longer exists; nothing to do."
    elif not state.alert.open:
        text = f"*{esc(state.render(deps.clock.now()).title)}* is already resolved; nothing to {what}."
    elif what == "acknowledge" and state.alert.acked_by == user:
        text = "You have already acknowledged this alert."
    else:
        text = "Nothing changed."
    reply = private_reply(client, user=user, channel=channel, respond=respond)
    await reply(message(text, [section(text)]))


def _acknowledge(deps: AlertDeps) -> Handler:
    async def acknowledge(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient,
                          respond: AsyncRespond) -> None:
        await ack()
        key, user, channel = _click(body, action)
        if not key or not user:
            return
        now = deps.clock.now()
        notes = await deps.db.run(lambda s: alert_store.ack_alert(s, key, by=user, now=now))
        if not notes:
            await _explain_no_change(deps, client, respond, key=key, user=user, channel=channel, what="acknowledge")
            return
        log.info("alert %s acknowledged by %s", key, user)
        await _poster(deps, client, body).deliver(notes)

    return acknowledge


def _snooze(deps: AlertDeps, duration: timedelta) -> Handler:
    async def snooze(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient,
                     respond: AsyncRespond) -> None:
        await ack()
        key, user, channel = _click(body, action)
        if not key or not user:
            return
        now = deps.clock.now()
        notes = await deps.db.run(lambda s: alert_store.snooze_alert(s, key, by=user, duration=duration, now=now))
        if not notes:
            await _explain_no_change(deps, client, respond, key=key, user=user, channel=channel, what="snooze")
            return
        log.info("alert %s snoozed by %s for %s", key, user, duration)
        await _poster(deps, client, body).deliver(notes)

    return snooze


async def _link_clicked(ack: AsyncAck) -> None:
    """A URL button still sends ``block_actions``; Slack wants it acknowledged."""
    await ack()
