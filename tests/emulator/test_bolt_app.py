"""The driver and the Web API fake against a real Bolt app, both over loopback HTTP.

A tiny slack_bolt AsyncApp, mounted on Starlette with AsyncSlackRequestHandler, is served from a
background thread exactly like the emulator; its AsyncWebClient points at the emulator. Work Bolt
does after ack() runs on, so tests wait on the workspace instead of asserting at once.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any

import pytest
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gatebot.emulator import EmulatorServer, LoopbackServer, SlackDriver, Workspace, running_asgi

SECRET = "bolt-emulator-test-signing-secret"
PRODUCTS: list[dict[str, Any]] = [
    {"text": {"type": "plain_text", "text": "Steam USD 20"}, "value": "steam-20"},
    {"text": {"type": "plain_text", "text": "Spotify USD 10"}, "value": "spotify-10"},
]


def plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text}


def order_modal(channel: str, kind: str | None = None) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = [
        {
            "type": "input",
            "block_id": "kind",
            "dispatch_action": True,
            "label": plain("Kind"),
            "element": {
                "type": "static_select",
                "action_id": "kind",
                "options": [
                    {"text": plain("Voucher"), "value": "1"},
                    {"text": plain("Top-up"), "value": "3"},
                ],
            },
        },
        {
            "type": "input",
            "block_id": "amount",
            "label": plain("Amount (USD)"),
            "element": {
                "type": "number_input",
                "action_id": "value",
                "is_decimal_allowed": True,
                "min_value": "1",
            },
        },
    ]
    if kind == "3":
        blocks.append(
            {
                "type": "input",
                "block_id": "phone",
                "label": plain("Phone number"),
                "element": {"type": "plain_text_input", "action_id": "value"},
            }
        )
    return {
        "type": "modal",
        "callback_id": "order",
        "title": plain("New order"),
        "submit": plain("Order"),
        "private_metadata": json.dumps({"channel": channel}),
        "blocks": blocks,
    }


def build_bolt_app(api_url: str, token: str, retries_seen: list[str]) -> AsyncApp:
    app = AsyncApp(client=AsyncWebClient(base_url=api_url, token=token), signing_secret=SECRET)

    @app.middleware
    async def note_retries(req: Any, next: Any) -> Any:  # Bolt injects arguments by name
        retries_seen.extend(req.headers.get("x-slack-retry-num", []))
        return await next()

    @app.command("/gate")
    async def gate(
        ack: Any, body: dict[str, Any], command: dict[str, Any], client: Any, respond: Any
    ) -> None:
        text = command["text"]
        if text == "ping":
            await ack("pong")
        elif text == "public":
            await ack(response_type="in_channel", text="Everyone: pong")
        elif text == "later":
            await ack()
            await respond("done later")
        elif text == "order":
            await ack()
            await client.views_open(trigger_id=body["trigger_id"], view=order_modal(command["channel_id"]))
        elif text == "approve":
            await ack()
            await client.chat_postMessage(
                channel=command["channel_id"],
                text="Approve order 7?",
                blocks=[
                    {"type": "section", "text": {"type": "mrkdwn", "text": "Approve order 7?"}},
                    {
                        "type": "actions",
                        "elements": [
                            {"type": "button", "action_id": "approve", "text": plain("Approve"), "value": "7"}
                        ],
                    },
                ],
            )
        else:
            await ack(f"unknown: {text}")

    @app.action("kind")
    async def kind_changed(ack: Any, body: dict[str, Any], client: Any) -> None:
        await ack()
        view = body["view"]
        kind = view["state"]["values"]["kind"]["kind"]["selected_option"]["value"]
        channel = json.loads(view["private_metadata"])["channel"]
        await client.views_update(view_id=view["id"], hash=view["hash"], view=order_modal(channel, kind))

    @app.view("order")
    async def order_submitted(ack: Any, body: dict[str, Any], view: dict[str, Any], client: Any) -> None:
        amount = Decimal(view["state"]["values"]["amount"]["value"]["value"])
        if amount > 100:
            await ack(response_action="errors", errors={"amount": "Above your limit of USD 100"})
            return
        await ack()
        channel = json.loads(view["private_metadata"])["channel"]
        await client.chat_postMessage(channel=channel, text=f"<@{body['user']['id']}> ordered USD {amount}")

    @app.action("approve")
    async def approve(ack: Any, body: dict[str, Any], respond: Any) -> None:
        await ack()
        await respond(
            replace_original=True,
            text=f"Order {body['actions'][0]['value']} approved by <@{body['user']['id']}>",
        )

    @app.options("product")
    async def products(ack: Any, payload: dict[str, Any]) -> None:
        query = payload["value"].lower()
        await ack(options=[p for p in PRODUCTS if query in p["text"]["text"].lower()])

    @app.event("app_home_opened")
    async def home(event: dict[str, Any], client: Any) -> None:
        await client.views_publish(
            user_id=event["user"],
            view={
                "type": "home",
                "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "Welcome"}}],
            },
        )

    @app.shortcut("new_order")
    async def new_order(ack: Any, body: dict[str, Any], client: Any) -> None:
        await ack()
        await client.views_open(trigger_id=body["trigger_id"], view=order_modal("COPS"))

    return app


@pytest.fixture(scope="module")
def retries_seen() -> list[str]:
    return []


@pytest.fixture(scope="module")
def bolt_server(emulator_server: EmulatorServer, retries_seen: list[str]) -> Iterator[LoopbackServer]:
    app = build_bolt_app(emulator_server.api_url, emulator_server.workspace.bot_token, retries_seen)
    handler = AsyncSlackRequestHandler(app)

    async def endpoint(request: Request) -> Response:
        return await handler.handle(request)

    with running_asgi(Starlette(routes=[Route("/slack/events", endpoint, methods=["POST"])])) as server:
        yield server


@pytest.fixture
async def driver(bolt_server: LoopbackServer, emulator: EmulatorServer) -> AsyncIterator[SlackDriver]:
    async with emulator.driver(f"{bolt_server.url}/slack/events", SECRET) as driver:
        yield driver


async def test_slash_command_gets_its_ephemeral_reply(driver: SlackDriver, workspace: Workspace) -> None:
    result = await driver.slash_command("UALICE", "ping", channel="gate-ops")

    assert result.status == 200
    assert result.ephemeral is not None and result.ephemeral.text == "pong"
    assert [e.text for e in workspace.ephemerals("UALICE", channel="COPS")] == ["pong"]


async def test_in_channel_reply_and_later_respond(driver: SlackDriver, workspace: Workspace) -> None:
    public = await driver.slash_command("UBOB", "public", channel="gate-ops")
    later = await driver.slash_command("UBOB", "later", channel="gate-ops")

    assert public.message is not None and public.message.text == "Everyone: pong"
    assert later.ephemeral is None  # bare ack()
    reply = await workspace.wait_for(lambda: workspace.latest_ephemeral("UBOB"), what="respond()")
    assert (reply.text, reply.source) == ("done later", "response_url")


async def test_modal_opens_and_its_submission_errors_come_back(
    driver: SlackDriver, workspace: Workspace
) -> None:
    await driver.slash_command("UALICE", "order", channel="gate-ops")
    view = await workspace.wait_for(lambda: workspace.top_view("UALICE"), what="the order modal")
    assert view.callback_id == "order"
    assert workspace.calls("views.open")[0].ok

    driver.set_input(view, "kind", "kind", "1")
    driver.set_input(view, "amount", "value", "250")
    rejected = await driver.submit_view("UALICE", view)

    assert rejected.status == 200
    assert rejected.errors == {"amount": "Above your limit of USD 100"}
    assert rejected.view is view

    driver.set_input(view, "amount", "value", "25.50")
    accepted = await driver.submit_view("UALICE", view)

    assert accepted.closed
    posted = await workspace.wait_for(lambda: workspace.latest_message("COPS"), what="the order message")
    assert posted.text == "<@UALICE> ordered USD 25.50"


async def test_dispatch_action_updates_the_modal_and_keeps_typed_values(
    driver: SlackDriver, workspace: Workspace
) -> None:
    await driver.global_shortcut("UCAROL", "new_order")
    view = await workspace.wait_for(lambda: workspace.top_view("UCAROL"), what="the order modal")
    driver.set_input(view, "amount", "value", "40")
    first_hash = view.hash

    await driver.click("UCAROL", view, "kind", selected_option="3")

    await workspace.wait_for(lambda: view.hash != first_hash, what="views.update")
    assert [b["block_id"] for b in view.blocks] == ["kind", "amount", "phone"]
    assert view.state["amount"]["value"]["value"] == "40"
    assert view.state["kind"]["kind"]["selected_option"]["value"] == "3"
    update = workspace.calls("views.update")[0]
    assert update.ok and update.params["hash"] == first_hash


async def test_button_replaces_the_original_message(driver: SlackDriver, workspace: Workspace) -> None:
    await driver.slash_command("UALICE", "approve", channel="gate-ops")
    message = await workspace.wait_for(lambda: workspace.latest_message("COPS"), what="the approval message")

    await driver.click("UBOB", message, "approve")

    await workspace.wait_for(lambda: message.edited, what="replace_original")
    assert message.text == "Order 7 approved by <@UBOB>"
    assert message.edits[0].text == "Approve order 7?"


async def test_options_load(driver: SlackDriver, workspace: Workspace) -> None:
    view = workspace.open_view(
        workspace.issue_trigger("UALICE"),
        {
            "type": "modal",
            "title": plain("Search"),
            "blocks": [
                {
                    "type": "actions",
                    "elements": [{"type": "external_select", "action_id": "product", "min_query_length": 1}],
                }
            ],
        },
    )

    result = await driver.select_options("UALICE", view, "product", "steam")

    assert result.status == 200
    assert result.options == PRODUCTS[:1]


async def test_home_tab_is_published_when_opened(driver: SlackDriver, workspace: Workspace) -> None:
    delivery = await driver.app_home_opened("UBOB")

    assert delivery.status == 200
    home = await workspace.wait_for(lambda: workspace.home_view("UBOB"), what="views.publish")
    assert home.blocks[0]["text"]["text"] == "Welcome"


async def test_event_retries_reach_the_app(
    driver: SlackDriver, workspace: Workspace, retries_seen: list[str]
) -> None:
    retries_seen.clear()
    first = await driver.app_home_opened("UCAROL")
    retry = await driver.app_home_opened("UCAROL", event_id=first.event_id, retry_num=1)

    assert retry.status == 200
    assert retries_seen == ["1"]


async def test_url_verification_is_echoed(driver: SlackDriver) -> None:
    result = await driver.url_verification("3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P")

    assert result.status == 200
    assert result.json() == {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}


@pytest.mark.parametrize(
    "signing",
    [{"secret": "someone-elses-secret"}, {"timestamp_skew": -6 * 60}, {"unsigned": True}],
    ids=["wrong-secret", "stale", "unsigned"],
)
async def test_bad_signatures_get_401(
    driver: SlackDriver, workspace: Workspace, signing: dict[str, Any]
) -> None:
    result = await driver.with_signing(**signing).slash_command("UALICE", "ping", channel="gate-ops")

    assert result.status == 401
    assert result.ephemeral is None
    assert workspace.ephemerals() == []
