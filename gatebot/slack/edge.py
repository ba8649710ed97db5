"""The HTTP edge in front of Bolt: what ``POST /slack/events`` does before any listener sees a request.

Every request goes through the same steps, each one refusing with a short plain-text line:

1. **Size, declared** — a ``Content-Length`` over the cap (``GATEBOT_MAX_BODY_BYTES``) is answered
   **413** before the body is read.
2. **Signature headers** — ``X-Slack-Request-Timestamp`` must be a plain decimal integer (ASCII digits,
   no sign, spaces or underscores) within :data:`MAX_SKEW` seconds of now, and ``X-Slack-Signature``
   ``v0=`` + 64 hex digits; else **401** before the body is read. Then the body is read, only up to
   the cap: one without ``Content-Length`` (chunked) is cut off there (413). Refusals before the body
   is read close the connection (the rest of the body is never read).
3. **Signature** — HMAC-SHA256 of ``v0:<timestamp>:<raw bytes>``, compared in constant time; else **401**.
4. **Parse** — by content type, into a JSON object (:func:`parse_body`): a form with a ``payload`` field
   is interactivity (the field must hold a JSON object); any other form is plain fields (a slash
   command — even one whose text, channel or user name contains the word "payload", which Bolt's own
   parser mistakes for interactivity); a JSON body must be an object. Non-UTF-8, NUL characters,
   nesting deeper than :data:`MAX_DEPTH` and anything else malformed: **400** (unsupported media type:
   **415**), on a connection that stays open, with no traceback.

Only then is Bolt asked, with the parsed body re-encoded as one canonical JSON object (so Bolt's
parser has nothing left to guess) and the request marked as verified (:func:`is_verified`). Bolt's own
signature check is therefore off in HTTP mode (:func:`gatebot.slack.app.create_app`); in its place a
middleware refuses any HTTP request that did not come through here, and the app's error handler never
answers one. Socket Mode requests (unsigned, over an authenticated websocket, already parsed) do not
pass through this module.

Imports Bolt's request type, nothing of gatebot's core. Nothing happens at import time.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl

from slack_bolt.adapter.starlette.async_handler import to_starlette_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, Response

from gatebot.logcontext import log_context
from gatebot.slack.ackfirst import AckQueue

__all__ = ["DEFAULT_MAX_BODY", "MAX_DEPTH", "MAX_SKEW", "Refusal", "SlackEdge", "check_signature",
           "is_verified", "parse_body", "read_body"]

log = logging.getLogger(__name__)

#: Slack rejects requests more than five minutes old; so do we (either direction).
MAX_SKEW = 5 * 60
#: Default cap on a request body; Slack's are a few kilobytes (a large modal submission, tens).
DEFAULT_MAX_BODY = 1024 * 1024
#: Deepest JSON nesting accepted; Slack's deepest payloads (rich text in view state) stay near 12.
MAX_DEPTH = 32
#: Most form fields accepted (a slash command has about fifteen).
MAX_FORM_FIELDS = 100
#: The context key marking a Bolt request as verified here.
VERIFIED = "gatebot_verified_at_edge"

_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"v0=[0-9a-f]{64}")
FORM = "application/x-www-form-urlencoded"
JSON_TYPE = "application/json"


class Refusal(Exception):
    """A request the edge will not hand to Bolt: ``status`` and one line saying why."""

    def __init__(self, status: int, reason: str, *, close: bool = False) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        #: The body was not read to its end: the connection cannot be reused.
        self.close = close

    def response(self) -> Response:
        headers = {"Connection": "close"} if self.close else {}
        return PlainTextResponse(self.reason + "\n", status_code=self.status, headers=headers)


# -- 1 and 3: the signature ------------------------------------------------------------------------------------


def check_signature_headers(headers: Mapping[str, str], *, now: float) -> tuple[str, str]:
    """``(timestamp, signature)`` when both headers are well-formed and the timestamp is fresh; else
    :class:`Refusal` 401. Needs nothing of the body, so it runs before the body is read."""
    timestamp = headers.get("x-slack-request-timestamp")
    signature = headers.get("x-slack-signature")
    if timestamp is None or signature is None:
        raise Refusal(401, "missing Slack signature headers", close=True)
    if not _TIMESTAMP.fullmatch(timestamp) or abs(now - int(timestamp)) > MAX_SKEW:
        raise Refusal(401, "invalid or stale X-Slack-Request-Timestamp", close=True)
    if not _SIGNATURE.fullmatch(signature):
        raise Refusal(401, "invalid X-Slack-Signature", close=True)
    return timestamp, signature


def check_signature(secret: bytes, timestamp: str, signature: str, body: bytes) -> None:
    """Slack's signature (from :func:`check_signature_headers`) over the raw ``body``, compared in
    constant time; else :class:`Refusal` 401."""
    expected = "v0=" + hmac.new(secret, b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        raise Refusal(401, "invalid X-Slack-Signature")


# -- 2: the size cap ----------------------------------------------------------------------------------------------


def check_declared_length(headers: Mapping[str, str], *, limit: int) -> None:
    """:class:`Refusal` 413 when ``Content-Length`` says the body is over ``limit`` bytes (read nothing)."""
    declared = headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise Refusal(400, "invalid Content-Length", close=True)
        if int(declared) > limit:
            raise Refusal(413, f"request body over {limit} bytes", close=True)


async def read_body(request: Request, *, limit: int) -> bytes:
    """The raw body, at most ``limit`` bytes; :class:`Refusal` 413 as soon as it is known to be larger
    (from ``Content-Length`` before reading, or while reading a body without one)."""
    check_declared_length(request.headers, limit=limit)
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise Refusal(413, f"request body over {limit} bytes", close=True)
    except ClientDisconnect:
        raise Refusal(400, "the client went away mid-body", close=True) from None
    return bytes(body)


# -- 4: parsing --------------------------------------------------------------------------------------------------


def parse_body(raw: bytes, content_type: str | None) -> dict[str, Any]:
    """The request as Slack meant it: a JSON object; :class:`Refusal` 400/415 for anything else."""
    media = (content_type or "").split(";")[0].strip().lower()
    if media not in (FORM, JSON_TYPE):
        raise Refusal(415, f"unsupported Content-Type {media or '(none)'!r}: Slack sends {FORM} or {JSON_TYPE}")
    if not raw:
        raise Refusal(400, "empty request body")
    if b"\x00" in raw:
        raise Refusal(400, "NUL byte in the request body")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Refusal(400, "the request body is not UTF-8") from None
    if media == JSON_TYPE:
        return _json_object(text, "the JSON body")
    try:
        fields = parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict",
                           max_num_fields=MAX_FORM_FIELDS)
    except ValueError:  # bad percent-escapes (UnicodeDecodeError) or too many fields
        raise Refusal(400, "malformed form body") from None
    form = dict(fields)
    if "payload" in form:  # interactivity: one field holding JSON
        return _json_object(form["payload"], "the payload field")
    _check_values(form)
    return form


def _json_object(text: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise Refusal(400, f"{what} is nested too deeply") from None
    except ValueError:
        raise Refusal(400, f"{what} is not valid JSON") from None
    if not isinstance(value, dict):
        raise Refusal(400, f"{what} must be a JSON object")
    _check_values(value)
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _check_values(value: Any) -> None:
    """No nesting deeper than :data:`MAX_DEPTH`, no NUL in any string (walked without recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise Refusal(400, "NUL character in the request")
        elif isinstance(item, dict | list):
            if depth > MAX_DEPTH:
                raise Refusal(400, f"the request is nested deeper than {MAX_DEPTH} levels")
            if isinstance(item, dict):
                stack.extend((k, depth) for k in item)
                stack.extend((v, depth + 1) for v in item.values())
            else:
                stack.extend((v, depth + 1) for v in item)


# -- handing over to Bolt -------------------------------------------------------------------------------------------


def slack_user(body: Mapping[str, Any]) -> str | None:
    """The id of the person behind a verified request (a command, an interaction or an event), if any."""
    candidates = (body.get("user_id"), body.get("user"), (body.get("event") or {}).get("user"))
    for found in candidates:
        if isinstance(found, dict):
            found = found.get("id")
        if isinstance(found, str) and found:
            return found
    return None


def is_verified(request: AsyncBoltRequest) -> bool:
    """Whether Bolt's ``request`` may be trusted: it came through :class:`SlackEdge` (HTTP), or over
    Socket Mode's authenticated websocket."""
    return request.mode == "socket_mode" or request.context.get(VERIFIED) is True


def bolt_request(body: dict[str, Any], request: Request) -> AsyncBoltRequest:
    """A verified Bolt request carrying ``body`` as one canonical JSON object."""
    headers: dict[str, list[str]] = {}
    for name, value in request.headers.items():
        if name not in ("content-type", "content-length"):
            headers.setdefault(name, []).append(value)
    headers["content-type"] = [JSON_TYPE]
    return AsyncBoltRequest(body=json.dumps(body), query=request.url.query, headers=dict(headers),
                            context={VERIFIED: True})


class SlackEdge:
    """The ``POST /slack/events`` endpoint (:meth:`handle`): checks, then :meth:`AsyncApp.async_dispatch`.

    ``clock`` gives the Unix time signatures are checked against (injectable for tests).
    """

    def __init__(self, app: AsyncApp, *, signing_secret: str, max_body: int = DEFAULT_MAX_BODY,
                 clock: Callable[[], float] = time.time) -> None:
        if not signing_secret:
            raise ValueError("the signing secret is empty")
        self.app = app
        self._secret = signing_secret.encode()
        self.max_body = max_body
        self._clock = clock
        #: Requests still waiting for their ack: listener work after an ack yields to them.
        self.acks = AckQueue()

    async def handle(self, request: Request) -> Response:
        try:
            check_declared_length(request.headers, limit=self.max_body)
            timestamp, signature = check_signature_headers(request.headers, now=self._clock())
            raw = await read_body(request, limit=self.max_body)
            check_signature(self._secret, timestamp, signature, raw)
        except Refusal as refusal:  # not from Slack (or too big to be): not worth more than a debug line
            log.debug("refused an unverified request: %s (HTTP %d)", refusal.reason, refusal.status)
            return refusal.response()
        try:
            body = parse_body(raw, request.headers.get("content-type"))
        except Refusal as refusal:  # signed, yet malformed: worth knowing about
            log.warning("refused a signed Slack request: %s (HTTP %d)", refusal.reason, refusal.status)
            return refusal.response()
        # Every log line of this request — and of the listener work Bolt starts from it — says which it was.
        with self.acks.arrived(), log_context(request_id=uuid.uuid4().hex[:16], slack_user=slack_user(body)):
            answer = await self.app.async_dispatch(bolt_request(body, request))
        return to_starlette_response(answer)
