"""The driver: request shapes, signatures and what the Slack client does with the answers.

The app here is a tiny recording Starlette app reached in-process (httpx.ASGITransport), so every
request body and header can be inspected; tests against a real Bolt app are in test_bolt_app.py.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from slack_sdk.signature import Clock, SignatureVerifier
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gatebot.emulator import AckTimeoutError, LoopbackServer, SlackDriver, View, Workspace, sign
from gatebot.emulator.driver import CONNECTION_TROUBLE, REQUIRED_FIELD

SECRET = "emulator-driver-test-secret"
APP_URL = "http://app.test/slack/events"
EMULATOR_URL = "http://emulator.test"


@dataclass
class Received:
    body: bytes
    headers: dict[str, str]

    @property
    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode(), keep_blank_values=True).items()}

    @property
    def payload(self) -> dict[str, Any]:
        return dict(json.loads(self.form["payload"]))


@dataclass
class FakeApp:
    """Records requests; answers each with the next queued answer (default: empty 200)."""

    received: list[Received] = field(default_factory=list)
    answers: list[Response] = field(default_factory=list)
    release: asyncio.Event | None = None

    async def endpoint(self, request: Request) -> Response:
        self.received.append(Received(await request.body(), dict(request.headers)))
        if self.release is not None:
            await self.release.wait()
        return self.answers.pop(0) if self.answers else Response(status_code=200)

    def answer(self, body: dict[str, Any] | None = None, status: int = 200) -> None:
        self.answers.append(
            JSONResponse(body, status_code=status) if body is not None else Response(status_code=status)
        )

    @property
    def last(self) -> Received:
        return self.received[-1]

    def asgi(self) -> Starlette:
        return Starlette(routes=[Route("/slack/events", self.endpoint, methods=["POST"])])


@pytest.fixture
def app() -> FakeApp:
    return FakeApp()


@pytest.fixture
async def driver(app: FakeApp, workspace: Workspace) -> AsyncIterator[SlackDriver]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app.asgi())) as http:
        yield SlackDriver(APP_URL, SECRET, workspace, EMULATOR_URL, http, wall_clock=lambda: 1_700_000_000.0)


def modal(*blocks: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": "order",
        "title": {"type": "plain_text", "text": "Order"},
        "submit": {"type": "plain_text", "text": "Buy"},
        "blocks": list(blocks),
        **extra,
    }


AMOUNT = {
    "type": "input",
    "block_id": "amount",
    "label": {"type": "plain_text", "text": "Amount"},
    "element": {
        "type": "number_input",
        "action_id": "value",
        "is_decimal_allowed": True,
        "min_value": "1",
        "max_value": "500",
    },
}
PRODUCT = {
    "type": "input",
    "block_id": "product",
    "dispatch_action": True,
    "label": {"type": "plain_text", "text": "Product"},
    "element": {
        "type": "static_select",
        "action_id": "pick",
        "options": [
            {"text": {"type": "plain_text", "text": "Voucher"}, "value": "1"},
            {"text": {"type": "plain_text", "text": "Top-up"}, "value": "3"},
        ],
    },
}
NOTE = {
    "type": "input",
    "block_id": "note",
    "optional": True,
    "label": {"type": "plain_text", "text": "Note"},
    "element": {"type": "plain_text_input", "action_id": "text", "max_length": 5},
}


def open_modal(workspace: Workspace, user: str = "UALICE", *blocks: dict[str, Any], **extra: Any) -> View:
    return workspace.open_view(
        workspace.issue_trigger(user), modal(*(blocks or (AMOUNT, PRODUCT, NOTE)), **extra)
    )


def verifier_accepts(received: Received, secret: str = SECRET, now: float = 1_700_000_000.0) -> bool:
    verifier = SignatureVerifier(secret, clock=_FixedClock(now))
    return bool(verifier.is_valid_request(received.body, received.headers))


class _FixedClock(Clock):
    def __init__(self, now: float) -> None:
        self._now = now

    def now(self) -> float:
        return self._now


# ------------------------------------------------------------------------------------- signing


def test_sign_reproduces_slacks_published_test_vector() -> None:
    body = (
        b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
        b"&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
        b"&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
        b"&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
    )
    assert (
        sign("8f742231b10e8888abcd99yyyzzz85a5", "1531420618", body)
        == "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
    )


async def test_every_kind_of_request_carries_a_valid_signature(
    driver: SlackDriver, app: FakeApp, workspace: Workspace
) -> None:
    message = workspace.post_message(
        "COPS",
        text="Approve?",
        blocks=[
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "action_id": "approve",
                        "text": {"type": "plain_text", "text": "Approve"},
                        "value": "7",
                    }
                ],
            }
        ],
    )
    await driver.slash_command("UALICE", "balance", channel="COPS")
    await driver.click("UBOB", message, "approve")
    await driver.app_home_opened("UALICE")

    assert [r.headers["content-type"] for r in app.received] == [
        "application/x-www-form-urlencoded",
        "application/x-www-form-urlencoded",
        "application/json",
    ]
    assert all(verifier_accepts(r) for r in app.received)
    assert all(r.headers["x-slack-request-timestamp"] == "1700000000" for r in app.received)


async def test_wrong_stale_and_missing_signatures(driver: SlackDriver, app: FakeApp) -> None:
    await driver.with_signing(secret="not-the-secret").slash_command("UALICE", "x", channel="COPS")
    await driver.with_signing(timestamp_skew=-301).slash_command("UALICE", "x", channel="COPS")
    await driver.with_signing(unsigned=True).slash_command("UALICE", "x", channel="COPS")
    await driver.slash_command("UALICE", "x", channel="COPS")

    wrong, stale, unsigned, good = app.received
    assert not verifier_accepts(wrong)
    assert verifier_accepts(stale, now=1_700_000_000.0 - 301)  # right secret...
    assert not verifier_accepts(stale)  # ...but more than 5 minutes old
    assert "x-slack-signature" not in unsigned.headers
    assert verifier_accepts(good)


async def test_event_retries(driver: SlackDriver, app: FakeApp) -> None:
    first = await driver.event(
        {"type": "app_mention", "user": "UALICE", "text": "<@UBOT> hi", "channel": "COPS"}
    )
    retry = await driver.event(first.sent["event"], event_id=first.event_id, retry_num=1)

    original, again = app.received
    assert "x-slack-retry-num" not in original.headers
    assert (again.headers["x-slack-retry-num"], again.headers["x-slack-retry-reason"]) == (
        "1",
        "http_timeout",
    )
    assert json.loads(again.body)["event_id"] == json.loads(original.body)["event_id"] == retry.event_id
    assert json.loads(original.body)["authorizations"][0]["user_id"] == "UBOT"


# ------------------------------------------------------------------------------ slash commands


async def test_slash_command_fields_and_ephemeral_reply(
    driver: SlackDriver, app: FakeApp, workspace: Workspace
) -> None:
    app.answer({"text": "Balance: USD 1,234.50"})

    result = await driver.slash_command("UALICE", "balance usd", channel="gate-ops")

    fields = app.last.form
    assert fields["command"] == "/gate" and fields["text"] == "balance usd"
    assert (fields["user_id"], fields["user_name"], fields["channel_id"], fields["channel_name"]) == (
        "UALICE",
        "alice",
        "COPS",
        "gate-ops",
    )
    assert fields["team_id"] == workspace.team_id and fields["api_app_id"] == workspace.app_id
    assert fields["trigger_id"] == result.trigger_id
    assert fields["response_url"] == result.response_url and result.response_url.startswith(
        EMULATOR_URL + "/response/"
    )
    assert result.ephemeral is not None and result.ephemeral.text == "Balance: USD 1,234.50"
    assert result.ephemeral.source == "command_response"
    assert workspace.ephemerals("UALICE") == [result.ephemeral]


async def test_slash_command_in_channel_and_empty_answers(
    driver: SlackDriver, app: FakeApp, workspace: Workspace
) -> None:
    app.answer({"response_type": "in_channel", "text": "Alice checked the balance"})
    app.answer()
    app.answer({"text": "nope"}, status=500)

    public = await driver.slash_command("UALICE", "balance", channel="CGENERAL")  # bot not invited: fine
    silent = await driver.slash_command("UALICE", "", channel="COPS")
    failed = await driver.slash_command("UALICE", "", channel="COPS")

    assert public.message is not None and workspace.latest_message("CGENERAL") is public.message
    assert silent.ok and silent.ephemeral is None and silent.message is None
    assert failed.status == 500 and failed.ephemeral is None
    with pytest.raises(LookupError):
        await driver.slash_command("UALICE", "", channel="#nowhere")


# ------------------------------------------------------------------------------- block actions


async def test_click_on_a_message(driver: SlackDriver, app: FakeApp, workspace: Workspace) -> None:
    buttons = [
        {
            "type": "button",
            "action_id": "cancel",
            "text": {"type": "plain_text", "text": "Cancel #1"},
            "value": "1",
        },
        {
            "type": "button",
            "action_id": "cancel_b",
            "text": {"type": "plain_text", "text": "Cancel #2"},
            "value": "2",
        },
    ]
    message = workspace.post_message(
        "COPS",
        text="Orders",
        blocks=[
            {"type": "actions", "block_id": "row1", "elements": buttons[:1]},
            {"type": "actions", "block_id": "row2", "elements": [{**buttons[1], "action_id": "cancel"}]},
        ],
    )

    result = await driver.click("UBOB", message, "cancel", value="2")

    payload = app.last.payload
    assert payload["type"] == "block_actions"
    assert payload["user"]["id"] == "UBOB" and payload["team"]["id"] == workspace.team_id
    assert payload["container"] == {
        "type": "message",
        "message_ts": message.ts,
        "channel_id": "COPS",
        "is_ephemeral": False,
    }
    assert payload["channel"] == {"id": "COPS", "name": "gate-ops"}
    assert payload["message"]["ts"] == message.ts
    assert payload["response_url"] == result.response_url
    assert payload["trigger_id"] == result.trigger_id
    [action] = payload["actions"]
    assert (action["action_id"], action["block_id"], action["value"], action["type"]) == (
        "cancel",
        "row2",
        "2",
        "button",
    )
    with pytest.raises(LookupError, match="2 elements"):
        await driver.click("UBOB", message, "cancel")
    with pytest.raises(LookupError, match="no element"):
        await driver.click("UBOB", message, "approve")


async def test_click_on_an_ephemeral_message(driver: SlackDriver, app: FakeApp, workspace: Workspace) -> None:
    ephemeral = workspace.post_ephemeral(
        "COPS",
        "UALICE",
        text="Confirm?",
        blocks=[
            {
                "type": "actions",
                "elements": [
                    {"type": "button", "action_id": "yes", "text": {"type": "plain_text", "text": "Yes"}}
                ],
            }
        ],
    )

    result = await driver.click("UALICE", ephemeral, "yes")

    payload = app.last.payload
    assert payload["container"]["is_ephemeral"] is True
    assert "message" not in payload  # Slack does not include ephemeral messages
    assert result.response_url is not None
    workspace.respond(result.response_url.rsplit("/", 1)[1], {"replace_original": True, "text": "Confirmed"})
    assert ephemeral.text == "Confirmed"


async def test_click_in_a_modal_updates_its_state(
    driver: SlackDriver, app: FakeApp, workspace: Workspace
) -> None:
    view = open_modal(workspace)
    driver.set_input(view, "amount", "value", "25.50")

    await driver.click("UALICE", view, "pick", selected_option="3")

    payload = app.last.payload
    assert payload["container"] == {"type": "view", "view_id": view.id}
    assert "response_url" not in payload
    values = payload["view"]["state"]["values"]
    assert values["amount"]["value"] == {"type": "number_input", "value": "25.50"}
    assert values["product"]["pick"]["selected_option"]["value"] == "3"
    assert payload["view"]["hash"] == view.hash
    [action] = payload["actions"]
    assert action["type"] == "static_select" and action["selected_option"]["text"]["text"] == "Top-up"
    with pytest.raises(LookupError, match="no option"):
        await driver.click("UALICE", view, "pick", selected_option="99")


def test_set_input_by_element_type(driver: SlackDriver, workspace: Workspace) -> None:
    option = {"text": {"type": "plain_text", "text": "A"}, "value": "a"}
    blocks = [
        {
            "type": "input",
            "block_id": "who",
            "label": {"type": "plain_text", "text": "x"},
            "element": {"type": "users_select", "action_id": "u"},
        },
        {
            "type": "input",
            "block_id": "many",
            "label": {"type": "plain_text", "text": "x"},
            "element": {"type": "checkboxes", "action_id": "c", "options": [option]},
        },
        {
            "type": "input",
            "block_id": "ext",
            "label": {"type": "plain_text", "text": "x"},
            "element": {"type": "external_select", "action_id": "e"},
        },
        {
            "type": "input",
            "block_id": "num",
            "label": {"type": "plain_text", "text": "x"},
            "element": {"type": "number_input", "action_id": "n", "is_decimal_allowed": True},
        },
    ]
    view = open_modal(workspace, "UALICE", *blocks)

    driver.set_input(view, "who", "u", "UBOB")
    driver.set_input(view, "many", "c", ["a"])
    driver.set_input(view, "ext", "e", "sku-42")
    driver.set_input(view.id, "num", "n", 12)

    assert view.state["who"]["u"] == {"type": "users_select", "selected_user": "UBOB"}
    assert view.state["many"]["c"] == {"type": "checkboxes", "selected_options": [option]}
    assert view.state["ext"]["e"]["selected_option"]["value"] == "sku-42"
    assert view.state["num"]["n"] == {"type": "number_input", "value": "12"}
    with pytest.raises(LookupError):
        driver.set_input(view, "who", "nope", "x")


# ----------------------------------------------------------------------------- view submission


async def test_the_client_refuses_to_submit_incomplete_forms(
    driver: SlackDriver, app: FakeApp, workspace: Workspace
) -> None:
    view = open_modal(workspace)
    driver.set_input(view, "amount", "value", "0.5")
    driver.set_input(view, "note", "text", "far too long")

    result = await driver.submit_view("UALICE", view)

    assert result.delivery is None and app.received == []
    assert result.client_errors == {
        "amount": "Enter a number that's 1 or more.",
        "product": REQUIRED_FIELD,
        "note": "Must be 5 characters or fewer.",
    }
    assert view.errors == result.client_errors
    forced = await driver.submit_view("UALICE", view, force=True)
    assert forced.delivery is not None and app.last.payload["type"] == "view_submission"


async def test_submission_errors_come_back(driver: SlackDriver, app: FakeApp, workspace: Workspace) -> None:
    view = open_modal(workspace, private_metadata='{"channel": "COPS"}')
    driver.set_input(view, "amount", "value", "600")
    driver.set_input(view, "product", "pick", "1")
    app.answer({"response_action": "errors", "errors": {"amount": "Above your limit of USD 500"}})

    result = await driver.submit_view("UALICE", view, force=True)

    payload = app.last.payload
    assert payload["view"]["private_metadata"] == '{"channel": "COPS"}'
    assert payload["view"]["state"]["values"]["product"]["pick"]["selected_option"]["value"] == "1"
    assert payload["response_urls"] == [] and payload["trigger_id"] == result.delivery.trigger_id  # type: ignore[union-attr]
    assert result.response_action == "errors"
    assert result.errors == {"amount": "Above your limit of USD 500"}
    assert result.view is view and not result.closed
    assert view.errors == result.errors


async def test_submission_answers(driver: SlackDriver, app: FakeApp, workspace: Workspace) -> None:
    view = open_modal(workspace)
    for block, action, value in (("amount", "value", "25"), ("product", "pick", "1")):
        driver.set_input(view, block, action, value)
    confirm = modal({"type": "section", "text": {"type": "mrkdwn", "text": "Sure?"}}, callback_id="confirm")

    app.answer({"response_action": "push", "view": confirm})
    pushed = await driver.submit_view("UALICE", view)
    assert pushed.view is not None and pushed.view.callback_id == "confirm"
    assert workspace.view_stack("UALICE")[0] is view

    app.answer({"response_action": "update", "view": {**confirm, "callback_id": "done"}})
    updated = await driver.submit_view("UALICE", pushed.view)
    assert updated.view is pushed.view and updated.view.callback_id == "done"

    app.answer()  # empty 200: close the top view
    closed = await driver.submit_view("UALICE", updated.view)
    assert closed.view is view

    app.answer({"response_action": "errors", "errors": {"not-an-input": "x"}})
    bad = await driver.submit_view("UALICE", view)
    assert bad.client_error is not None and bad.client_error.startswith(CONNECTION_TROUBLE)

    app.answer({"error": "boom"}, status=500)
    failed = await driver.submit_view("UALICE", view)
    assert failed.client_error == CONNECTION_TROUBLE and failed.view is view

    app.answer({"response_action": "clear"})
    cleared = await driver.submit_view("UALICE", view)
    assert cleared.closed and workspace.view_stack("UALICE") == []
    with pytest.raises(LookupError, match="not the top view"):
        await driver.submit_view("UALICE", view)


async def test_close_view(driver: SlackDriver, app: FakeApp, workspace: Workspace) -> None:
    quiet = open_modal(workspace, "UBOB")
    assert await driver.close_view("UBOB", quiet) is None
    assert app.received == [] and workspace.top_view("UBOB") is None

    root = open_modal(workspace, "UBOB", notify_on_close=True)
    workspace.push_view(workspace.issue_trigger("UBOB"), modal(clear_on_close=True, notify_on_close=True))
    delivery = await driver.close_view("UBOB", workspace.top_view("UBOB"))  # type: ignore[arg-type]

    assert delivery is not None
    payload = app.last.payload
    assert payload["type"] == "view_closed" and payload["is_cleared"] is True
    assert payload["view"]["root_view_id"] == root.id
    assert workspace.view_stack("UBOB") == []


# ------------------------------------------------------------------------- options & shortcuts


async def test_options_load(driver: SlackDriver, app: FakeApp, workspace: Workspace) -> None:
    search = {
        "type": "input",
        "block_id": "sku",
        "label": {"type": "plain_text", "text": "Product"},
        "element": {"type": "external_select", "action_id": "search", "min_query_length": 2},
    }
    view = open_modal(workspace, "UALICE", search)
    option = {"text": {"type": "plain_text", "text": "Steam USD 20"}, "value": "steam-20"}
    app.answer({"option_groups": [{"label": {"type": "plain_text", "text": "Games"}, "options": [option]}]})

    result = await driver.select_options("UALICE", view, "search", "st")

    payload = app.last.payload
    assert (payload["type"], payload["action_id"], payload["block_id"], payload["value"]) == (
        "block_suggestion",
        "search",
        "sku",
        "st",
    )
    assert "trigger_id" not in payload
    assert result.options == [option]
    with pytest.raises(ValueError, match="after 2 characters"):
        await driver.select_options("UALICE", view, "search", "s")


async def test_shortcuts_and_home(driver: SlackDriver, app: FakeApp, workspace: Workspace) -> None:
    message = workspace.post_message("COPS", text="order 42 failed")
    workspace.publish_home("UCAROL", {"type": "home", "blocks": []})

    await driver.message_shortcut("UCAROL", message, "retry_order")
    await driver.global_shortcut("UCAROL", "new_order")
    await driver.app_home_opened("UCAROL")
    challenge = await driver.url_verification("c-123")

    action, shortcut, home, verification = app.received
    assert action.payload["type"] == "message_action" and action.payload["callback_id"] == "retry_order"
    assert action.payload["message"]["text"] == "order 42 failed" and action.payload["response_url"]
    assert shortcut.payload["type"] == "shortcut" and shortcut.payload["trigger_id"]
    event = json.loads(home.body)
    assert event["type"] == "event_callback"
    assert event["event"]["type"] == "app_home_opened" and event["event"]["tab"] == "home"
    assert event["event"]["channel"] == workspace.dm_channel("UCAROL").id
    assert event["event"]["view"]["id"] == workspace.home_view("UCAROL").id  # type: ignore[union-attr]
    assert json.loads(verification.body) == {
        "token": "emulator-verification-token",
        "challenge": "c-123",
        "type": "url_verification",
    }
    assert challenge.ok


async def test_a_slow_app_misses_the_ack_deadline(workspace: Workspace) -> None:
    app = FakeApp(release=asyncio.Event())
    async with LoopbackServer(app.asgi()) as server:  # in-loop server: a real socket and a real timeout
        driver = SlackDriver(f"{server.url}/slack/events", SECRET, workspace, EMULATOR_URL, ack_timeout=0.05)
        try:
            with pytest.raises(AckTimeoutError):
                await driver.slash_command("UALICE", "slow", channel="COPS")
        finally:
            assert app.release is not None
            app.release.set()
            await driver.aclose()
    assert len(app.received) == 1
