"""What a Gate answer means: decoding it, reading it leniently, describing it when it is unreadable.

What lives here: JSON decoding (``parse_float=Decimal``), the lenient readers (bare array or
``{"items": [...]}`` envelope, ``{"order": {...}}`` / ``{"data": {...}}`` wrappers, paging fields
under several spellings, unknown fields ignored), mapping an error answer onto
:mod:`gatebot.gate.errors` (:func:`error_of`), and the ``on_call`` outcome of a status.

An unreadable answer is described (status, length, where parsing stopped, which field had the wrong
type), never quoted, masked or not: ``order_content`` is free-form, so no list of key names is enough.
Every ``order_content`` read here is handed to :mod:`gatebot.logs`, which keeps those values out of
every log line, whichever library writes it.

Pure functions of an answer: nothing here sends, sleeps or logs. Must not import the client, Slack,
the scheduler, the store or the sandbox.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, NoReturn, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from gatebot import logs
from gatebot.gate.errors import GateBadResponse, GateError, error_from_response
from gatebot.gate.models import Order, Page

__all__ = ["decode", "error_of", "outcome_of", "parse_list", "parse_object", "parse_page", "short"]

M = TypeVar("M", bound=BaseModel)

_SNIPPET_LENGTH = 80
_MESSAGE_LENGTH = 300
# Values that must not reach a log line or an exception, even from a body we could not parse.
_SENSITIVE_VALUE = re.compile(
    r'("(?:voucher_code|code|pin|serial|customer_account|api_key|authorization|password|secret|token)"\s*:\s*)'
    r'("(?:[^"\\]|\\.)*"?|\{[^{}]*\}?|[^,}\]\s]+)',
    re.IGNORECASE,
)


def outcome_of(status: int) -> str:
    """The ``on_call`` outcome of an HTTP status."""
    if status == 429:
        return "rate_limited"
    if status >= 500:
        return "server_error"
    return "rejected" if status >= 300 else "ok"


def short(text: str, limit: int = _SNIPPET_LENGTH) -> str:
    """One line, printable, at most ``limit`` characters, sensitive JSON values masked."""
    masked = _SENSITIVE_VALUE.sub(r'\1"***"', text)
    flat = " ".join("".join(ch if ch.isprintable() else " " for ch in masked).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def decode(response: httpx.Response, where: str) -> Any:
    text = response.text
    if not text.strip():
        raise GateBadResponse(f"{where}: HTTP {response.status_code} with an empty body",
                              status=response.status_code)
    try:
        return json.loads(text, parse_float=Decimal)
    except ValueError as exc:  # JSONDecodeError, and UnicodeDecodeError-ish surprises
        # Say what was wrong, never what was there: a body may hold order_content under any key.
        raise GateBadResponse(
            f"{where}: HTTP {response.status_code} body of {len(response.content)} bytes is not valid JSON "
            f"({_json_error(exc)})",
            status=response.status_code,
        ) from None


def _json_error(exc: ValueError) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at character {exc.pos}"
    return type(exc).__name__


def error_of(response: httpx.Response, retry_after: float | None) -> GateError:
    """The exception for an error answer; survives bodies that are not the documented shape."""
    code: str | None = None
    message: str | None = None
    try:
        body = json.loads(response.text, parse_float=Decimal)
    except ValueError:
        body = None
    if isinstance(body, dict):
        inner = body.get("error")
        source = inner if isinstance(inner, dict) else body
        if isinstance(source.get("code"), str):
            code = source["code"]
        if isinstance(source.get("message"), str):
            message = source["message"]
        elif isinstance(inner, str):
            message = inner
    text = short(message, _MESSAGE_LENGTH) if message else f"Gate API answered HTTP {response.status_code}"
    if response.status_code == 429 and retry_after is not None:
        text = f"{text} (retry after {retry_after:g} s)"
    return error_from_response(response.status_code, code, text, retry_after=retry_after)


#: Error types whose message is our own text (a validator's ``ValueError``), which may quote the input.
_OWN_MESSAGE_TYPES = frozenset({"value_error", "assertion_error"})


def _describe(exc: ValidationError, limit: int = 3) -> str:
    """Field locations and reasons only: pydantic's own text would quote the (maybe secret) input."""
    parts = []
    for err in exc.errors(include_input=False, include_url=False, include_context=False)[:limit]:
        loc = ".".join(str(part) for part in err["loc"]) or "(root)"
        reason = err["type"].replace("_", " ") if err["type"] in _OWN_MESSAGE_TYPES else err["msg"]
        parts.append(f"{loc}: {reason}")
    more = exc.error_count() - limit
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def _bad_shape(where: str, detail: str) -> NoReturn:
    raise GateBadResponse(f"{where}: unexpected response shape: {detail}")


def _items(data: Any, where: str) -> list[Any]:
    """A list from a bare array or an ``{"items": [...]}`` envelope."""
    if isinstance(data, list):
        return data
    if isinstance(data, dict) and isinstance(data.get("items"), list):
        return list(data["items"])
    _bad_shape(where, f"expected a list or {{\"items\": [...]}}, got {_kind(data)}")


def _kind(data: Any) -> str:
    if isinstance(data, dict):
        keys = ", ".join(sorted(str(k) for k in data)[:6])
        return f"an object with keys [{keys}]"
    return type(data).__name__


def _validate(model: type[M], item: Any, where: str, label: str) -> M:
    if not isinstance(item, dict):
        _bad_shape(where, f"{label} should be an object, got {_kind(item)}")
    try:
        parsed = model.model_validate(item)
    except ValidationError as exc:
        detail = _describe(exc)
    else:
        if isinstance(parsed, Order) and parsed.order_content:
            logs.remember_content(parsed.order_content, skip_plain_words=True)  # codes: never in a log line
        return parsed
    # Raised outside the except block: the ValidationError (which quotes the input) is not chained.
    _bad_shape(where, f"{label}: {detail}")


def parse_list(data: Any, model: type[M], where: str) -> list[M]:
    return [_validate(model, item, where, f"item {i}") for i, item in enumerate(_items(data, where))]


def parse_object(data: Any, model: type[M], where: str, *, wrapper: str) -> M:
    if isinstance(data, dict) and "id" not in data:
        inner = data.get(wrapper, data.get("data"))
        if isinstance(inner, dict):  # lenient: {"order": {...}} / {"data": {...}}
            data = inner
    return _validate(model, data, where, model.__name__)


def _int_field(data: Mapping[str, Any], names: tuple[str, ...], default: int | None) -> int | None:
    for name in names:
        value = data.get(name)
        if isinstance(value, bool):
            continue
        if isinstance(value, int):
            return value
        if isinstance(value, str | Decimal):
            try:
                return int(value)
            except (ValueError, ArithmeticError):
                continue
    return default


def parse_page(data: Any, model: type[M], page: int, page_size: int, where: str) -> Page[M]:
    items = parse_list(data, model, where)
    if isinstance(data, dict):
        got_page = _int_field(data, ("page",), page) or page
        got_size = _int_field(data, ("pageSize", "page_size"), page_size) or page_size
        total = _int_field(data, ("total", "total_count", "totalCount"), None)
    else:  # a bare array: only what we asked for is known
        got_page, got_size, total = page, page_size, None
    return Page(items=items, page=got_page, page_size=max(got_size, 1), total=total)
