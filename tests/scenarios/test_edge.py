"""The internet-facing HTTP edge (``POST /slack/events``, ``GET /healthz``), through the real endpoint.

Each test drives gatebot's web app over loopback HTTP exactly as ``gatebot serve`` serves it:

* unverified requests (bad, empty, negative, huge or padded timestamps) are refused with 401 before
  anything reads their content, and nothing — not the Slack fake, not an attacker's URL — hears from
  the bot (ISSUE 10 hole 1);
* bodies over ``GATEBOT_MAX_BODY_BYTES`` are refused with 413 before they are read, chunked ones are
  cut off at the cap; malformed but signed bodies get 400 on a connection that stays open and leave no
  traceback (hole 2);
* a view submission failing before its ack is answered, not turned into a 500 (hole 8);
* ``/healthz`` is a liveness answer; the details need ``GATEBOT_HEALTH_TOKEN`` (hole 8);
* slash commands that merely contain the word "payload" are answered (ISSUE 11 defect 2).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import pytest
from slack_bolt.async_app import AsyncAck, AsyncBoltRequest
from slack_bolt.response import BoltResponse
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gatebot.emulator import Change, LoopbackServer, sign
from gatebot.slack.app import _error_handler
from tests.scenarios.conftest import ADMIN, OPS_CHANNEL, SECRET, Harness

CAP = 64 * 1024
HEALTH_TOKEN = "health-token-for-tests-0123456789"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"gatebot_max_body_bytes": CAP, "gatebot_health_token": HEALTH_TOKEN}


# -- helpers ------------------------------------------------------------------------------------------------


class Attacker:
    """A local HTTP listener standing in for an attacker's URL; records every request it gets."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        self._lock = threading.Lock()

        async def anything(request: Request) -> Response:
            with self._lock:
                self.hits.append(f"{request.method} {request.url.path}")
            return Response("ok")

        self.server = LoopbackServer(Starlette(routes=[
            Route("/{path:path}", anything, methods=["GET", "POST", "PUT"])]))

    @property
    def url(self) -> str:
        return f"{self.server.url}/any-path"


@pytest.fixture
async def attacker() -> AsyncIterator[Attacker]:
    listener = Attacker()
    await listener.server.start()
    try:
        yield listener
    finally:
        await listener.server.stop()


@pytest.fixture
def slack_heard(harness: Harness) -> Iterator[list[Change]]:
    """Every change the Slack fake records from now on (messages, ephemerals, views, response_url posts)."""
    changes: list[Change] = []
    remove = harness.ws.add_listener(changes.append)
    yield changes
    remove()


@pytest.fixture
def all_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """caplog that also sees uvicorn's own loggers (they do not propagate to the root)."""
    uvicorn_log = logging.getLogger("uvicorn")
    uvicorn_log.addHandler(caplog.handler)
    caplog.set_level(logging.INFO)
    try:
        yield caplog
    finally:
        uvicorn_log.removeHandler(caplog.handler)


def now_ts() -> str:
    return str(int(time.time()))


def signed_headers(body: bytes, *, timestamp: str | None = None,
                   content_type: str = "application/x-www-form-urlencoded") -> dict[str, str]:
    ts = now_ts() if timestamp is None else timestamp
    return {"Content-Type": content_type, "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": sign(SECRET, ts, body)}


class RawConnection:
    """One HTTP/1.1 connection written byte by byte (to send what an ordinary client would not)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str) -> None:
        self.reader, self.writer, self.host = reader, writer, host

    @classmethod
    async def open(cls, base_url: str) -> RawConnection:
        parts = urlsplit(base_url)
        assert parts.hostname is not None and parts.port is not None
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        return cls(reader, writer, f"{parts.hostname}:{parts.port}")

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self.writer.wait_closed()

    def head(self, headers: dict[str, str], *, path: str = "/slack/events") -> None:
        lines = [f"POST {path} HTTP/1.1", f"Host: {self.host}"] + [f"{k}: {v}" for k, v in headers.items()]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

    async def post(self, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        self.head({**headers, "Content-Length": str(len(body))})
        self.writer.write(body)
        await self.writer.drain()
        return await self.response()

    async def response(self) -> tuple[int, dict[str, str], bytes]:
        """Status, headers (lower-cased) and body of the next response (bounded: never hangs a test)."""
        async def read() -> tuple[int, dict[str, str], bytes]:
            status_line = await self.reader.readline()
            assert status_line, "the server closed the connection without answering"
            status = int(status_line.split()[1])
            headers: dict[str, str] = {}
            while (line := await self.reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            body = await self.reader.readexactly(int(headers.get("content-length", "0")))
            return status, headers, body

        return await asyncio.wait_for(read(), 10)

    async def closed_by_server(self) -> bool:
        try:
            return await asyncio.wait_for(self.reader.read(1), 10) == b""
        except ConnectionError:
            return True


@pytest.fixture
async def raw(harness: Harness) -> AsyncIterator[RawConnection]:
    conn = await RawConnection.open(harness.server.url)
    try:
        yield conn
    finally:
        await conn.close()


def no_tracebacks(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


# -- ISSUE 10 hole 1: unverified requests never reach the bot --------------------------------------------------


def forged_bodies(h: Harness, target: str) -> dict[str, tuple[bytes, str]]:
    """One request of each kind, every reply address pointing at ``target``."""
    user = h.ws.user_ref(ADMIN)
    common = {"user": user, "team": h.ws.team_ref(), "api_app_id": h.ws.app_id, "token": "x"}
    channel = {"id": OPS_CHANNEL, "name": "gate-ops"}
    form = "application/x-www-form-urlencoded"

    def payload(data: dict[str, Any]) -> bytes:
        return urlencode({"payload": json.dumps({**common, **data})}).encode()

    return {
        "command": (urlencode({"command": "/gate", "text": "nonsense", "user_id": ADMIN, "channel_id": OPS_CHANNEL,
                               "team_id": h.ws.team_id, "api_app_id": h.ws.app_id, "response_url": target,
                               "trigger_id": "1.2.3"}).encode(), form),
        "block_actions": (payload({"type": "block_actions", "channel": channel, "response_url": target,
                                   "trigger_id": "1.2.3", "container": {"type": "message"},
                                   "actions": [{"action_id": "no_such_action", "block_id": "b", "type": "button",
                                                "value": "v", "action_ts": "1"}]}), form),
        "message_action": (payload({"type": "message_action", "callback_id": "no_such_shortcut", "channel": channel,
                                    "response_url": target, "trigger_id": "1.2.3",
                                    "message": {"ts": "1.1", "text": "hi"}}), form),
        "view_submission": (payload({"type": "view_submission", "trigger_id": "1.2.3",
                                     "response_urls": [{"response_url": target, "channel_id": OPS_CHANNEL}],
                                     "view": {"id": "V1", "type": "modal", "callback_id": "no_such_view",
                                              "private_metadata": "", "state": {"values": {}}}}), form),
        "event": (json.dumps({"type": "event_callback", "team_id": h.ws.team_id, "api_app_id": h.ws.app_id,
                              "event_id": "Ev1", "event_time": 1,
                              "event": {"type": "app_home_opened", "user": ADMIN, "channel": OPS_CHANNEL,
                                        "tab": "home"}}).encode(), "application/json"),
    }


BAD_TIMESTAMPS = {
    "non-numeric": lambda: "abc",
    "empty": lambda: "",
    "negative": lambda: "-" + now_ts(),
    "huge": lambda: "9" * 40,
    "plus-signed": lambda: "+" + now_ts(),
    "fractional": lambda: now_ts() + ".5",
    "underscored": lambda: now_ts()[:-3] + "_" + now_ts()[-3:],
}


@pytest.mark.parametrize("kind", ["command", "block_actions", "message_action", "view_submission", "event"])
async def test_unverifiable_timestamps_are_refused_and_nobody_hears_from_the_bot(
        harness: Harness, attacker: Attacker, slack_heard: list[Change], kind: str) -> None:
    body, content_type = forged_bodies(harness, attacker.url)[kind]
    mark = harness.ws.call_count
    async with httpx.AsyncClient(base_url=harness.server.url) as http:
        for name, timestamp in BAD_TIMESTAMPS.items():
            ts = timestamp()
            for signature in ("v0=x", sign(SECRET, ts, body)):  # garbage, and a real HMAC over the bad stamp
                answer = await http.post("/slack/events", content=body, headers={
                    "Content-Type": content_type, "X-Slack-Request-Timestamp": ts, "X-Slack-Signature": signature})
                assert answer.status_code == 401, (name, signature, answer.text)
        missing = await http.post("/slack/events", content=body, headers={"Content-Type": content_type})
        assert missing.status_code == 401
    assert attacker.hits == [], "the bot sent a request to the attacker's URL"
    assert slack_heard == [], "the bot posted to Slack for an unverified request"
    assert harness.ws.calls(since=mark) == [], "the bot called Slack's Web API for an unverified request"
    # A signed request afterwards is answered: the refusals above were not just a dead endpoint.
    await harness.command(ADMIN, "help")
    assert attacker.hits == []


async def test_stale_and_wrongly_signed_requests_are_refused(harness: Harness) -> None:
    body = urlencode({"command": "/gate", "text": "help", "user_id": ADMIN, "channel_id": OPS_CHANNEL}).encode()
    async with httpx.AsyncClient(base_url=harness.server.url) as http:
        stale = await http.post("/slack/events", content=body,
                                headers=signed_headers(body, timestamp=str(int(time.time()) - 301)))
        future = await http.post("/slack/events", content=body,
                                 headers=signed_headers(body, timestamp=str(int(time.time()) + 301)))
        tampered = await http.post("/slack/events", content=body + b"x", headers=signed_headers(body))
        upper = signed_headers(body)
        upper["X-Slack-Signature"] = upper["X-Slack-Signature"].upper()
        upper_case = await http.post("/slack/events", content=body, headers=upper)
    assert [r.status_code for r in (stale, future, tampered, upper_case)] == [401, 401, 401, 401]


# -- ISSUE 10 hole 2: size cap before reading, verification before parsing, 400 for malformed --------------------


async def test_a_declared_oversized_body_is_refused_before_it_is_read(raw: RawConnection) -> None:
    # Only the head is sent: a server that tried to read the body would wait for it and never answer.
    raw.head({"Content-Type": "application/x-www-form-urlencoded", "Content-Length": str(CAP + 1)})
    await raw.writer.drain()
    status, headers, _ = await raw.response()
    assert status == 413
    assert headers.get("connection") == "close"
    assert await raw.closed_by_server()


async def test_a_chunked_body_is_cut_off_at_the_cap(raw: RawConnection) -> None:
    """Signed headers (over the whole body it would send), no Content-Length: read up to the cap only."""
    chunk = b"a" * 4096
    whole = chunk * (CAP // len(chunk) + 1)
    raw.head({**signed_headers(whole), "Transfer-Encoding": "chunked"})
    for _ in range(CAP // len(chunk) + 1):  # one chunk past the cap, and no terminating chunk ever
        raw.writer.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
    await raw.writer.drain()
    status, headers, _ = await raw.response()
    assert status == 413
    assert headers.get("connection") == "close"
    assert await raw.closed_by_server()


async def test_a_signed_body_over_the_cap_is_refused_too(harness: Harness) -> None:
    body = urlencode({"command": "/gate", "text": "x" * CAP}).encode()
    async with httpx.AsyncClient(base_url=harness.server.url) as http:
        answer = await http.post("/slack/events", content=body, headers=signed_headers(body))
    assert answer.status_code == 413


async def test_an_unsigned_body_is_refused_before_it_is_read(raw: RawConnection) -> None:
    """No signature headers: 401 at once, without waiting for the (never sent) body."""
    raw.head({"Content-Type": "application/x-www-form-urlencoded", "Content-Length": "1000"})
    await raw.writer.drain()
    status, headers, _ = await raw.response()
    assert status == 401
    assert headers.get("connection") == "close"


FORM = "application/x-www-form-urlencoded"
JSON_TYPE = "application/json"
MALFORMED: dict[str, tuple[bytes, str]] = {
    "payload={bad": (b"payload={bad", FORM),
    "payload=null": (b"payload=null", FORM),
    "payload=[1]": (b"payload=%5B1%5D", FORM),
    "payload=string": (urlencode({"payload": '"text"'}).encode(), FORM),
    "json []": (b"[]", JSON_TYPE),
    "json scalar": (b"42", JSON_TYPE),
    "json broken": (b'{"type": ', JSON_TYPE),
    "json NaN": (b'{"type": NaN}', JSON_TYPE),
    "deeply nested json": (b"[" * 30_000 + b"]" * 30_000, JSON_TYPE),
    "deeply nested object": (b'{"a":' * 200 + b"1" + b"}" * 200, JSON_TYPE),
    "deeply nested payload": (urlencode({"payload": '{"a":' + "[" * 5_000 + "]" * 5_000 + "}"}).encode(), FORM),
    "non-UTF-8 body": (b"command=/gate&text=\xff\xfe", FORM),
    "non-UTF-8 escape": (b"command=/gate&text=%FF%FE", FORM),
    "NUL byte": (b"command=/gate&text=a\x00b", FORM),
    "escaped NUL": (b"command=/gate&text=a%00b", FORM),
    "JSON NUL": (b'{"type": "event_callback", "event": {"type": "a\\u0000b"}}', JSON_TYPE),
    "empty": (b"", FORM),
    "other content type": (b"command=/gate", "text/plain"),
}


async def test_malformed_signed_bodies_get_400_on_a_live_connection(
        raw: RawConnection, all_logs: pytest.LogCaptureFixture) -> None:
    for name, (body, content_type) in MALFORMED.items():
        status, headers, answer = await raw.post(body, signed_headers(body, content_type=content_type))
        assert status in (400, 415), (name, status, answer[:200])
        assert headers.get("connection") != "close", name
        assert len(answer) < 300 and b"Traceback" not in answer, name
    # The same connection still serves a good request.
    good = urlencode({"command": "/gate", "text": "help", "user_id": ADMIN, "channel_id": OPS_CHANNEL,
                      "response_url": "http://127.0.0.1:9/unused"}).encode()
    status, _, _ = await raw.post(good, signed_headers(good))
    assert status == 200
    assert no_tracebacks(all_logs) == []


# -- ISSUE 11 defect 2: "payload" in a slash command ---------------------------------------------------------------


async def test_commands_mentioning_payload_are_answered(harness: Harness) -> None:
    h = harness
    result = await h.command(ADMIN, "order payload-77")
    reply = result.ephemeral or await h.reply_to(ADMIN)
    assert "payload-77" in reply.text

    ops = h.ws.add_channel("payload-ops", members=[ADMIN])
    in_channel = await h.driver.slash_command(ADMIN, "help", channel=ops.id)
    assert in_channel.status == 200, in_channel.text

    h.ws.add_user("UPAYLOAD", "payload-pete", real_name="Payload Pete")
    h.ws.channel(OPS_CHANNEL).members.append("UPAYLOAD")
    by_user = await h.driver.slash_command("UPAYLOAD", "help", channel=OPS_CHANNEL)
    assert by_user.status == 200, by_user.text


# -- ISSUE 10 hole 8: the error handler and /healthz ------------------------------------------------------------------


async def test_a_view_submission_failing_before_its_ack_is_answered(
        harness: Harness, all_logs: pytest.LogCaptureFixture) -> None:
    h = harness

    async def boom(ack: AsyncAck) -> None:
        raise RuntimeError("listener bug before ack")

    h.app.view("edge_test_boom")(boom)
    payload = {"type": "view_submission", "user": h.ws.user_ref(ADMIN), "api_app_id": h.ws.app_id,
               "team": h.ws.team_ref(), "trigger_id": "1.2.3", "response_urls": [], "token": "x",
               "view": {"id": "V1", "type": "modal", "callback_id": "edge_test_boom", "private_metadata": "",
                        "state": {"values": {}}}}
    answer = await h.driver.post(urlencode({"payload": json.dumps(payload)}).encode(), FORM)
    assert answer.status_code == 200
    dm = h.ws.dm_channel(ADMIN)
    apology = await h.wait(lambda: next(iter(h.ws.messages(dm.id)), None), "the apology in a DM")
    assert apology.text.startswith("Sorry")
    problems = no_tracebacks(all_logs)
    assert len(problems) == 1 and "RuntimeError" in problems[0], problems  # the listener's own error, once


async def test_healthz_is_liveness_only_without_the_token(harness: Harness) -> None:
    async with httpx.AsyncClient(base_url=harness.server.url) as http:
        plain = await http.get("/healthz")
        wrong = await http.get("/healthz", headers={"Authorization": "Bearer nope"})
        detailed = await http.get("/healthz", headers={"Authorization": f"Bearer {HEALTH_TOKEN}"})
    # The scheduler lease is not held in this test, so the detailed report is degraded — liveness is not.
    assert plain.status_code == 200
    assert plain.json() == {"status": "ok"}
    assert wrong.status_code == 401
    assert "jobs" not in wrong.text and "scheduler" not in wrong.text
    assert detailed.status_code == 503
    assert detailed.json()["status"] == "degraded" and "scheduler" in detailed.json()


async def test_the_app_refuses_http_requests_that_skipped_the_edge(
        harness: Harness, attacker: Attacker, slack_heard: list[Change]) -> None:
    """Bolt's own signature check is off (the edge does it): a request handed to Bolt any other way —
    the app mounted without :func:`create_web_app` — is refused before a listener or the error handler."""
    h = harness
    mark = h.ws.call_count
    for body, content_type in forged_bodies(h, attacker.url).values():
        answer = await h.app.async_dispatch(AsyncBoltRequest(body=body.decode(), headers={
            "content-type": content_type, "x-slack-request-timestamp": "abc", "x-slack-signature": "v0=x"}))
        assert answer.status == 401
    assert attacker.hits == [] and slack_heard == []
    assert [c.method for c in h.ws.calls(since=mark)] in ([], ["auth.test"])  # Bolt authorizes first


async def test_the_error_handler_never_answers_an_unverified_request(
        harness: Harness, attacker: Attacker, slack_heard: list[Change]) -> None:
    """Second line: an error raised for a request that was not verified (say, in Bolt's middleware before
    gatebot's check) gets a bare 401 — no response_url, no ephemeral, no DM."""
    h = harness
    body, content_type = forged_bodies(h, attacker.url)["block_actions"]
    request = AsyncBoltRequest(body=body.decode(), headers={"content-type": content_type})
    on_error = _error_handler()
    answer = await on_error(error=ValueError("boom"), body=request.body, response=BoltResponse(status=200, body=""),
                            client=h.app.client, request=request, respond=request.context.respond)
    assert answer.status == 401
    assert attacker.hits == [] and slack_heard == []
