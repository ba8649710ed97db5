"""Workspace state and Slack's rules, without HTTP."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from gatebot.clock import ManualClock
from gatebot.emulator import ApiError, Change, Ephemeral, Workspace, find_action, find_actions
from gatebot.emulator.workspace import block_problems, initial_state, number_problem, view_problems

SECTION: dict[str, Any] = {"type": "section", "text": {"type": "mrkdwn", "text": "hello"}}


def modal(*blocks: dict[str, Any], title: str = "Order", **extra: Any) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": "order",
        "title": {"type": "plain_text", "text": title},
        "submit": {"type": "plain_text", "text": "Buy"},
        "blocks": list(blocks),
        **extra,
    }


def text_input(block_id: str | None, action_id: str = "value", **element: Any) -> dict[str, Any]:
    block: dict[str, Any] = {
        "type": "input",
        "label": {"type": "plain_text", "text": "Amount"},
        "element": {"type": "plain_text_input", "action_id": action_id, **element},
    }
    if block_id is not None:
        block["block_id"] = block_id
    return block


def test_ts_follow_the_clock_and_strictly_increase(workspace: Workspace, clock: ManualClock) -> None:
    first = workspace.post_message("COPS", text="one")
    second = workspace.post_message("COPS", text="two")
    clock.advance(timedelta(seconds=90))
    third = workspace.post_message("COPS", text="three")

    assert first.ts == f"{int(clock.now().timestamp()) - 90}.000000"
    assert second.ts == f"{int(clock.now().timestamp()) - 90}.000001"
    assert third.ts == f"{int(clock.now().timestamp())}.000000"
    assert [m.text for m in workspace.messages("COPS")] == ["one", "two", "three"]


def test_two_workspaces_on_the_same_clock_produce_the_same_ids() -> None:
    def run() -> list[str]:
        ws = Workspace.sample(clock=ManualClock())
        m = ws.post_message("gate-ops", blocks=[SECTION], text="x")
        dm = ws.dm_channel("UBOB")
        trigger = ws.issue_trigger("UALICE")
        view = ws.open_view(trigger, modal(text_input(None)))
        return [m.ts, str(m.blocks), dm.id, trigger, view.id, view.hash, str(view.blocks)]

    assert run() == run()


def test_update_keeps_omitted_fields_and_records_the_edit(workspace: Workspace) -> None:
    message = workspace.post_message("COPS", text="pending", blocks=[SECTION])
    original_blocks = message.blocks

    workspace.update_message("COPS", message.ts, text="completed")

    assert message.text == "completed"
    assert message.blocks == original_blocks  # Slack keeps blocks that chat.update omits
    assert message.edited
    assert message.edits[0].text == "pending"
    assert workspace.message_dict(message)["edited"]["ts"] == message.edits[0].edited_ts

    workspace.update_message("COPS", message.ts, blocks=[])
    assert message.blocks == []
    assert len(message.edits) == 2


def test_update_and_delete_rules(workspace: Workspace) -> None:
    human = workspace.post_message("COPS", text="I typed this", user="UALICE")
    with pytest.raises(ApiError, match="cant_update_message"):
        workspace.update_message("COPS", human.ts, text="bot edit")
    with pytest.raises(ApiError, match="message_not_found"):
        workspace.update_message("COPS", "1.000000", text="nope")

    bot = workspace.post_message("COPS", text="bye")
    workspace.delete_message("COPS", bot.ts)
    assert bot.deleted
    assert workspace.latest_message("COPS") is human
    with pytest.raises(ApiError, match="message_not_found"):
        workspace.message("COPS", bot.ts)


def test_threads(workspace: Workspace) -> None:
    parent = workspace.post_message("COPS", text="order #1")
    reply = workspace.post_message("COPS", text="paid", thread_ts=parent.ts)
    reply_to_reply = workspace.post_message("COPS", text="done", thread_ts=reply.ts)

    assert reply_to_reply.thread_ts == parent.ts  # Slack files it under the parent
    assert workspace.replies("COPS", parent.ts) == [reply, reply_to_reply]
    assert workspace.latest_message("COPS") is parent  # replies are not top-level
    parent_dict = workspace.message_dict(parent)
    assert parent_dict["reply_count"] == 2
    assert parent_dict["latest_reply"] == reply_to_reply.ts
    assert workspace.message_dict(reply)["parent_user_id"] == "UBOT"
    with pytest.raises(ApiError, match="thread_not_found"):
        workspace.post_message("COPS", text="?", thread_ts="1.000000")


def test_membership_rules(workspace: Workspace) -> None:
    with pytest.raises(ApiError, match="not_in_channel"):
        workspace.post_message("general", text="hi")
    with pytest.raises(ApiError, match="channel_not_found"):
        workspace.post_message("C404", text="hi")
    with pytest.raises(ApiError, match="no_text"):
        workspace.post_message("COPS")
    workspace.invite_bot("#general")
    assert workspace.post_message("#general", text="hi").channel == "CGENERAL"

    outsider = workspace.add_user(name="dave")
    with pytest.raises(ApiError, match="user_not_in_channel"):
        workspace.post_ephemeral("COPS", outsider.id, text="psst")


def test_dm_by_user_id(workspace: Workspace) -> None:
    message = workspace.post_message("UBOB", text="your order completed")

    dm, existed = workspace.open_dm("UBOB")
    assert existed
    assert dm.id.startswith("D")
    assert message.channel == dm.id
    assert workspace.dm_messages("UBOB") == [message]
    with pytest.raises(ApiError, match="channel_not_found"):
        workspace.post_message("UNOBODY", text="hi")


def test_listeners_see_every_change_and_a_failing_one_breaks_nothing(workspace: Workspace) -> None:
    seen: list[Change] = []

    def broken(change: Change) -> None:
        raise RuntimeError("ui crashed")

    workspace.add_listener(broken)
    remove = workspace.add_listener(seen.append)
    message = workspace.post_message("COPS", text="a")
    workspace.update_message("COPS", message.ts, text="b")
    workspace.post_ephemeral("COPS", "UALICE", text="psst")
    view = workspace.open_view(workspace.issue_trigger("UALICE"), modal(SECTION))
    workspace.update_view(modal(SECTION, title="Order 2"), view_id=view.id)
    workspace.close_top_view("UALICE")
    workspace.publish_home("UALICE", {"type": "home", "blocks": [SECTION]})
    workspace.delete_message("COPS", message.ts)
    remove()
    workspace.post_message("COPS", text="unseen")

    assert [c.kind for c in seen] == [
        "message.posted",
        "message.updated",
        "ephemeral.posted",
        "view.opened",
        "view.updated",
        "view.closed",
        "home.published",
        "message.deleted",
    ]
    assert seen[0].message is message
    assert seen[3].view is view and seen[3].user == "UALICE"


def test_a_failed_operation_changes_nothing_and_tells_no_one(workspace: Workspace) -> None:
    seen: list[Change] = []
    workspace.add_listener(seen.append)
    with pytest.raises(ApiError):
        workspace.post_message("general", text="hi")
    assert seen == []
    assert workspace.messages("general") == []


def test_block_and_action_ids_are_assigned_like_slack(workspace: Workspace) -> None:
    blocks = [
        SECTION,
        {"type": "actions", "elements": [{"type": "button", "text": {"type": "plain_text", "text": "Go"}}]},
    ]
    message = workspace.post_message("COPS", text="x", blocks=blocks)

    assert message.blocks is not None
    assert all(b["block_id"] for b in message.blocks)
    button = message.blocks[1]["elements"][0]
    assert button["action_id"]
    assert "block_id" not in blocks[0]  # the caller's blocks are not touched


def test_view_state_starts_from_initial_values_and_survives_updates_with_stable_ids(
    workspace: Workspace,
) -> None:
    select = {
        "type": "input",
        "block_id": "kind",
        "label": {"type": "plain_text", "text": "Kind"},
        "element": {
            "type": "static_select",
            "action_id": "pick",
            "options": [{"text": {"type": "plain_text", "text": "A"}, "value": "a"}],
        },
    }
    spec = modal(text_input("amount", initial_value="10"), text_input(None, "note"), select)
    view = workspace.open_view(workspace.issue_trigger("UALICE"), spec)

    assert view.state["amount"]["value"] == {"type": "plain_text_input", "value": "10"}
    assert view.state["kind"]["pick"] == {"type": "static_select", "selected_option": None}
    generated = next(b["block_id"] for b in view.blocks if b["element"]["action_id"] == "note")
    workspace.set_view_state(view.id, "amount", "value", {"type": "plain_text_input", "value": "25"})
    workspace.set_view_state(view.id, generated, "note", {"type": "plain_text_input", "value": "typed"})
    old_hash = view.hash

    workspace.update_view(spec, view_id=view.id, hash=old_hash)

    assert view.hash != old_hash
    assert view.state["amount"]["value"]["value"] == "25"  # same block_id/action_id: kept
    notes = [v for actions in view.state.values() for k, v in actions.items() if k == "note"]
    assert notes == [{"type": "plain_text_input", "value": None}]  # generated block_id changed: lost


def test_initial_state_of_every_kind_of_element() -> None:
    option = {"text": {"type": "plain_text", "text": "A"}, "value": "a"}
    blocks = [
        {
            "type": "actions",
            "block_id": "b",
            "elements": [
                {"type": "checkboxes", "action_id": "c", "options": [option], "initial_options": [option]},
                {"type": "datepicker", "action_id": "d", "initial_date": "2026-11-24"},
                {"type": "users_select", "action_id": "u"},
                {"type": "button", "action_id": "btn", "text": {"type": "plain_text", "text": "x"}},
            ],
        }
    ]
    assert initial_state(blocks) == {
        "b": {
            "c": {"type": "checkboxes", "selected_options": [option]},
            "d": {"type": "datepicker", "selected_date": "2026-11-24"},
            "u": {"type": "users_select", "selected_user": None},
        }
    }


def test_trigger_ids_expire_after_three_seconds_and_are_single_use(
    workspace: Workspace, clock: ManualClock
) -> None:
    fresh = workspace.issue_trigger("UALICE")
    stale = workspace.issue_trigger("UALICE")
    clock.advance(timedelta(seconds=3))
    workspace.open_view(fresh, modal(SECTION))  # exactly 3 s: still fine
    clock.advance(timedelta(milliseconds=1))

    with pytest.raises(ApiError, match="expired_trigger_id"):
        workspace.open_view(stale, modal(SECTION))
    with pytest.raises(ApiError, match="exchanged_trigger_id"):
        workspace.open_view(fresh, modal(SECTION))
    with pytest.raises(ApiError, match="invalid_trigger_id"):
        workspace.open_view("123.456.abc", modal(SECTION))


def test_a_rejected_view_does_not_use_up_the_trigger(workspace: Workspace) -> None:
    trigger = workspace.issue_trigger("UALICE")
    with pytest.raises(ApiError, match="invalid_arguments"):
        workspace.open_view(trigger, modal(SECTION, title="A title far longer than Slack allows"))
    assert workspace.open_view(trigger, modal(SECTION)).user == "UALICE"


def test_view_stack(workspace: Workspace) -> None:
    root = workspace.open_view(workspace.issue_trigger("UBOB"), modal(SECTION))
    second = workspace.push_view(workspace.issue_trigger("UBOB"), modal(SECTION, title="Confirm"))
    third = workspace.push_view(workspace.issue_trigger("UBOB"), modal(SECTION, title="Really?"))

    assert workspace.view_stack("UBOB") == [root, second, third]
    assert third.previous_view_id == second.id and third.root_view_id == root.id
    with pytest.raises(ApiError, match="push_limit_reached"):
        workspace.push_view(workspace.issue_trigger("UBOB"), modal(SECTION))
    assert workspace.close_top_view("UBOB") is third
    assert workspace.top_view("UBOB") is second
    with pytest.raises(ApiError, match="not_found"):
        workspace.update_view(modal(SECTION), view_id=third.id)  # closed views can't be updated
    assert workspace.clear_views("UBOB") == [second, root]
    assert workspace.top_view("UBOB") is None


def test_update_by_external_id_and_hash_conflict(workspace: Workspace) -> None:
    view = workspace.open_view(workspace.issue_trigger("UALICE"), modal(SECTION, external_id="draft-1"))
    stale = view.hash
    workspace.update_view(modal(SECTION, external_id="draft-1", title="Step 2"), external_id="draft-1")

    assert view.title == {"type": "plain_text", "text": "Step 2"}
    with pytest.raises(ApiError, match="hash_conflict"):
        workspace.update_view(modal(SECTION), view_id=view.id, hash=stale)
    with pytest.raises(ApiError, match="duplicate_external_id"):
        workspace.open_view(workspace.issue_trigger("UBOB"), modal(SECTION, external_id="draft-1"))


def test_home_tab_keeps_its_id(workspace: Workspace) -> None:
    first = workspace.publish_home("UALICE", {"type": "home", "blocks": [SECTION]})
    stale = first.hash
    second = workspace.publish_home("UALICE", {"type": "home", "blocks": []}, hash=stale)

    assert second is first and second.blocks == []
    with pytest.raises(ApiError, match="hash_conflict"):
        workspace.publish_home("UALICE", {"type": "home", "blocks": []}, hash=stale)
    with pytest.raises(ApiError, match="invalid_arguments"):
        workspace.publish_home("UALICE", modal(SECTION))


def test_response_url_posts(workspace: Workspace, clock: ManualClock) -> None:
    url = workspace.issue_response_url("http://emu", user="UALICE", channel="COPS")
    token = url.rsplit("/", 1)[1]

    first = workspace.respond(token, {"text": "working on it"})
    assert isinstance(first, Ephemeral)
    replaced = workspace.respond(token, {"text": "done", "replace_original": True})
    public = workspace.respond(token, {"text": "Alice bought a voucher", "response_type": "in_channel"})

    assert replaced is first
    assert workspace.ephemerals("UALICE") == [first]
    assert first.text == "done" and first.revisions[0].text == "working on it"
    assert workspace.latest_message("COPS") is public
    workspace.respond(token, {"delete_original": True})
    assert workspace.ephemerals("UALICE") == []
    workspace.respond(token, {"text": "fifth"})
    with pytest.raises(ApiError, match="used_url"):
        workspace.respond(token, {"text": "sixth"})

    late = workspace.issue_response_url("http://emu", user="UALICE", channel="COPS").rsplit("/", 1)[1]
    clock.advance(timedelta(minutes=31))
    with pytest.raises(ApiError, match="expired_url"):
        workspace.respond(late, {"text": "too late"})
    with pytest.raises(ApiError, match="invalid_url"):
        workspace.respond("nope", {"text": "?"})


def test_response_url_replaces_the_message_it_came_from(workspace: Workspace) -> None:
    message = workspace.post_message("COPS", text="Approve?", blocks=[SECTION])
    token = workspace.issue_response_url("http://emu", user="UBOB", channel="COPS", original=message)

    workspace.respond(token.rsplit("/", 1)[1], {"text": "Approved by Bob", "replace_original": True})

    assert message.text == "Approved by Bob" and message.blocks == []
    assert message.edits[0].text == "Approve?"


def test_usergroups(workspace: Workspace) -> None:
    assert workspace.usergroup_members("SAPPROVERS") == ["UALICE", "UBOB"]
    with pytest.raises(ApiError, match="no_such_subteam"):
        workspace.usergroup_members("SNOPE")
    workspace.paid_plan = False
    with pytest.raises(ApiError, match="plan_upgrade_required"):
        workspace.usergroup_members("SAPPROVERS")


def test_block_kit_limits() -> None:
    assert block_problems([SECTION] * 50, max_blocks=50) == []
    assert block_problems([SECTION] * 51, max_blocks=50) == [
        "no more than 50 items allowed [json-pointer:/blocks]"
    ]
    duplicate = [{**SECTION, "block_id": "x"}, {**SECTION, "block_id": "x"}]
    assert "duplicate block_id 'x'" in block_problems(duplicate, max_blocks=50)[0]
    long_section = {"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}
    assert block_problems([long_section], max_blocks=50)
    too_many_options = {
        "type": "actions",
        "elements": [
            {
                "type": "static_select",
                "action_id": "s",
                "options": [
                    {"text": {"type": "plain_text", "text": str(i)}, "value": str(i)} for i in range(101)
                ],
            }
        ],
    }
    assert block_problems([too_many_options], max_blocks=50) == [
        "no more than 100 options allowed [json-pointer:/blocks/0]"
    ]
    no_submit = modal(text_input("a"))
    del no_submit["submit"]
    assert view_problems(no_submit, kind="modal") == [
        "submit is required when a view has input blocks [json-pointer:/view/submit]"
    ]


def test_posting_too_many_blocks_is_invalid_blocks(workspace: Workspace) -> None:
    with pytest.raises(ApiError) as caught:
        workspace.post_message("COPS", text="x", blocks=[SECTION] * 51)
    assert caught.value.error == "invalid_blocks"
    assert caught.value.messages


@pytest.mark.parametrize(
    ("element", "value", "problem"),
    [
        ({"is_decimal_allowed": True}, "12.50", None),
        ({"is_decimal_allowed": False}, "12.50", "Enter a whole number."),
        ({"is_decimal_allowed": True}, "twelve", "Enter a number."),
        ({"is_decimal_allowed": True, "min_value": "1"}, "0.5", "Enter a number that's 1 or more."),
        ({"is_decimal_allowed": True, "max_value": "100"}, "100.01", "Enter a number that's 100 or less."),
        ({"is_decimal_allowed": False}, None, None),
    ],
)
def test_number_input_checks(element: dict[str, Any], value: str | None, problem: str | None) -> None:
    assert number_problem({"type": "number_input", **element}, value) == problem


def test_find_action() -> None:
    blocks: list[dict[str, Any]] = [
        {
            "type": "section",
            "block_id": "s",
            "text": {"type": "mrkdwn", "text": "x"},
            "accessory": {"type": "button", "action_id": "cancel", "value": "1"},
        },
        {
            "type": "actions",
            "block_id": "a",
            "elements": [{"type": "button", "action_id": "cancel", "value": "2"}],
        },
        {"type": "input", "block_id": "i", "element": {"type": "plain_text_input", "action_id": "note"}},
    ]
    found = find_action(blocks, "cancel")
    assert found is not None and found.block_id == "s" and found.element["value"] == "1"
    assert [f.block_id for f in find_actions(blocks, "cancel")] == ["s", "a"]
    assert find_action(blocks, "cancel", block_id="a") == find_actions(blocks, "cancel")[1]
    assert find_action(blocks, "note") is not None
    assert find_action(blocks, "missing") is None
    assert find_action(None, "x") is None


def test_calls_and_faults_are_recorded(workspace: Workspace) -> None:
    workspace.record_call("chat.postMessage", {"channel": "COPS"})
    mark = workspace.call_count
    workspace.record_call("views.open", {"trigger_id": "1"}, error="expired_trigger_id")
    workspace.fail_next("chat.update", "message_not_found", times=2)
    workspace.rate_limit_next("chat.update", retry_after=7)

    assert [c.method for c in workspace.calls()] == ["chat.postMessage", "views.open"]
    assert workspace.calls(since=mark)[0].error == "expired_trigger_id"
    assert not workspace.calls("views.open")[0].ok
    faults = [workspace.take_fault("chat.update") for _ in range(4)]
    assert [(f.error, f.retry_after) if f else None for f in faults] == [
        ("message_not_found", None),
        ("message_not_found", None),
        ("ratelimited", 7),
        None,
    ]


async def test_wait_for(workspace: Workspace) -> None:
    workspace.post_message("COPS", text="here")
    found = await workspace.wait_for(lambda: workspace.latest_message("COPS"))
    assert found.text == "here"
    with pytest.raises(TimeoutError, match="a reply"):
        await workspace.wait_for(lambda: workspace.replies("COPS", found.ts), timeout=0.05, what="a reply")


def test_user_info_shapes(workspace: Workspace, clock: ManualClock) -> None:
    alice = workspace.user_dict(workspace.user("UALICE"))
    assert alice["tz"] == "Europe/Berlin"
    assert alice["tz_offset"] == 3600  # November: CET
    assert alice["is_admin"] is True
    assert workspace.user_ref("UBOB") == {
        "id": "UBOB",
        "username": "bob",
        "name": "bob",
        "team_id": "T00000001",
    }
    with pytest.raises(ApiError, match="user_not_found"):
        workspace.user("UNOPE")
