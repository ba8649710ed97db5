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

Must not import slack_bolt or slack_sdk (signatures are computed with hmac/hashlib).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import httpx

from gatebot.emulator.workspace import (
    LIST_STATE_KEYS,
    STATE_KEYS,
    ApiError,
    Channel,
    Ephemeral,
    FoundAction,
    Message,
    View,
    Workspace,
    find_action,
    find_actions,
    initial_state,
    iter_elements,
    number_problem,
)

__all__ = [
    "AckTimeoutError",
    "CommandResult",
    "Delivery",
    "OptionsResult",
    "SlackDriver",
    "SubmitResult",
    "find_action",
    "sign",
]

JSON = dict[str, Any]

#: The legacy verification token Slack puts in payloads (Bolt ignores it; it is not a secret).
VERIFICATION_TOKEN = "emulator-verification-token"  # noqa: S105
#: What the Slack client shows when a view submission gets no usable answer.
CONNECTION_TROUBLE = "We had some trouble connecting. Try again?"
REQUIRED_FIELD = "Please complete this required field."


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """Slack's request signature: ``v0=`` + hex HMAC-SHA256 of ``v0:<timestamp>:<body>``."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


class AckTimeoutError(TimeoutError):
    """The app did not answer within the ack deadline (Slack would show the user an error)."""


@dataclass(kw_only=True)
class Delivery:
    """One request sent to the app and its answer."""

    status: int
    text: str
    headers: dict[str, str]
    sent: JSON  # the payload, form fields or event envelope, decoded
    trigger_id: str | None = None
    response_url: str | None = None
    event_id: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == 200

    def json(self) -> Any:
        """The answer's JSON body (numbers as Decimal), or ``None`` if empty or not JSON."""
        if not self.text.strip():
            return None
        try:
            return json.loads(self.text, parse_float=Decimal)
        except ValueError:
            return None


@dataclass(kw_only=True)
class CommandResult(Delivery):
    """A slash command's answer; a reply in the response body is recorded in the workspace."""

    ephemeral: Ephemeral | None = None
    message: Message | None = None


@dataclass(kw_only=True)
class OptionsResult(Delivery):
    """An options load; ``options`` flattens ``option_groups``."""

    options: list[JSON] = field(default_factory=list)
    option_groups: list[JSON] = field(default_factory=list)


@dataclass(kw_only=True)
class SubmitResult:
    """A view submission as the user experiences it.

    ``delivery`` is ``None`` when the Slack client refused to submit (``client_errors``: an empty
    required field, an invalid number). ``errors`` are the app's ``response_action: errors``;
    ``client_error`` is what the user would see instead of a sensible outcome (a non-200 answer, an
    error keyed by something that is not an input block, a rejected ``update``/``push`` view).
    ``view`` is the user's top view afterwards (``None`` once the modal is closed).
    """

    delivery: Delivery | None
    response_action: str | None = None
    errors: dict[str, str] = field(default_factory=dict)
    client_errors: dict[str, str] = field(default_factory=dict)
    client_error: str | None = None
    view: View | None = None

    @property
    def status(self) -> int | None:
        return self.delivery.status if self.delivery is not None else None

    @property
    def closed(self) -> bool:
        """The submitted view is gone from the user's screen."""
        return self.view is None


def _has_value(state: JSON | None) -> bool:
    if not state:
        return False
    return any(v not in (None, "", []) for k, v in state.items() if k != "type")


class SlackDriver:
    """Sends the app what Slack would send, and applies the answers to the workspace.

    ``app_url`` is the app's request URL (``.../slack/events``); ``emulator_base_url`` the emulator
    server (for ``response_url``s). Pass ``http`` to share a client or to reach an in-process app
    (``httpx.AsyncClient(transport=httpx.ASGITransport(app))``); otherwise the driver owns one —
    close it with :meth:`aclose` or ``async with``.
    """

    def __init__(
        self,
        app_url: str,
        signing_secret: str,
        workspace: Workspace,
        emulator_base_url: str,
        http: httpx.AsyncClient | None = None,
        *,
        ack_timeout: float | None = 3.0,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.app_url = app_url
        self.signing_secret = signing_secret
        self.workspace = workspace
        self.emulator_base_url = emulator_base_url.rstrip("/")
        self.ack_timeout = ack_timeout
        self._owns_http = http is None
        self._http = http if http is not None else httpx.AsyncClient()
        self._wall_clock = wall_clock
        self._sign_secret: str | None = signing_secret
        self._timestamp_skew = 0.0
        self._extra_headers: dict[str, str] = {}

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> SlackDriver:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def with_signing(
        self,
        *,
        secret: str | None = None,
        timestamp_skew: float = 0.0,
        unsigned: bool = False,
        headers: Mapping[str, str] | None = None,
    ) -> SlackDriver:
        """A driver sharing this one's HTTP client and workspace that signs differently: with
        ``secret`` instead of the right one, with a timestamp ``timestamp_skew`` seconds off
        (``-600`` is stale), or not at all; ``headers`` are added to every request."""
        other = SlackDriver.__new__(SlackDriver)
        other.__dict__.update(self.__dict__)
        other._owns_http = False
        other._sign_secret = None if unsigned else (secret if secret is not None else self.signing_secret)
        other._timestamp_skew = timestamp_skew
        other._extra_headers = {**self._extra_headers, **(headers or {})}
        return other

    # ------------------------------------------------------------------------------ sending

    async def post(
        self, body: bytes, content_type: str, *, headers: Mapping[str, str] | None = None
    ) -> httpx.Response:
        """Send a raw body to the app, signed (or not) as this driver is configured."""
        timestamp = str(int(self._wall_clock() + self._timestamp_skew))
        all_headers = {
            "Content-Type": content_type,
            "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
        }
        if self._sign_secret is not None:
            all_headers["X-Slack-Request-Timestamp"] = timestamp
            all_headers["X-Slack-Signature"] = sign(self._sign_secret, timestamp, body)
        all_headers |= self._extra_headers
        all_headers |= dict(headers or {})
        try:
            return await self._http.post(
                self.app_url, content=body, headers=all_headers, timeout=self.ack_timeout
            )
        except httpx.TimeoutException as exc:
            raise AckTimeoutError(f"the app did not answer within {self.ack_timeout} s") from exc

    async def _send_payload(self, payload: JSON, **extra: Any) -> Delivery:
        body = urlencode({"payload": json.dumps(payload)}).encode()
        response = await self.post(body, "application/x-www-form-urlencoded")
        return Delivery(
            status=response.status_code,
            text=response.text,
            headers=dict(response.headers),
            sent=payload,
            **extra,
        )

    def _base(self, kind: str, user: str) -> JSON:
        ws = self.workspace
        return {
            "type": kind,
            "user": ws.user_ref(user),
            "api_app_id": ws.app_id,
            "token": VERIFICATION_TOKEN,
            "team": ws.team_ref(),
            "enterprise": None,
            "is_enterprise_install": False,
        }

    def _channel(self, ref: str | Channel) -> Channel:
        if isinstance(ref, Channel):
            return ref
        try:
            return self.workspace.channel(ref)
        except ApiError:
            raise LookupError(f"emulator: no channel {ref!r}") from None

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

    # ------------------------------------------------------------------------- interactivity

    @staticmethod
    def _pick(
        blocks: Sequence[JSON] | None, action_id: str, *, block_id: str | None, value: Any
    ) -> FoundAction:
        candidates = find_actions(blocks, action_id, block_id=block_id)
        if not candidates:
            raise LookupError(
                f"emulator: no element with action_id {action_id!r}"
                + (f" in block {block_id!r}" if block_id else "")
            )
        if len(candidates) > 1 and value is not None:
            narrowed = [c for c in candidates if c.element.get("value") == value]
            candidates = narrowed or candidates
        if len(candidates) > 1:
            raise LookupError(
                f"emulator: {len(candidates)} elements have action_id {action_id!r}; pass block_id= or value="
            )
        return candidates[0]

    @staticmethod
    def _option(element: JSON, choice: str | JSON | None) -> JSON:
        if isinstance(choice, dict):
            return choice
        if choice is None:
            raise ValueError(
                f"emulator: {element.get('type')} {element.get('action_id')!r} needs a selected option"
            )
        options = list(element.get("options") or [])
        for group in element.get("option_groups") or []:
            options += group.get("options") or []
        for option in options:
            if option.get("value") == choice:
                return dict(option)
        if element.get("type", "").endswith("external_select"):
            return {"text": {"type": "plain_text", "text": choice, "emoji": True}, "value": choice}
        raise LookupError(f"emulator: {element.get('action_id')!r} has no option with value {choice!r}")

    def _state_value(
        self,
        element: JSON,
        value: Any,
        *,
        selected_option: str | JSON | None = None,
        selected_options: Sequence[str | JSON] | None = None,
    ) -> JSON:
        """The ``state.values`` entry for ``element`` after the user typed/picked ``value``."""
        etype = str(element.get("type"))
        if etype not in STATE_KEYS:
            raise ValueError(f"emulator: {etype} {element.get('action_id')!r} holds no value")
        key = STATE_KEYS[etype][0]
        if key == "selected_option":
            return {
                "type": etype,
                key: self._option(element, selected_option if selected_option is not None else value),
            }
        if key in LIST_STATE_KEYS:
            chosen = selected_options if selected_options is not None else value
            if chosen is None:
                chosen = []
            if isinstance(chosen, str | dict):
                chosen = [chosen]
            if key == "selected_options":
                return {"type": etype, key: [self._option(element, c) for c in chosen]}
            return {"type": etype, key: [str(c) for c in chosen]}
        if key == "rich_text_value":
            return {"type": etype, key: value}
        return {"type": etype, key: None if value is None else str(value)}

    async def click(
        self,
        user: str,
        target: Message | Ephemeral | View,
        action_id: str,
        *,
        value: Any = None,
        selected_option: str | JSON | None = None,
        selected_options: Sequence[str | JSON] | None = None,
        block_id: str | None = None,
    ) -> Delivery:
        """``user`` uses the element ``action_id`` in a message, an ephemeral message or a view
        (modal or Home tab): a ``block_actions`` payload.

        ``value`` picks among buttons sharing an action_id (by their ``value``), or is what was typed
        into a ``dispatch_action`` input / the user, channel or date picked. ``selected_option`` is an
        option's value (looked up in the element) or a whole option object (external selects).
        """
        ws = self.workspace
        trigger_id = ws.issue_trigger(user)
        payload = self._base("block_actions", user)
        payload["trigger_id"] = trigger_id
        response_url: str | None = None
        if isinstance(target, View):
            view = ws.view(target.id)
            if view.closed:
                raise LookupError(f"emulator: view {view.id} is closed")
            found = self._pick(view.blocks, action_id, block_id=block_id, value=value)
            action = self._action(found, value, selected_option, selected_options)
            if found.element.get("type") in STATE_KEYS:
                state = self._state_value(
                    found.element, value, selected_option=selected_option, selected_options=selected_options
                )
                ws.set_view_state(view.id, found.block_id, action_id, state)
            payload["container"] = {"type": "view", "view_id": view.id}
            payload["view"] = ws.view_dict(view)
        else:
            if target.deleted:
                raise LookupError("emulator: that message was deleted")
            ch = ws.channel(target.channel)
            found = self._pick(target.blocks, action_id, block_id=block_id, value=value)
            action = self._action(found, value, selected_option, selected_options)
            is_ephemeral = isinstance(target, Ephemeral)
            container: JSON = {
                "type": "message",
                "message_ts": target.ts,
                "channel_id": ch.id,
                "is_ephemeral": is_ephemeral,
            }
            if target.thread_ts is not None and target.thread_ts != target.ts:
                container["thread_ts"] = target.thread_ts
            response_url = ws.issue_response_url(
                self.emulator_base_url, user=user, channel=ch.id, original=target
            )
            payload["container"] = container
            payload["channel"] = ws.channel_ref(ch)
            if isinstance(target, Message):
                payload["message"] = ws.message_dict(target)
            payload["state"] = {"values": self._message_state(target.blocks, found, action)}
            payload["response_url"] = response_url
        payload["actions"] = [action]
        return await self._send_payload(payload, trigger_id=trigger_id, response_url=response_url)

    def _message_state(self, blocks: list[JSON] | None, found: FoundAction, action: JSON) -> JSON:
        state = initial_state(list(blocks or []))
        etype = found.element.get("type")
        if isinstance(etype, str) and etype in STATE_KEYS:
            key = STATE_KEYS[etype][0]
            state.setdefault(found.block_id, {})[str(found.element.get("action_id"))] = {
                "type": etype,
                key: action.get(key),
            }
        return state

    def _action(
        self,
        found: FoundAction,
        value: Any,
        selected_option: str | JSON | None,
        selected_options: Sequence[str | JSON] | None,
    ) -> JSON:
        element = found.element
        etype = str(element.get("type"))
        action: JSON = {
            "type": etype,
            "block_id": found.block_id,
            "action_id": element.get("action_id"),
            "action_ts": self.workspace.now_ts(),
        }
        if etype == "button":
            action["text"] = element.get("text")
            if "value" in element:
                action["value"] = element["value"]
            if "style" in element:
                action["style"] = element["style"]
        elif etype == "overflow":
            action["selected_option"] = self._option(
                element, selected_option if selected_option is not None else value
            )
        elif etype in STATE_KEYS:
            state = self._state_value(
                element, value, selected_option=selected_option, selected_options=selected_options
            )
            action.update({k: v for k, v in state.items() if k != "type"})
            if "placeholder" in element:
                action["placeholder"] = element["placeholder"]
        return action

    def set_input(self, view: View | str, block_id: str, action_id: str, value: Any) -> View:
        """The user types/picks ``value`` in an input of an open view (no request is sent).

        Text and number inputs take a string (or a number/Decimal, sent as its string); selects,
        radio buttons and overflow menus an option value or option object; multi-selects and
        checkboxes a list; user/channel/conversation pickers ids; date pickers ``YYYY-MM-DD``.
        """
        ws = self.workspace
        current = ws.view(view if isinstance(view, str) else view.id)
        if current.closed:
            raise LookupError(f"emulator: view {current.id} is closed")
        found = find_action(current.blocks, action_id, block_id=block_id)
        if found is None:
            raise LookupError(f"emulator: view {current.id} has no element {block_id!r}/{action_id!r}")
        return ws.set_view_state(current.id, block_id, action_id, self._state_value(found.element, value))

    async def select_options(
        self, user: str, target: View | Message, action_id: str, query: str, *, block_id: str | None = None
    ) -> OptionsResult:
        """``user`` types ``query`` into the external select ``action_id``: a ``block_suggestion``.

        Like Slack, refuses to ask when ``query`` is shorter than the element's ``min_query_length``.
        """
        ws = self.workspace
        payload = self._base("block_suggestion", user)
        if isinstance(target, View):
            view = ws.view(target.id)
            found = self._pick(view.blocks, action_id, block_id=block_id, value=None)
            payload["container"] = {"type": "view", "view_id": view.id}
            payload["view"] = ws.view_dict(view)
        else:
            found = self._pick(target.blocks, action_id, block_id=block_id, value=None)
            ch = ws.channel(target.channel)
            payload["container"] = {
                "type": "message",
                "message_ts": target.ts,
                "channel_id": ch.id,
                "is_ephemeral": False,
            }
            payload["channel"] = ws.channel_ref(ch)
            payload["message"] = ws.message_dict(target)
        minimum = int(found.element.get("min_query_length", 3))
        if len(query) < minimum:
            raise ValueError(
                f"emulator: Slack asks for options only after {minimum} characters (got {query!r})"
            )
        payload |= {"action_id": action_id, "block_id": found.block_id, "value": query}
        delivery = await self._send_payload(payload)
        result = OptionsResult(**_fields(delivery))
        body = delivery.json() if delivery.ok else None
        if isinstance(body, dict):
            result.options = list(body.get("options") or [])
            result.option_groups = list(body.get("option_groups") or [])
            for group in result.option_groups:
                result.options += list(group.get("options") or [])
        return result

    def _client_errors(self, view: View) -> dict[str, str]:
        """What the Slack client checks before it submits a view."""
        errors: dict[str, str] = {}
        for block, element in iter_elements(view.blocks):
            if block.get("type") != "input":
                continue
            block_id = str(block.get("block_id"))
            state = view.state.get(block_id, {}).get(str(element.get("action_id")))
            if not block.get("optional", False) and not _has_value(state):
                errors[block_id] = REQUIRED_FIELD
                continue
            value = state.get("value") if state else None
            etype = element.get("type")
            if etype == "number_input":
                problem = number_problem(element, value)
                if problem:
                    errors[block_id] = problem
            elif etype == "plain_text_input" and isinstance(value, str) and value:
                low, high = element.get("min_length"), element.get("max_length")
                if low is not None and len(value) < int(low):
                    errors[block_id] = f"Must be at least {low} characters."
                elif high is not None and len(value) > int(high):
                    errors[block_id] = f"Must be {high} characters or fewer."
        return errors

    def _top(self, user: str, view: View | str) -> View:
        view_id = view if isinstance(view, str) else view.id
        top = self.workspace.top_view(user)
        if top is None or top.id != view_id:
            raise LookupError(f"emulator: view {view_id} is not the top view of {user}")
        return top

    async def submit_view(self, user: str, view: View | str, *, force: bool = False) -> SubmitResult:
        """``user`` presses the modal's submit button: a ``view_submission``, then the answer's
        ``response_action`` (``errors``/``update``/``push``/``clear``; an empty answer closes the view)
        is applied to the user's stack. ``force=True`` skips the Slack client's own checks."""
        ws = self.workspace
        current = self._top(user, view)
        if not force:
            client_errors = self._client_errors(current)
            if client_errors:
                ws.set_view_errors(current.id, client_errors)
                return SubmitResult(delivery=None, client_errors=client_errors, view=current)
        trigger_id = ws.issue_trigger(user)
        payload = self._base("view_submission", user)
        payload |= {"trigger_id": trigger_id, "view": ws.view_dict(current), "response_urls": []}
        delivery = await self._send_payload(payload, trigger_id=trigger_id)
        result = SubmitResult(delivery=delivery)
        if not delivery.ok:
            result.client_error = CONNECTION_TROUBLE
            result.view = ws.top_view(user)
            return result
        body = delivery.json()
        if delivery.text.strip() and not isinstance(body, dict):
            result.client_error = CONNECTION_TROUBLE
        elif not body or not body.get("response_action"):
            ws.close_top_view(user)
        else:
            self._apply_response_action(user, current, body, result)
        result.view = ws.top_view(user)
        return result

    def _apply_response_action(self, user: str, current: View, body: JSON, result: SubmitResult) -> None:
        ws = self.workspace
        action = str(body["response_action"])
        result.response_action = action
        try:
            if action == "errors":
                errors = body.get("errors")
                if not isinstance(errors, dict) or not errors:
                    raise ApiError("invalid_errors")
                inputs = {str(b.get("block_id")) for b in current.blocks if b.get("type") == "input"}
                unknown = sorted(set(errors) - inputs)
                if unknown:
                    raise ApiError("invalid_errors", f"not input blocks: {unknown}")
                result.errors = {str(k): str(v) for k, v in errors.items()}
                ws.set_view_errors(current.id, result.errors)
            elif action == "update":
                ws.replace_top_view(user, body.get("view") or {})
            elif action == "push":
                ws.push_view_for(user, body.get("view") or {})
            elif action == "clear":
                ws.clear_views(user)
            else:
                raise ApiError("invalid_response_action", action)
        except ApiError as exc:
            result.client_error = f"{CONNECTION_TROUBLE} ({exc})"

    async def close_view(self, user: str, view: View | str) -> Delivery | None:
        """``user`` closes the top modal (the whole stack if ``clear_on_close``). A ``view_closed``
        is sent only if the view asked for it (``notify_on_close``); returns its delivery or ``None``."""
        ws = self.workspace
        current = self._top(user, view)
        snapshot = ws.view_dict(current)
        cleared = current.clear_on_close
        if cleared:
            ws.clear_views(user)
        else:
            ws.close_top_view(user)
        if not current.notify_on_close:
            return None
        payload = self._base("view_closed", user)
        payload |= {"view": snapshot, "is_cleared": cleared}
        return await self._send_payload(payload)

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


def _fields(delivery: Delivery) -> JSON:
    return {
        "status": delivery.status,
        "text": delivery.text,
        "headers": delivery.headers,
        "sent": delivery.sent,
        "trigger_id": delivery.trigger_id,
        "response_url": delivery.response_url,
        "event_id": delivery.event_id,
    }
