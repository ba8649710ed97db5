"""How the driver reaches the app: signed requests (``X-Slack-Signature: v0=HMAC-SHA256(secret,
"v0:<ts>:<body>")``), deliberately mis-signed ones for negative tests, and the envelope fields every
interaction payload carries.

Must not import slack_bolt or slack_sdk (signatures are computed with hmac/hashlib).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
from typing import Any, Self
from urllib.parse import urlencode

import httpx

from gatebot.emulator.deliveries import AckTimeoutError, Delivery
from gatebot.emulator.model import JSON, ApiError, Channel
from gatebot.emulator.workspace import Workspace

#: The legacy verification token Slack puts in payloads (Bolt ignores it; it is not a secret).
VERIFICATION_TOKEN = "emulator-verification-token"  # noqa: S105


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """Slack's request signature: ``v0=`` + hex HMAC-SHA256 of ``v0:<timestamp>:<body>``."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


class DriverTransport:
    """The driver's connection to the app (see :class:`~gatebot.emulator.driver.SlackDriver` for the options).

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

    async def __aenter__(self) -> Self:
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
    ) -> Self:
        """A driver sharing this one's HTTP client and workspace that signs differently: with
        ``secret`` instead of the right one, with a timestamp ``timestamp_skew`` seconds off
        (``-600`` is stale), or not at all; ``headers`` are added to every request."""
        other = type(self).__new__(type(self))
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
