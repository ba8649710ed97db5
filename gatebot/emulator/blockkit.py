"""Block Kit as Slack's servers and clients treat it: the checks behind ``invalid_blocks`` and
``invalid_arguments``, generated block/action ids, ``state.values`` of shown and updated blocks, and
what the client says about a ``number_input`` value.

The numeric limits are gatebot's own (:mod:`gatebot.slack.blocks.limits`, the one place they are
written down); the messages are shaped like Slack's (``[json-pointer:/blocks/0/text/text]``), as the
app sees them. Must not import slack_bolt, slack_sdk, the scheduler or any HTTP library.
"""

from __future__ import annotations

import base64
import copy
import hashlib
from collections.abc import Iterable, Iterator
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from gatebot.emulator.model import JSON, FoundAction
from gatebot.slack.blocks.limits import (
    MAX_ACTIONS_ELEMENTS,
    MAX_FIELDS,
    MAX_HEADER,
    MAX_ID,
    MAX_OPTION_TEXT,
    MAX_OPTION_VALUE,
    MAX_OPTIONS,
    MAX_PRIVATE_METADATA,
    MAX_SECTION_TEXT,
    MAX_VIEW_BLOCKS,
    MAX_VIEW_TITLE,
)

#: Element types that carry a value in ``state.values``, with the key that holds it and how an
#: untouched element with an ``initial_*`` field starts out.
STATE_KEYS: dict[str, tuple[str, str]] = {
    "plain_text_input": ("value", "initial_value"),
    "number_input": ("value", "initial_value"),
    "email_text_input": ("value", "initial_value"),
    "url_text_input": ("value", "initial_value"),
    "rich_text_input": ("rich_text_value", "initial_value"),
    "static_select": ("selected_option", "initial_option"),
    "external_select": ("selected_option", "initial_option"),
    "radio_buttons": ("selected_option", "initial_option"),
    "multi_static_select": ("selected_options", "initial_options"),
    "multi_external_select": ("selected_options", "initial_options"),
    "checkboxes": ("selected_options", "initial_options"),
    "users_select": ("selected_user", "initial_user"),
    "multi_users_select": ("selected_users", "initial_users"),
    "conversations_select": ("selected_conversation", "initial_conversation"),
    "multi_conversations_select": ("selected_conversations", "initial_conversations"),
    "channels_select": ("selected_channel", "initial_channel"),
    "multi_channels_select": ("selected_channels", "initial_channels"),
    "datepicker": ("selected_date", "initial_date"),
    "timepicker": ("selected_time", "initial_time"),
    "datetimepicker": ("selected_date_time", "initial_date_time"),
    "file_input": ("files", "initial_files"),  # never has initial files: Slack starts it empty
}
LIST_STATE_KEYS = frozenset(
    {"selected_options", "selected_users", "selected_conversations", "selected_channels", "files"}
)


def iter_elements(blocks: Iterable[JSON]) -> Iterator[tuple[JSON, JSON]]:
    """Every interactive element as ``(block, element)``: section accessories, actions elements and
    input elements, in display order."""
    for block in blocks:
        btype = block.get("type")
        if btype == "section" and isinstance(block.get("accessory"), dict):
            yield block, block["accessory"]
        elif btype == "actions":
            for element in block.get("elements") or []:
                if isinstance(element, dict):
                    yield block, element
        elif btype == "input" and isinstance(block.get("element"), dict):
            yield block, block["element"]


def find_actions(
    blocks: Iterable[JSON] | None, action_id: str, *, block_id: str | None = None
) -> list[FoundAction]:
    """All elements with ``action_id`` (optionally only in block ``block_id``)."""
    found = []
    for block, element in iter_elements(blocks or []):
        if element.get("action_id") == action_id and (block_id is None or block.get("block_id") == block_id):
            found.append(FoundAction(str(block.get("block_id", "")), block, element))
    return found


def find_action(
    blocks: Iterable[JSON] | None, action_id: str, *, block_id: str | None = None
) -> FoundAction | None:
    """The first element with ``action_id`` in ``blocks`` (a message's or view's), or ``None``."""
    found = find_actions(blocks, action_id, block_id=block_id)
    return found[0] if found else None


def _short_id(seed: str) -> str:
    digest = hashlib.sha256(seed.encode()).digest()
    return base64.b32encode(digest).decode()[:5]


def assign_ids(blocks: list[JSON], seed: str) -> list[JSON]:
    """A deep copy of ``blocks`` where, as Slack does, blocks without ``block_id`` and interactive
    elements without ``action_id`` get generated ones (different on every post/update, so — as in
    Slack — typed values survive ``views.update`` only when the app sets its own ids)."""
    result = copy.deepcopy(blocks)
    for index, block in enumerate(result):
        if isinstance(block, dict) and not block.get("block_id"):
            block["block_id"] = _short_id(f"{seed}:b{index}")
    for index, (_block, element) in enumerate(iter_elements(result)):
        if "action_id" not in element and element.get("type") not in (None, "image"):
            element["action_id"] = _short_id(f"{seed}:a{index}")
    return result


def _too_long(limit: int, pointer: str) -> str:
    return f"must be less than {limit + 1} characters [json-pointer:{pointer}]"


def _text_of(obj: Any) -> str:
    return str(obj.get("text", "")) if isinstance(obj, dict) else ""


def block_problems(blocks: Any, *, max_blocks: int) -> list[str]:
    """Block Kit rules Slack enforces server-side that dict-built blocks can break."""
    if not isinstance(blocks, list):
        return ["blocks must be an array"]
    problems: list[str] = []
    if len(blocks) > max_blocks:
        problems.append(f"no more than {max_blocks} items allowed [json-pointer:/blocks]")
    seen_blocks: set[str] = set()
    for index, block in enumerate(blocks):
        where = f"[json-pointer:/blocks/{index}]"
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            problems.append(f"missing required field: type {where}")
            continue
        bid = block.get("block_id")
        if bid is not None:
            if bid in seen_blocks:
                problems.append(f"duplicate block_id {bid!r} {where}")
            seen_blocks.add(bid)
        btype = block["type"]
        if btype == "section":
            if len(_text_of(block.get("text"))) > MAX_SECTION_TEXT:
                problems.append(_too_long(MAX_SECTION_TEXT, f"/blocks/{index}/text/text"))
            if len(block.get("fields") or []) > MAX_FIELDS:
                problems.append(f"no more than {MAX_FIELDS} items allowed [json-pointer:/blocks/{index}/fields]")
            if "text" not in block and "fields" not in block:
                problems.append(f"must provide text or fields {where}")
        elif btype == "header" and len(_text_of(block.get("text"))) > MAX_HEADER:
            problems.append(_too_long(MAX_HEADER, f"/blocks/{index}/text/text"))
        elif btype == "input" and not isinstance(block.get("element"), dict):
            problems.append(f"missing required field: element {where}")
        elif btype == "actions" and len(block.get("elements") or []) > MAX_ACTIONS_ELEMENTS:
            where_elements = f"[json-pointer:/blocks/{index}/elements]"
            problems.append(f"no more than {MAX_ACTIONS_ELEMENTS} items allowed {where_elements}")
        seen_actions: set[str] = set()
        for _block, element in iter_elements([block]):
            aid = element.get("action_id")
            if isinstance(aid, str):
                if aid in seen_actions:
                    problems.append(f"duplicate action_id {aid!r} {where}")
                seen_actions.add(aid)
            options = element.get("options")
            if isinstance(options, list):
                if len(options) > MAX_OPTIONS:
                    problems.append(f"no more than {MAX_OPTIONS} options allowed {where}")
                for option in options:
                    if len(_text_of(option.get("text"))) > MAX_OPTION_TEXT:
                        problems.append(f"option text must be less than {MAX_OPTION_TEXT + 1} characters {where}")
                    if len(str(option.get("value", ""))) > MAX_OPTION_VALUE:
                        problems.append(f"option value must be less than {MAX_OPTION_VALUE + 1} characters {where}")
    return problems


def initial_state(blocks: list[JSON]) -> dict[str, dict[str, JSON]]:
    """``state.values`` of freshly shown blocks: every stateful element at its ``initial_*`` value
    (``None``/``[]`` when it has none), as Slack reports untouched inputs."""
    state: dict[str, dict[str, JSON]] = {}
    for block, element in iter_elements(blocks):
        etype = element.get("type")
        aid = element.get("action_id")
        if not isinstance(etype, str) or etype not in STATE_KEYS or not isinstance(aid, str):
            continue
        key, initial = STATE_KEYS[etype]
        default: Any = [] if key in LIST_STATE_KEYS else None
        value = copy.deepcopy(element.get(initial, default))
        state.setdefault(str(block["block_id"]), {})[aid] = {"type": etype, key: value}
    return state


def carry_state(old: dict[str, dict[str, JSON]], blocks: list[JSON]) -> dict[str, dict[str, JSON]]:
    """State for updated ``blocks``: values of elements whose block_id, action_id and type are unchanged
    survive; everything else starts from its initial value."""
    state = initial_state(blocks)
    for block_id, actions in state.items():
        for action_id, value in actions.items():
            previous = old.get(block_id, {}).get(action_id)
            if previous is not None and previous.get("type") == value["type"]:
                actions[action_id] = previous
    return state


def _plain_len(obj: Any) -> int:
    return len(_text_of(obj))


def view_problems(view: Any, *, kind: Literal["modal", "home"]) -> list[str]:
    """What Slack's ``invalid_arguments`` would complain about in a view."""
    if not isinstance(view, dict):
        return ["view must be an object"]
    problems: list[str] = []
    if view.get("type") != kind:
        problems.append(f"type must be {kind!r} [json-pointer:/view/type]")
    blocks = view.get("blocks")
    if not isinstance(blocks, list):
        return [*problems, "missing required field: blocks [json-pointer:/view/blocks]"]
    problems += block_problems(blocks, max_blocks=MAX_VIEW_BLOCKS)
    if kind == "modal":
        if not isinstance(view.get("title"), dict):
            problems.append("missing required field: title [json-pointer:/view/title]")
        for name in ("title", "submit", "close"):
            if name in view and _plain_len(view[name]) > MAX_VIEW_TITLE:
                problems.append(_too_long(MAX_VIEW_TITLE, f"/view/{name}/text"))
        if any(b.get("type") == "input" for b in blocks if isinstance(b, dict)) and "submit" not in view:
            problems.append("submit is required when a view has input blocks [json-pointer:/view/submit]")
    if len(str(view.get("private_metadata", ""))) > MAX_PRIVATE_METADATA:
        problems.append(_too_long(MAX_PRIVATE_METADATA, "/view/private_metadata"))
    if len(str(view.get("callback_id", ""))) > MAX_ID:
        problems.append(_too_long(MAX_ID, "/view/callback_id"))
    return problems


def number_problem(element: JSON, value: str | None) -> str | None:
    """What Slack's client says about a ``number_input`` value before it lets a view be submitted."""
    if value is None or value == "":
        return None
    try:
        number = Decimal(value)
    except InvalidOperation:
        return "Enter a number."
    if not number.is_finite():
        return "Enter a number."
    if not element.get("is_decimal_allowed", False) and number != number.to_integral_value():
        return "Enter a whole number."
    low, high = element.get("min_value"), element.get("max_value")
    if low is not None and number < Decimal(str(low)):
        return f"Enter a number that's {low} or more."
    if high is not None and number > Decimal(str(high)):
        return f"Enter a number that's {high} or less."
    return None

