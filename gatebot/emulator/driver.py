"""The Slack side of a conversation with the app: signed requests built exactly as Slack builds them.

:class:`SlackDriver` plays the Slack client and Slack's servers. It sends the app (its
``POST /slack/events`` URL) slash commands (form fields), interactivity and options loads
(form-encoded ``payload=`` JSON) and Events API callbacks (JSON), each signed with
``X-Slack-Signature: v0=HMAC-SHA256(secret, "v0:<ts>:<body>")``, and it does what the Slack client
would do with the answers: records a command's ephemeral reply, applies a view submission's
``response_action``, refuses to submit a modal with an empty required field. Every interaction gets
a fresh ``trigger_id`` the emulator's Web API accepts for 3 s of the workspace clock, and every
message interaction a ``response_url`` served by the emulator.

Negative tests: :meth:`SlackDriver.with_signing` gives a driver that signs with a wrong secret, a
stale timestamp or not at all; :meth:`SlackDriver.event` takes ``retry_num`` for Slack's retries.

The driver is layered, one module per concern: :mod:`~gatebot.emulator.transport` (signing, sending),
:mod:`~gatebot.emulator.actions` (clicks, external-select searches), :mod:`~gatebot.emulator.modals`
(inputs, submissions, closing), and here slash commands, shortcuts and Events API callbacks; what comes
back is in :mod:`~gatebot.emulator.deliveries`.

Must not import slack_bolt or slack_sdk (signatures are computed with hmac/hashlib).
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

from gatebot.emulator.blockkit import find_action
from gatebot.emulator.deliveries import (
    AckTimeoutError,
    CommandResult,
    Delivery,
    OptionsResult,
    SubmitResult,
)
from gatebot.emulator.modals import CONNECTION_TROUBLE, REQUIRED_FIELD, Modals
from gatebot.emulator.model import JSON, Channel, Ephemeral, Message, View
from gatebot.emulator.transport import VERIFICATION_TOKEN, sign

__all__ = [
    "CONNECTION_TROUBLE",
    "REQUIRED_FIELD",
    "VERIFICATION_TOKEN",
    "AckTimeoutError",
    "CommandResult",
    "Delivery",
    "OptionsResult",
    "SlackDriver",
    "SubmitResult",
    "find_action",
    "sign",
]


class SlackDriver(Modals):
    """Sends the app what Slack would send, and applies the answers to the workspace.

    ``app_url`` is the app's request URL (``.../slack/events``); ``emulator_base_url`` the emulator
    server (for ``response_url``s). Pass ``http`` to share a client or to reach an in-process app
    (``httpx.AsyncClient(transport=httpx.ASGITransport(app))``); otherwise the driver owns one —
    close it with :meth:`aclose` or ``async with``.
    """

    # ------------------------------------------------------------------------ slash commands

    async def slash_command(
        self, user: str, text: str = "", *, channel: str | Channel, command: str = "/gate"
    ) -> CommandResult:
        """``/command text`` typed by ``user`` in ``channel``. A reply in the answer body is recorded
        as the user's ephemeral message (or, with ``response_type: in_channel``, a channel message)."""
        ws = self.workspace
        ch = self._channel(channel)
        sender = ws.user(user)
        trigger_id = ws.issue_trigger(user)
        response_url = ws.issue_response_url(self.emulator_base_url, user=user, channel=ch.id)
        fields = {
            "token": VERIFICATION_TOKEN,
            "team_id": ws.team_id,
            "team_domain": ws.team_domain,
            "channel_id": ch.id,
            "channel_name": "directmessage" if ch.is_im else ch.name,
            "user_id": user,
            "user_name": sender.name,
            "command": command,
            "text": text,
            "api_app_id": ws.app_id,
            "is_enterprise_install": "false",
            "response_url": response_url,
            "trigger_id": trigger_id,
        }
        response = await self.post(urlencode(fields).encode(), "application/x-www-form-urlencoded")
        result = CommandResult(
            status=response.status_code,
            text=response.text,
            headers=dict(response.headers),
            sent=fields,
            trigger_id=trigger_id,
            response_url=response_url,
        )
        if result.ok and result.text.strip():
            body = result.json()
            if not isinstance(body, dict):
                body = {"text": result.text}
            reply_text = body.get("text")
            blocks = body.get("blocks")
            if body.get("response_type") == "in_channel":
                result.message = ws.post_message(
                    ch.id, text=reply_text, blocks=blocks, check_membership=False
                )
            else:
                result.ephemeral = ws.post_ephemeral(
                    ch.id,
                    user,
                    text=reply_text,
                    blocks=blocks,
                    source="command_response",
                    check_membership=False,
                )
                ws.bind_response_url(response_url, result.ephemeral)
        return result

    # ------------------------------------------------------------------------------ shortcuts

    async def message_shortcut(self, user: str, message: Message, callback_id: str) -> Delivery:
        """``user`` runs the message shortcut ``callback_id`` on ``message``: a ``message_action``."""
        ws = self.workspace
        ch = ws.channel(message.channel)
        trigger_id = ws.issue_trigger(user)
        response_url = ws.issue_response_url(self.emulator_base_url, user=user, channel=ch.id)
        payload = self._base("message_action", user)
        payload |= {
            "action_ts": ws.now_ts(),
            "channel": ws.channel_ref(ch),
            "callback_id": callback_id,
            "trigger_id": trigger_id,
            "response_url": response_url,
            "message_ts": message.ts,
            "message": ws.message_dict(message),
        }
        return await self._send_payload(payload, trigger_id=trigger_id, response_url=response_url)

    async def global_shortcut(self, user: str, callback_id: str) -> Delivery:
        """``user`` runs the global shortcut ``callback_id``: a ``shortcut`` payload."""
        ws = self.workspace
        trigger_id = ws.issue_trigger(user)
        payload = self._base("shortcut", user)
        payload |= {"action_ts": ws.now_ts(), "callback_id": callback_id, "trigger_id": trigger_id}
        return await self._send_payload(payload, trigger_id=trigger_id)

    # ---------------------------------------------------------------------------- Events API

    async def event(
        self,
        event: JSON,
        *,
        event_id: str | None = None,
        retry_num: int | None = None,
        retry_reason: str = "http_timeout",
    ) -> Delivery:
        """Deliver an Events API ``event_callback`` wrapping ``event``. Pass the ``event_id`` of an
        earlier delivery with ``retry_num`` to send Slack's retry of it."""
        ws = self.workspace
        if event_id is None:
            event_id = ws.next_event_id()
        event = {"event_ts": ws.now_ts(), **event}
        envelope: JSON = {
            "token": VERIFICATION_TOKEN,
            "team_id": ws.team_id,
            "context_team_id": ws.team_id,
            "context_enterprise_id": None,
            "api_app_id": ws.app_id,
            "event": event,
            "type": "event_callback",
            "event_id": event_id,
            "event_time": int(ws.clock.now().timestamp()),
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": ws.team_id,
                    "user_id": ws.bot_user_id,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
            "event_context": f"4-{event_id}",
        }
        headers = {}
        if retry_num is not None:
            headers = {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": retry_reason}
        response = await self.post(json.dumps(envelope).encode(), "application/json", headers=headers)
        return Delivery(
            status=response.status_code,
            text=response.text,
            headers=dict(response.headers),
            sent=envelope,
            event_id=event_id,
        )

    async def app_home_opened(
        self, user: str, *, tab: str = "home", event_id: str | None = None, retry_num: int | None = None
    ) -> Delivery:
        """``user`` opens the app's Home tab: an ``app_home_opened`` event (with the published view)."""
        ws = self.workspace
        event: JSON = {"type": "app_home_opened", "user": user, "channel": ws.dm_channel(user).id, "tab": tab}
        home = ws.home_view(user)
        if home is not None:
            event["view"] = ws.view_dict(home)
        return await self.event(event, event_id=event_id, retry_num=retry_num)

    async def url_verification(self, challenge: str = "emulator-challenge") -> Delivery:
        """Slack's handshake when the request URL is set; the app must echo ``challenge``."""
        body: JSON = {"token": VERIFICATION_TOKEN, "challenge": challenge, "type": "url_verification"}
        response = await self.post(json.dumps(body).encode(), "application/json")
        return Delivery(
            status=response.status_code, text=response.text, headers=dict(response.headers), sent=body
        )

    # -------------------------------------------------------------------------------- lookups

    def latest_message(self, channel: str) -> Message | None:
        return self.workspace.latest_message(channel)

    def replies(self, channel: str, thread_ts: str) -> list[Message]:
        return self.workspace.replies(channel, thread_ts)

    def ephemerals(self, user: str, *, channel: str | None = None) -> list[Ephemeral]:
        return self.workspace.ephemerals(user, channel=channel)

    def dm_messages(self, user: str) -> list[Message]:
        return self.workspace.dm_messages(user)

    def top_view(self, user: str) -> View | None:
        return self.workspace.top_view(user)

    def home_view(self, user: str) -> View | None:
        return self.workspace.home_view(user)

