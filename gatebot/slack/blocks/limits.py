"""Slack's Block Kit limits, checked on plain-dict payloads before they are sent.

Dict-built blocks are not validated by slack-sdk, and Slack answers an over-limit payload with a bare
``invalid_blocks`` — so tests run every builder through :func:`check_message`, :func:`check_view` or
:func:`check_options`, which raise :class:`LimitError` naming the offending element by its path
(``blocks[3].fields[10]``). Unknown block or element types are errors too: a new one must get its
rules here first. Pure functions: must not import slack_bolt/slack_sdk or anything else in gatebot.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any, NoReturn

__all__ = ["LimitError", "check_blocks", "check_message", "check_options", "check_view"]

MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_FALLBACK_TEXT = 4000
MAX_PRIVATE_METADATA = 3000
MAX_ID = 255
MAX_VIEW_TITLE = 24
MAX_SECTION_TEXT = 3000
MAX_FIELDS = 10
MAX_FIELD_TEXT = 2000
MAX_HEADER = 150
MAX_CONTEXT_ELEMENTS = 10
MAX_ACTIONS_ELEMENTS = 25
#: Files one ``file_input`` takes (Slack: 1 to 10).
MAX_FILES = 10
MAX_BUTTON_TEXT = 75
MAX_BUTTON_VALUE = 2000
MAX_URL = 3000
MAX_OPTION_TEXT = 75
MAX_OPTION_VALUE = 150
MAX_OPTION_DESCRIPTION = 75
MAX_OPTIONS = 100
MAX_CHECKBOX_OPTIONS = 10
MAX_OVERFLOW_OPTIONS = 5
MAX_PLACEHOLDER = 150
MAX_LABEL = 2000
MAX_HINT = 2000
MAX_INPUT_LENGTH = 3000
MAX_ALT_TEXT = 2000


class LimitError(ValueError):
    """A payload Slack would refuse. ``path`` points at the element, ``problem`` says what is wrong."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


def _fail(path: str, problem: str) -> NoReturn:
    raise LimitError(path, problem)


def _obj(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        _fail(path, f"expected an object, got {type(value).__name__}")
    return value


def _list(value: Any, path: str, *, max_items: int, min_items: int = 0) -> Sequence[Any]:
    if not isinstance(value, list):
        _fail(path, f"expected a list, got {type(value).__name__}")
    if len(value) > max_items:
        _fail(path, f"{len(value)} items, at most {max_items} allowed")
    if len(value) < min_items:
        _fail(path, f"{len(value)} items, at least {min_items} needed")
    return value


def _string(value: Any, path: str, max_len: int, *, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        _fail(path, f"expected a string, got {type(value).__name__}")
    if not allow_empty and not value.strip():
        _fail(path, "must not be empty")
    if len(value) > max_len:
        _fail(path, f"{len(value)} characters, at most {max_len} allowed")
    return value


def _text(value: Any, path: str, max_len: int, *, plain_only: bool = False) -> None:
    obj = _obj(value, path)
    kind = obj.get("type")
    if kind not in ("plain_text", "mrkdwn"):
        _fail(f"{path}.type", f"text type must be plain_text or mrkdwn, got {kind!r}")
    if plain_only and kind != "plain_text":
        _fail(f"{path}.type", "must be plain_text")
    if "emoji" in obj and (kind != "plain_text" or not isinstance(obj["emoji"], bool)):
        _fail(f"{path}.emoji", "emoji is a bool on plain_text only")
    if "verbatim" in obj and (kind != "mrkdwn" or not isinstance(obj["verbatim"], bool)):
        _fail(f"{path}.verbatim", "verbatim is a bool on mrkdwn only")
    _string(obj.get("text"), f"{path}.text", max_len)


def _optional_id(obj: Mapping[str, Any], key: str, path: str) -> None:
    if key in obj:
        _string(obj[key], f"{path}.{key}", MAX_ID)


def _url(value: Any, path: str) -> None:
    url = _string(value, path, MAX_URL)
    if not url.startswith(("https://", "http://", "mailto:", "slack://")):
        _fail(path, "not a URL Slack accepts")


def _number_string(value: Any, path: str) -> Decimal:
    text = _string(value, path, 50)
    try:
        number = Decimal(text)
    except InvalidOperation:
        number = Decimal("NaN")
    if not number.is_finite():
        _fail(path, f"{text!r} is not a number")
    return number


# -- composition objects ------------------------------------------------------------------------------------


def _option(value: Any, path: str, *, plain_only: bool = True) -> str:
    obj = _obj(value, path)
    _text(obj.get("text"), f"{path}.text", MAX_OPTION_TEXT, plain_only=plain_only)
    opt_value = _string(obj.get("value"), f"{path}.value", MAX_OPTION_VALUE)
    if "description" in obj:
        _text(obj["description"], f"{path}.description", MAX_OPTION_DESCRIPTION, plain_only=plain_only)
    if "url" in obj:
        _url(obj["url"], f"{path}.url")
    return opt_value


def _options(obj: Mapping[str, Any], path: str, *, max_items: int = MAX_OPTIONS, min_items: int = 1,
             plain_only: bool = True, groups: bool = True) -> set[str]:
    """Check ``options`` / ``option_groups``; return the option values."""
    values: set[str] = set()
    if "options" in obj:
        for i, option in enumerate(_list(obj["options"], f"{path}.options", max_items=max_items,
                                         min_items=min_items)):
            values.add(_option(option, f"{path}.options[{i}]", plain_only=plain_only))
    elif groups and "option_groups" in obj:
        for g, group in enumerate(_list(obj["option_groups"], f"{path}.option_groups", max_items=MAX_OPTIONS,
                                        min_items=1)):
            gpath = f"{path}.option_groups[{g}]"
            group = _obj(group, gpath)
            _text(group.get("label"), f"{gpath}.label", MAX_OPTION_TEXT, plain_only=True)
            for i, option in enumerate(_list(group.get("options"), f"{gpath}.options", max_items=MAX_OPTIONS,
                                             min_items=1)):
                values.add(_option(option, f"{gpath}.options[{i}]"))
    return values


def _confirm(value: Any, path: str) -> None:
    obj = _obj(value, path)
    _text(obj.get("title"), f"{path}.title", 100, plain_only=True)
    _text(obj.get("text"), f"{path}.text", 300)
    _text(obj.get("confirm"), f"{path}.confirm", 30, plain_only=True)
    _text(obj.get("deny"), f"{path}.deny", 30, plain_only=True)


# -- elements ------------------------------------------------------------------------------------------

_SELECTS = {"static_select", "external_select", "users_select", "conversations_select", "channels_select",
            "multi_static_select", "multi_external_select", "multi_users_select",
            "multi_conversations_select", "multi_channels_select"}
_TEXT_INPUTS = {"plain_text_input", "email_text_input", "url_text_input"}
_PICKERS = {"datepicker", "timepicker", "datetimepicker"}


def _element(value: Any, path: str) -> Mapping[str, Any]:
    el = _obj(value, path)
    kind = el.get("type")
    _optional_id(el, "action_id", path)
    if "placeholder" in el:
        _text(el["placeholder"], f"{path}.placeholder", MAX_PLACEHOLDER, plain_only=True)
    if "confirm" in el:
        _confirm(el["confirm"], f"{path}.confirm")
    if kind == "button":
        _text(el.get("text"), f"{path}.text", MAX_BUTTON_TEXT, plain_only=True)
        if "value" in el:
            _string(el["value"], f"{path}.value", MAX_BUTTON_VALUE)
        if "url" in el:
            _url(el["url"], f"{path}.url")
        if el.get("style", "primary") not in ("primary", "danger"):
            _fail(f"{path}.style", "style must be primary or danger")
    elif kind in _SELECTS:
        if kind in ("static_select", "multi_static_select"):
            values = _options(el, path)
            if "options" not in el and "option_groups" not in el:
                _fail(path, "a static select needs options or option_groups")
            for key in ("initial_option",):
                if key in el and _option(el[key], f"{path}.{key}") not in values:
                    _fail(f"{path}.{key}", "initial_option is not one of the options")
        elif "initial_option" in el:
            _option(el["initial_option"], f"{path}.initial_option")
        min_query = el.get("min_query_length", 0)
        if isinstance(min_query, bool) or not isinstance(min_query, int) or min_query < 0:
            _fail(f"{path}.min_query_length", "must be a non-negative int")
    elif kind == "overflow":
        _options(el, path, max_items=MAX_OVERFLOW_OPTIONS, groups=False)
    elif kind in ("checkboxes", "radio_buttons"):
        values = _options(el, path, max_items=MAX_CHECKBOX_OPTIONS, plain_only=False, groups=False)
        initial = el.get("initial_options", []) if kind == "checkboxes" else (
            [el["initial_option"]] if "initial_option" in el else [])
        for i, option in enumerate(_list(initial, f"{path}.initial_options", max_items=MAX_CHECKBOX_OPTIONS)):
            if _option(option, f"{path}.initial_options[{i}]", plain_only=False) not in values:
                _fail(f"{path}.initial_options[{i}]", "not one of the options")
    elif kind in _TEXT_INPUTS:
        lo, hi = el.get("min_length", 0), el.get("max_length", MAX_INPUT_LENGTH)
        if not (isinstance(lo, int) and isinstance(hi, int) and 0 <= lo <= hi <= MAX_INPUT_LENGTH and hi):
            _fail(path, f"min_length/max_length must satisfy 0 <= {lo} <= {hi} <= {MAX_INPUT_LENGTH}")
        if "initial_value" in el:
            _string(el["initial_value"], f"{path}.initial_value", hi, allow_empty=True)
    elif kind == "number_input":
        if not isinstance(el.get("is_decimal_allowed"), bool):
            _fail(f"{path}.is_decimal_allowed", "number_input needs is_decimal_allowed (a bool)")
        bounds = {k: _number_string(el[k], f"{path}.{k}") for k in ("min_value", "max_value", "initial_value")
                  if k in el}
        if "min_value" in bounds and "max_value" in bounds and bounds["min_value"] > bounds["max_value"]:
            _fail(path, "min_value is above max_value")
        for key, number in bounds.items():
            if not el["is_decimal_allowed"] and number != number.to_integral_value():
                _fail(f"{path}.{key}", "a decimal where is_decimal_allowed is false")
    elif kind == "image":
        _url(el.get("image_url"), f"{path}.image_url")
        _string(el.get("alt_text"), f"{path}.alt_text", MAX_ALT_TEXT)
    elif kind in _PICKERS:
        pass
    elif kind == "file_input":  # input blocks of modals only; Slack uploads the file before submission
        most = el.get("max_files", MAX_FILES)
        if isinstance(most, bool) or not isinstance(most, int) or not 1 <= most <= MAX_FILES:
            _fail(f"{path}.max_files", f"max_files must be 1 to {MAX_FILES}")
        for i, kind_ in enumerate(_list(el.get("filetypes", []), f"{path}.filetypes", max_items=100)):
            _string(kind_, f"{path}.filetypes[{i}]", 30)
    else:
        _fail(f"{path}.type", f"unknown element type {kind!r}")
    return el


# -- blocks --------------------------------------------------------------------------------------------


def _block(value: Any, path: str) -> None:
    block = _obj(value, path)
    kind = block.get("type")
    if kind == "section":
        if "text" not in block and "fields" not in block:
            _fail(path, "a section needs text or fields")
        if "text" in block:
            _text(block["text"], f"{path}.text", MAX_SECTION_TEXT)
        if "fields" in block:
            fields = _list(block["fields"], f"{path}.fields", max_items=MAX_FIELDS, min_items=1)
            for i, item in enumerate(fields):
                _text(item, f"{path}.fields[{i}]", MAX_FIELD_TEXT)
        if "accessory" in block:
            _element(block["accessory"], f"{path}.accessory")
    elif kind == "header":
        _text(block.get("text"), f"{path}.text", MAX_HEADER, plain_only=True)
    elif kind == "context":
        elements = _list(block.get("elements"), f"{path}.elements", max_items=MAX_CONTEXT_ELEMENTS,
                         min_items=1)
        for i, item in enumerate(elements):
            ipath = f"{path}.elements[{i}]"
            if _obj(item, ipath).get("type") == "image":
                _element(item, ipath)
            else:
                _text(item, ipath, MAX_SECTION_TEXT)
    elif kind == "actions":
        seen: set[str] = set()
        elements = _list(block.get("elements"), f"{path}.elements", max_items=MAX_ACTIONS_ELEMENTS,
                         min_items=1)
        for i, item in enumerate(elements):
            el = _element(item, f"{path}.elements[{i}]")
            action_id = el.get("action_id")
            if action_id is not None and action_id in seen:
                _fail(f"{path}.elements[{i}].action_id", f"duplicate action_id {action_id!r} in one block")
            if action_id is not None:
                seen.add(action_id)
    elif kind == "input":
        _text(block.get("label"), f"{path}.label", MAX_LABEL, plain_only=True)
        if "hint" in block:
            _text(block["hint"], f"{path}.hint", MAX_HINT, plain_only=True)
        for key in ("optional", "dispatch_action"):
            if key in block and not isinstance(block[key], bool):
                _fail(f"{path}.{key}", "must be a bool")
        el = _element(block.get("element"), f"{path}.element")
        if el.get("type") in ("button", "overflow", "image"):
            _fail(f"{path}.element.type", f"{el.get('type')} is not an input element")
    elif kind == "divider":
        pass
    elif kind == "image":
        _url(block.get("image_url"), f"{path}.image_url")
        _string(block.get("alt_text"), f"{path}.alt_text", MAX_ALT_TEXT)
        if "title" in block:
            _text(block["title"], f"{path}.title", 2000, plain_only=True)
    else:
        _fail(f"{path}.type", f"unknown block type {kind!r}")


def check_blocks(blocks: Any, *, max_blocks: int, path: str = "blocks") -> None:
    """Every block's limits, plus the block count and unique ``block_id``\\ s."""
    seen: set[str] = set()
    for i, block in enumerate(_list(blocks, path, max_items=max_blocks)):
        bpath = f"{path}[{i}]"
        _block(block, bpath)
        block_id = block.get("block_id")
        if block_id is not None:
            _string(block_id, f"{bpath}.block_id", MAX_ID)
            if block_id in seen:
                _fail(f"{bpath}.block_id", f"duplicate block_id {block_id!r}")
            seen.add(block_id)


def check_message(msg: Mapping[str, Any]) -> None:
    """A ``chat.postMessage`` / ``chat.update`` / ephemeral payload: fallback ``text`` and ≤ 50 blocks."""
    msg = _obj(msg, "message")
    _string(msg.get("text"), "text", MAX_FALLBACK_TEXT)
    check_blocks(msg.get("blocks", []), max_blocks=MAX_MESSAGE_BLOCKS)


def check_view(view: Mapping[str, Any]) -> None:
    """A modal or Home tab: ≤ 100 blocks, title/submit/close ≤ 24, private_metadata ≤ 3000."""
    view = _obj(view, "view")
    kind = view.get("type")
    if kind not in ("modal", "home"):
        _fail("type", f"view type must be modal or home, got {kind!r}")
    if kind == "modal":
        _text(view.get("title"), "title", MAX_VIEW_TITLE, plain_only=True)
        has_input = any(isinstance(b, Mapping) and b.get("type") == "input" for b in view.get("blocks", []))
        if has_input and "submit" not in view:
            _fail("submit", "a modal with input blocks needs a submit button")
    for key in ("submit", "close"):
        if key in view:
            if kind != "modal":
                _fail(key, f"{key} is for modals only")
            _text(view[key], key, MAX_VIEW_TITLE, plain_only=True)
    if "private_metadata" in view:
        _string(view["private_metadata"], "private_metadata", MAX_PRIVATE_METADATA, allow_empty=True)
    for key in ("callback_id", "external_id"):
        _optional_id(view, key, "view")
    check_blocks(view.get("blocks"), max_blocks=MAX_VIEW_BLOCKS)


def check_options(resp: Mapping[str, Any]) -> None:
    """An options-load answer: ``{"options": [...]}`` (≤ 100) or ``{"option_groups": [...]}``."""
    resp = _obj(resp, "response")
    if "options" not in resp and "option_groups" not in resp:
        _fail("response", "needs options or option_groups")
    _options(resp, "response", min_items=0)
