"""The Web API fake, driven by slack_sdk's own clients over real loopback HTTP."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx
import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from gatebot.clock import ManualClock
from gatebot.emulator import EmulatorServer, Workspace

SECTION: dict[str, Any] = {"type": "section", "text": {"type": "mrkdwn", "text": "*Order* #1"}}


def modal(title: str = "Order", **extra: Any) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": "order",
        "title": {"type": "plain_text", "text": title},
        "submit": {"type": "plain_text", "text": "Buy"},
        "blocks": [
            {
                "type": "input",
                "block_id": "amount",
                "label": {"type": "plain_text", "text": "Amount"},
                "element": {"type": "number_input", "action_id": "value", "is_decimal_allowed": True},
            }
        ],
        **extra,
    }


async def api_error(call: Any) -> SlackApiError:
    with pytest.raises(SlackApiError) as caught:
        await call
    return caught.value


async def test_post_update_thread_and_delete(client: AsyncWebClient, workspace: Workspace) -> None:
    posted = await client.chat_postMessage(channel="COPS", text="Order #1 pending", blocks=[SECTION])
    ts = posted["ts"]
    assert posted["channel"] == "COPS"
    assert posted["message"]["bot_id"] == workspace.bot_id
    assert posted["message"]["blocks"][0]["block_id"]  # assigned, as Slack does

    updated = await client.chat_update(channel="COPS", ts=ts, text="Order #1 completed")
    reply = await client.chat_postMessage(channel="COPS", thread_ts=ts, text="voucher sent by DM")

    message = workspace.message("COPS", ts)
    assert updated["text"] == "Order #1 completed"
    assert message.text == "Order #1 completed" and message.edits[0].text == "Order #1 pending"
    assert message.blocks is not None and message.blocks[0]["text"]["text"] == "*Order* #1"
    assert [m.ts for m in workspace.replies("COPS", ts)] == [reply["ts"]]
    assert workspace.latest_message("COPS") is message

    link = await client.chat_getPermalink(channel="COPS", message_ts=reply["ts"])
    assert link["permalink"].startswith("https://gatebot-emulator.slack.com/archives/COPS/p")
    assert "thread_ts=" in link["permalink"]

    deleted = await client.chat_delete(channel="COPS", ts=reply["ts"])
    assert deleted["ts"] == reply["ts"]
    assert workspace.replies("COPS", ts) == []
    assert [c.method for c in workspace.calls()] == [
        "chat.postMessage",
        "chat.update",
        "chat.postMessage",
        "chat.getPermalink",
        "chat.delete",
    ]


async def test_ephemeral_and_dm(client: AsyncWebClient, workspace: Workspace) -> None:
    eph = await client.chat_postEphemeral(channel="COPS", user="UALICE", text="only you see this")
    opened = await client.conversations_open(users="UBOB")
    dm_id = opened["channel"]["id"]
    await client.chat_postMessage(channel="UBOB", text="your voucher is ready")  # user id = DM
    again = await client.conversations_open(users="UBOB", return_im=True)

    assert workspace.ephemerals("UALICE")[0].ts == eph["message_ts"]
    assert workspace.ephemerals("UBOB") == []
    assert dm_id.startswith("D")
    assert [m.text for m in workspace.dm_messages("UBOB")] == ["your voucher is ready"]
    assert again["already_open"] is True and again["channel"]["is_im"] is True
    assert again["channel"]["user"] == "UBOB"


async def test_channel_errors(client: AsyncWebClient, workspace: Workspace) -> None:
    assert (await api_error(client.chat_postMessage(channel="CGENERAL", text="hi"))).response[
        "error"
    ] == "not_in_channel"
    assert (await api_error(client.chat_postMessage(channel="C404", text="hi"))).response[
        "error"
    ] == "channel_not_found"
    stranger = workspace.add_user(name="dave")
    error = await api_error(client.chat_postEphemeral(channel="COPS", user=stranger.id, text="x"))
    assert error.response["error"] == "user_not_in_channel"
    assert [c.error for c in workspace.calls()] == [
        "not_in_channel",
        "channel_not_found",
        "user_not_in_channel",
    ]


async def test_directory_methods(client: AsyncWebClient, workspace: Workspace) -> None:
    info = await client.conversations_info(channel="COPS")
    members = await client.conversations_members(channel="COPS")
    user = await client.users_info(user="UBOB")
    group = await client.usergroups_users_list(usergroup="SAPPROVERS")
    auth = await client.auth_test()

    assert info["channel"]["name"] == "gate-ops" and info["channel"]["is_member"] is True
    assert members["members"] == ["UALICE", "UBOB", "UCAROL", "UBOT"]
    assert user["user"]["real_name"] == "Bob Brown" and user["user"]["tz"] == "America/New_York"
    assert group["users"] == ["UALICE", "UBOB"]
    assert (auth["user_id"], auth["bot_id"], auth["team_id"]) == ("UBOT", "B00000001", "T00000001")

    workspace.paid_plan = False
    error = await api_error(client.usergroups_users_list(usergroup="SAPPROVERS"))
    assert error.response["error"] == "plan_upgrade_required"
    assert (await api_error(client.users_info(user="UNOPE"))).response["error"] == "user_not_found"


async def test_views_lifecycle(client: AsyncWebClient, workspace: Workspace) -> None:
    opened = await client.views_open(trigger_id=workspace.issue_trigger("UALICE"), view=modal())
    view = opened["view"]
    assert view["id"].startswith("V") and view["hash"]
    assert view["state"] == {"values": {"amount": {"value": {"type": "number_input", "value": None}}}}
    assert workspace.top_view("UALICE") is not None

    updated = await client.views_update(view_id=view["id"], hash=view["hash"], view=modal("Order: step 2"))
    assert updated["view"]["id"] == view["id"] and updated["view"]["hash"] != view["hash"]
    error = await api_error(client.views_update(view_id=view["id"], hash=view["hash"], view=modal()))
    assert error.response["error"] == "hash_conflict"

    await client.views_push(trigger_id=workspace.issue_trigger("UALICE"), view=modal("Confirm"))
    await client.views_push(trigger_id=workspace.issue_trigger("UALICE"), view=modal("Really?"))
    error = await api_error(client.views_push(trigger_id=workspace.issue_trigger("UALICE"), view=modal("No")))
    assert error.response["error"] == "push_limit_reached"
    assert [v.title["text"] for v in workspace.view_stack("UALICE") if v.title] == [
        "Order: step 2",
        "Confirm",
        "Really?",
    ]

    home = await client.views_publish(user_id="UBOB", view={"type": "home", "blocks": [SECTION]})
    assert home["view"]["type"] == "home"
    assert workspace.home_view("UBOB") is not None


async def test_trigger_ids(client: AsyncWebClient, workspace: Workspace, clock: ManualClock) -> None:
    trigger = workspace.issue_trigger("UALICE")
    clock.advance(timedelta(seconds=3, milliseconds=1))

    error = await api_error(client.views_open(trigger_id=trigger, view=modal()))
    assert error.response["error"] == "expired_trigger_id"
    error = await api_error(client.views_open(trigger_id="42.42.not-issued", view=modal()))
    assert error.response["error"] == "invalid_trigger_id"
    fresh = workspace.issue_trigger("UALICE")
    await client.views_open(trigger_id=fresh, view=modal())
    error = await api_error(client.views_open(trigger_id=fresh, view=modal()))
    assert error.response["error"] == "exchanged_trigger_id"


async def test_invalid_views_are_explained(client: AsyncWebClient, workspace: Workspace) -> None:
    error = await api_error(
        client.views_open(trigger_id=workspace.issue_trigger("UALICE"), view=modal("x" * 25))
    )
    assert error.response["error"] == "invalid_arguments"
    assert error.response["response_metadata"]["messages"] == [
        "[ERROR] must be less than 25 characters [json-pointer:/view/title/text]"
    ]


async def test_rate_limit_answers_429_with_retry_after(client: AsyncWebClient, workspace: Workspace) -> None:
    workspace.rate_limit_next("chat.postMessage", retry_after=30)

    error = await api_error(client.chat_postMessage(channel="COPS", text="hi"))

    assert error.response.status_code == 429
    assert error.response.headers["Retry-After"] == "30"
    assert error.response["error"] == "ratelimited"
    assert (await client.chat_postMessage(channel="COPS", text="hi"))["ok"] is True
    assert [c.error for c in workspace.calls("chat.postMessage")] == ["ratelimited", None]


async def test_injected_failures(client: AsyncWebClient, workspace: Workspace) -> None:
    workspace.fail_next("views.publish", "internal_error")
    error = await api_error(client.views_publish(user_id="UBOB", view={"type": "home", "blocks": []}))
    assert error.response["error"] == "internal_error"
    assert workspace.home_view("UBOB") is None
    assert (await client.views_publish(user_id="UBOB", view={"type": "home", "blocks": []}))["ok"]


async def test_auth(emulator: EmulatorServer, workspace: Workspace) -> None:
    wrong = AsyncWebClient(base_url=emulator.api_url, token="xoxb-wrong")
    anonymous = AsyncWebClient(base_url=emulator.api_url)

    assert (await api_error(wrong.auth_test())).response["error"] == "invalid_auth"
    assert (await api_error(anonymous.auth_test())).response["error"] == "not_authed"
    assert workspace.messages("COPS") == []


async def test_form_bodies_query_strings_and_token_arguments(
    emulator: EmulatorServer, workspace: Workspace
) -> None:
    async with httpx.AsyncClient(base_url=emulator.api_url) as http:
        form = await http.post(
            "chat.postMessage",
            data={
                "token": workspace.bot_token,
                "channel": "COPS",
                "text": "form",
                "blocks": json.dumps([SECTION]),
            },
        )
        query = await http.get(
            "conversations.info",
            params={"channel": "COPS"},
            headers={"Authorization": f"Bearer {workspace.bot_token}"},
        )
        bad = await http.post(
            "chat.postMessage", data={"token": workspace.bot_token, "channel": "COPS", "blocks": "[{"}
        )
        unknown = await http.post("chat.fly", data={"token": workspace.bot_token})

    assert form.status_code == 200 and form.json()["ok"] is True
    assert workspace.latest_message("COPS").blocks[0]["text"]["text"] == "*Order* #1"  # type: ignore[union-attr,index]
    assert query.json()["channel"]["id"] == "COPS"
    assert bad.json() == {
        "ok": False,
        "error": "invalid_blocks",
        "response_metadata": {"messages": ["[ERROR] blocks is not valid JSON"]},
    }
    assert unknown.json() == {"ok": False, "error": "unknown_method"}
    assert all("token" not in c.params for c in workspace.calls())


def test_sync_web_client(emulator: EmulatorServer, workspace: Workspace) -> None:
    client = WebClient(base_url=emulator.api_url, token=workspace.bot_token)

    posted = client.chat_postMessage(channel="COPS", text="from the sync client")
    opened = client.views_open(trigger_id=workspace.issue_trigger("UCAROL"), view=modal())

    assert workspace.message("COPS", posted["ts"]).text == "from the sync client"
    assert opened["view"]["id"] == workspace.top_view("UCAROL").id  # type: ignore[union-attr]


async def test_response_url_endpoint(emulator: EmulatorServer, workspace: Workspace) -> None:
    url = workspace.issue_response_url(emulator.base_url, user="UALICE", channel="COPS")
    webhook = AsyncWebhookClient(url)

    first = await webhook.send(text="Working on it…")
    await webhook.send(text="Done: USD 25.00", replace_original=True)
    await webhook.send(text="Alice bought a voucher", response_type="in_channel")
    await webhook.send(text="4")
    await webhook.send(text="5")
    sixth = await webhook.send(text="6")

    assert first.status_code == 200
    assert [e.text for e in workspace.ephemerals("UALICE")] == ["Done: USD 25.00", "4", "5"]
    assert workspace.latest_message("COPS").text == "Alice bought a voucher"  # type: ignore[union-attr]
    assert sixth.status_code == 404
    assert json.loads(sixth.body)["error"] == "used_url"


async def test_in_loop_server_and_live_changes(workspace: Workspace) -> None:
    changes: list[str] = []
    workspace.add_listener(lambda change: changes.append(f"{change.kind} {change.channel or change.user}"))

    async with EmulatorServer(workspace) as emulator:  # served by this test's own event loop
        client = AsyncWebClient(base_url=emulator.api_url, token=workspace.bot_token)
        async with httpx.AsyncClient() as http:
            health = await http.get(emulator.base_url + "/")
            form = await http.post(
                emulator.api_url + "views.open",
                data={
                    "trigger_id": workspace.issue_trigger("UBOB"),
                    "view": json.dumps(modal()),
                },
                headers={"Authorization": f"Bearer {workspace.bot_token}"},
            )
        await client.chat_postMessage(channel="COPS", text="live")

    assert health.json() == {"ok": True, "emulator": "slack", "team_id": workspace.team_id}
    assert form.json()["view"]["callback_id"] == "order"
    assert changes == ["view.opened UBOB", "message.posted COPS"]
