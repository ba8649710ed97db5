"""The renderer: every block type, button numbering, mrkdwn, edits, threads, DMs, ephemerals, App Home."""

from __future__ import annotations

from typing import Any

import pytest

from gatebot.demo.render import (
    ActionIndex,
    BlockRenderer,
    Line,
    StaticDirectory,
    mrkdwn_to_text,
    plain_lines,
)
from gatebot.emulator.workspace import Ephemeral, Message, View

DIRECTORY = StaticDirectory(users={"UALICE": "alice", "UBOB": "bob", "UBOT": "gatebot"},
                            channels={"COPS": "gate-ops", "CFIN": "finance"})


def plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text}


def md(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text}


def button(text: str, action_id: str, value: str | None = None, **extra: Any) -> dict[str, Any]:
    element: dict[str, Any] = {"type": "button", "text": plain(text), "action_id": action_id, **extra}
    if value is not None:
        element["value"] = value
    return element


def renderer(viewer: str | None = "UALICE") -> BlockRenderer:
    return BlockRenderer(DIRECTORY, ActionIndex(), viewer=viewer)


def texts(lines: list[Line]) -> list[str]:
    return [line.text for line in lines]


def bot_message(blocks: list[dict[str, Any]] | None, *, text: str = "fallback", ts: str = "100.000001",
                channel: str = "COPS", thread_ts: str | None = None) -> Message:
    return Message(channel=channel, ts=ts, text=text, blocks=blocks, user="UBOT", bot_id="B1", thread_ts=thread_ts)


# -- mrkdwn ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "shown"), [
    ("hi <@UALICE>", "hi @alice"),
    ("hi <@UBOB|robert>", "hi @bob"),
    ("hi <@UNKNOWN|zed>", "hi @zed"),
    ("hi <@UNKNOWN>", "hi @UNKNOWN"),
    ("in <#COPS>", "in #gate-ops"),
    ("in <#CXYZ|random>", "in #random"),
    ("ask <!subteam^S1|@gate-support>", "ask @gate-support"),
    ("<!here> look", "@here look"),
    ("at <!date^1795510800^{date_short_pretty} {time}|2026-11-24 09:00 UTC>", "at 2026-11-24 09:00 UTC"),
    ("see <https://x.example/a?b=1&amp;c=2|the docs>", "see the docs (https://x.example/a?b=1&c=2)"),
    ("see <https://x.example>", "see https://x.example"),
    ("mail <mailto:a@b.example|a@b.example>", "mail a@b.example"),
    ("*bold* _it_ ~gone~ `code`", "*bold* _it_ ~gone~ `code`"),
    ("5 &lt; 6 &amp;&amp; 7 &gt; 6", "5 < 6 && 7 > 6"),
    (":warning: low :no_such_emoji:", "⚠️ low :no_such_emoji:"),
])
def test_mrkdwn_reads_like_slack_shows_it(raw: str, shown: str) -> None:
    assert mrkdwn_to_text(raw, DIRECTORY) == shown


def test_escaped_user_text_is_not_taken_for_a_mention() -> None:
    # Builders escape "<@U1>" typed by a user as "&lt;@U1&gt;": it must read back literally.
    assert mrkdwn_to_text("name: &lt;@UALICE&gt;", DIRECTORY) == "name: <@UALICE>"


# -- blocks ---------------------------------------------------------------------------------------------------


def test_header_section_fields_context_divider_image() -> None:
    r = renderer()
    lines = r.blocks([
        {"type": "header", "text": plain("Gate balance")},
        {"type": "section", "text": md("*Order #1* for <@UBOB>\nsecond line")},
        {"type": "section", "fields": [md("*Status*\npending"), md("*Cost*\nUSD 20.00"), md("*Alone*")]},
        {"type": "context", "elements": [md("Created <!date^1^x|2026-11-24 09:00 UTC>"),
                                         {"type": "image", "image_url": "https://i/x.png", "alt_text": "logo"}]},
        {"type": "divider"},
        {"type": "image", "image_url": "https://i/y.png", "alt_text": "chart", "title": plain("Spend")},
    ], ("message", "COPS", "1.0"))
    assert texts(lines) == [
        "== Gate balance ==",
        "*Order #1* for @bob",
        "second line",
        "*Status*: pending",
        "*Cost*: USD 20.00",
        "*Alone*",
        "Created 2026-11-24 09:00 UTC  ·  [logo]",
        "─" * 24,
        "[image: chart] Spend",
    ]
    assert [line.style for line in lines][:1] == ["header"]
    assert lines[6].style == "context"


def test_buttons_are_numbered_in_order_and_url_buttons_marked() -> None:
    r = renderer()
    lines = r.blocks([{"type": "actions", "block_id": "b1", "elements": [
        button("Acknowledge", "alert_ack", "balance:USD", style="primary"),
        button("Snooze 1h", "alert_snooze_1h", "balance:USD"),
        button("Open gatebot", "alert_link", "balance:USD", url="https://slack.example/app"),
    ]}], ("message", "COPS", "1.0"))
    assert texts(lines) == ["[1] Acknowledge  [2] Snooze 1h  [3] Open gatebot ↗"]
    ref = r.actions.get(2)
    assert ref is not None
    assert (ref.target, ref.block_id, ref.action_id, ref.value, ref.type) == (
        ("message", "COPS", "1.0"), "b1", "alert_snooze_1h", "balance:USD", "button")
    link = r.actions.get(3)
    assert link is not None and link.url == "https://slack.example/app"


def test_numbers_are_unique_across_the_screen() -> None:
    r = renderer()
    first = r.blocks([{"type": "actions", "elements": [button("Refresh", "r", "1"), button("View", "v", "1")]}],
                     ("message", "COPS", "1.0"))
    second = r.blocks([{"type": "actions", "elements": [button("Refresh", "r", "2")]}], ("message", "COPS", "2.0"))
    assert texts(first) == ["[1] Refresh  [2] View"]
    assert texts(second) == ["[3] Refresh"]
    assert len(r.actions) == 3
    # A label finds the newest button with it; `accept` skips the ones no longer on screen.
    newest = r.actions.find("refresh")
    assert newest is not None and newest.number == 3
    older = r.actions.find("Refresh", accept=lambda ref: ref.target[2] == "1.0")
    assert older is not None and older.number == 1
    assert r.actions.find("vi") is not None  # a prefix of a label
    assert r.actions.find("nothing like it") is None


def test_section_accessory_and_menus() -> None:
    r = renderer()
    lines = r.blocks([
        {"type": "section", "text": md("Pick one"), "accessory": {
            "type": "static_select", "action_id": "pick", "placeholder": plain("Choose"),
            "options": [{"text": plain("One"), "value": "1"}, {"text": plain("Two"), "value": "2"}]}},
        {"type": "section", "text": md("More"), "accessory": {
            "type": "overflow", "action_id": "more",
            "options": [{"text": plain("Edit"), "value": "e"}, {"text": plain("Delete"), "value": "d"}]}},
        {"type": "section", "text": md("Logo"), "accessory": {"type": "image", "image_url": "u", "alt_text": "a logo"}},
    ], ("message", "COPS", "1.0"))
    assert texts(lines) == [
        "Pick one   [1] ▾ Choose (One / Two)",
        "More   [2] ⋯ Edit / Delete",
        "Logo",
        "[image: a logo]",
    ]
    menu = r.actions.get(1)
    assert menu is not None and [o["value"] for o in menu.options] == ["1", "2"]


def test_unknown_blocks_and_read_only_inputs_still_show() -> None:
    lines = renderer().blocks([
        {"type": "video", "title": plain("x")},
        {"type": "input", "label": plain("Amount"), "element": {"type": "number_input", "action_id": "a"}},
        {"type": "rich_text", "elements": [{"type": "rich_text_section", "elements": [
            {"type": "text", "text": "hi "}, {"type": "user", "user_id": "UBOB"}]}]},
    ], ("message", "COPS", "1.0"))
    assert texts(lines) == ["[video block]", "Amount: <number_input>", "hi @bob"]


# -- messages, edits, threads, DMs, ephemerals -------------------------------------------------------------------------


def test_message_with_its_thread_replies_indented_under_it() -> None:
    r = renderer()
    parent = bot_message([{"type": "section", "text": md("*Order #1* · pending")},
                          {"type": "actions", "elements": [button("Refresh", "order_refresh", "1")]}],
                         text="Order #1: pending")
    reply = bot_message([{"type": "context", "elements": [md("`submitting` → `pending`")]}], ts="100.000002",
                        thread_ts="100.000001")
    plain_reply = Message(channel="COPS", ts="100.000003", text="thanks <@UBOT>!", user="UBOB",
                          thread_ts="100.000001")
    assert texts(r.message(parent, replies=[reply, plain_reply])) == [
        "#gate-ops · gatebot",
        "  *Order #1* · pending",
        "  [1] Refresh",
        "  ↳ gatebot: `submitting` → `pending`",
        "  ↳ bob: thanks @gatebot!",
    ]


def test_a_reply_whose_parent_is_not_on_screen_names_its_thread() -> None:
    parent = bot_message(None, text="*Order #1* (Steam): pending")
    reply = bot_message(None, text="pending → completed", ts="100.000002", thread_ts="100.000001")
    assert texts(renderer().reply(reply, parent)) == [
        "#gate-ops · thread of “*Order #1* (Steam): pending”",
        "  ↳ gatebot: pending → completed",
    ]


def test_an_edit_replaces_the_earlier_rendering_with_new_numbers() -> None:
    r = renderer()
    message = bot_message([{"type": "actions", "elements": [button("Acknowledge", "ack", "k")]}])
    r.message(message)
    message.blocks = [{"type": "section", "text": md("Acknowledged by <@UBOB>")},
                      {"type": "actions", "elements": [button("Snooze 1h", "snooze", "k")]}]
    assert texts(r.edited(message)) == [
        "✎ edited #gate-ops message",
        "#gate-ops · gatebot",
        "  Acknowledged by @bob",
        "  [2] Snooze 1h",
    ]


def test_dms_and_deleted_messages() -> None:
    r = renderer()
    dm = Message(channel="D1", ts="1.0", text="Your code: `ABCD-EFGH`", user="UBOT", bot_id="B1")
    assert texts(r.message(dm, dm_user="UALICE")) == ["[DM to @alice] · gatebot", "  Your code: `ABCD-EFGH`"]
    gone = bot_message(None, text="Order #3: failed\nmore")
    assert texts(r.deleted(gone)) == ["✗ deleted #gate-ops message “Order #3: failed”"]


def test_ephemerals_say_who_sees_them() -> None:
    mine = Ephemeral(channel="COPS", user="UALICE", ts="1.0", text="only for alice",
                     blocks=[{"type": "actions", "elements": [button("Show code", "show", "1")]}])
    theirs = Ephemeral(channel="CFIN", user="UBOB", ts="2.0", text="_for bob_")
    r = renderer(viewer="UALICE")
    assert texts(r.ephemeral(mine)) == ["[only you] #gate-ops", "  [1] Show code"]
    assert texts(r.ephemeral(theirs, edited=True)) == ["[only @bob] #finance (replaced)", "  _for bob_"]
    ref = r.actions.get(1)
    assert ref is not None and ref.ephemeral is mine and ref.target == ("ephemeral", "COPS", "1.0")


def test_app_home() -> None:
    home = View(id="V1", user="UALICE", type="home", hash="h",
                blocks=[{"type": "header", "text": plain("gatebot")},
                        {"type": "actions", "elements": [button("New order", "home_new_order")]}])
    r = renderer()
    assert texts(r.home(home)) == ["[App Home of @alice]", "  == gatebot ==", "  [1] New order"]
    ref = r.actions.get(1)
    assert ref is not None and ref.target == ("view", "V1", "")


def test_plain_lines_joins_a_transcript() -> None:
    assert plain_lines([Line("a"), Line("b", "meta")]) == "a\nb"
