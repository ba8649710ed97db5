"""Logging for every gatebot process, and the redaction that keeps secrets out of every log line.

What lives here: :func:`configure_logging` (the one place a process sets up logging: ``gatebot`` commands,
the demo), :class:`RedactingFilter` (installed on the handlers, so it sees the records of every library —
``slack_sdk``'s request logging, Bolt's response logging, httpx — not only gatebot's own) and the secret
registry the core feeds as it learns secrets (:func:`remember_secrets`, :func:`remember_content`).

The rule "never in a log" holds at every level, DEBUG included. Two nets, both applied to the fully
formatted message, the exception text and the stack text of each record, which is then frozen
(``msg`` = the redacted text, ``args`` = ``()``):

* **values**: every secret the process knows — settings secrets (tokens, signing secret, Gate key,
  encryption key), voucher codes and PINs from Gate's ``order_content``, customer-account values —
  wherever they appear, quoted, escaped or in prose ("*Code:* `AB12-…`").
* **shapes**: Slack tokens (``xoxb-``, ``xapp-`` …), ``Authorization``/``Bearer`` headers, and the values
  of known secret keys in JSON, Python reprs and forms (``"pin": "1234"``, ``'code': 'X'``, ``token=…``),
  including the account field names of ``GATEBOT_ACCOUNT_FIELDS``; ``order_content`` and
  ``customer_account`` objects are replaced whole.

The formatter is chosen by name (``fmt``): ``text`` (a line for a person at a terminal) or ``json``
(``GATEBOT_LOG_FORMAT=json``: one JSON object per line — ``time`` in UTC ISO 8601, ``level``, ``logger``,
``message``, the context fields of :mod:`gatebot.logcontext` in force, ``exc_info``), written by
python-json-logger. The redaction runs before either formatter, so both carry the same text.

A one-word value (a code, a 4-digit PIN) is matched as a whole word, so
a PIN does not blank out part of a timestamp; values under 4 characters are not registered at all (too
ambiguous; the shapes still catch them under a secret key).

Must not import Slack, the scheduler, the store or the sandbox.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, TextIO

from pythonjsonlogger.json import JsonFormatter

from gatebot.logcontext import ContextFilter

if TYPE_CHECKING:
    from gatebot.config import Settings

__all__ = [
    "MASK",
    "LogFormat",
    "RedactingFilter",
    "configure_logging",
    "redact",
    "remember_content",
    "remember_secret_keys",
    "remember_secrets",
]

MASK = "***"

LogFormat = Literal["text", "json"]

#: Line formats by name; ``prefix`` (e.g. ``"gatebot demo: "``) goes in front.
_FORMATS: dict[str, str] = {"text": "%(levelname)s %(name)s: %(message)s", "json": ""}

#: Keys whose values are secret wherever they appear (JSON, reprs, forms). Lower case.
DEFAULT_SECRET_KEYS = frozenset({
    "code", "voucher_code", "pin", "serial", "serial_number", "card_number", "activation_code", "redeem_code",
    "token", "access_token", "refresh_token", "bot_token", "app_token", "api_key", "apikey", "x-api-key",
    "password", "passwd", "secret", "client_secret", "signing_secret", "encryption_key",
})
#: Keys whose whole value (an object) is secret.
_BLOB_KEYS = ("order_content", "customer_account")

_MIN_LENGTH = 4  # shorter values are not registered
_MAX_LENGTH = 256  # nor longer ones (prose around a code, not a code; its parts are registered one by one)
_MAX_VALUES = 50_000  # the most recent values are kept (a store read registers a value again)
#: A value that is one word: starts and ends with a letter or digit, with ``_ . @ + -`` inside.
_WORD = re.compile(r"[^\W_](?:[\w.@+-]*[^\W_])?")
#: Words in a log line; an escape such as ``\n`` in a repr/JSON before a word is not part of it.
_WORD_IN_TEXT = re.compile(r"(\\[nrt])?([^\W_](?:[\w.@+-]*[^\W_])?)")

_SLACK_TOKEN = re.compile(r"\b(xox[abcdeoprs]|xapp)-[0-9A-Za-z-]+")
_BEARER = re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]+")
_AUTH_QUOTED = re.compile(r"""(?i)(authorization\\?["']?\s*[:=]\s*)(\\?["'])((?:\\.|[^\\])*?)\2""")
_AUTH_BARE = re.compile(r"""(?i)(authorization\s*[:=]\s*)(?!\\?["'])[^\s,;}]+""")


class _Registry:
    """The secret values and keys this process knows.

    Values that look like one word (codes, PINs, logins, emails: what :data:`_WORD` matches whole) live in
    a set and are found by splitting the text into words — no regular expression to rebuild when a new
    code arrives, and a cost that does not grow with the number of codes. Other values (with spaces,
    quotes, escapes) are few and go into one alternation, rebuilt when they change.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, None] = {}  # insertion-ordered set, for evicting the oldest
        self._words: set[str] = set()
        self._phrases: dict[str, None] = {}
        self._keys: set[str] = set(DEFAULT_SECRET_KEYS)
        self._phrases_re: re.Pattern[str] | None = None
        self._keys_re: tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str]] | None = None

    def add_values(self, values: Iterable[str], *, anywhere: bool = False) -> None:
        fresh = [v for v in values if _MIN_LENGTH <= len(v) <= _MAX_LENGTH and v not in self._values]
        if not fresh:
            return
        with self._lock:
            for value in fresh:
                self._values[value] = None
                if not anywhere and _WORD.fullmatch(value):
                    self._words.add(value)
                else:
                    self._phrases[value] = None
                    self._phrases_re = None
            while len(self._values) > _MAX_VALUES:
                old = next(iter(self._values))
                del self._values[old]
                self._words.discard(old)
                if self._phrases.pop(old, 0) is None:
                    self._phrases_re = None

    def add_keys(self, keys: Iterable[str]) -> None:
        fresh = {k.strip().lower() for k in keys if k and k.strip()} - self._keys
        if fresh:
            with self._lock:
                self._keys |= fresh
                self._keys_re = None

    def redact_values(self, text: str) -> str:
        if self._phrases:
            pattern = self._phrases_re
            if pattern is None:
                with self._lock:
                    phrases = sorted(self._phrases, key=len, reverse=True)
                pattern = self._phrases_re = re.compile("|".join(map(re.escape, phrases)))
            text = pattern.sub(MASK, text)
        if self._words:
            words = self._words
            text = _WORD_IN_TEXT.sub(lambda m: (m.group(1) or "") + MASK if m.group(2) in words else m.group(0), text)
        return text

    def keys_re(self) -> tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str]]:
        patterns = self._keys_re
        if patterns is None:
            with self._lock:
                keys = "|".join(sorted(map(re.escape, self._keys), key=len, reverse=True))
            quoted = re.compile(rf"""(?i)(?P<head>(?P<kq>\\?["'])(?:{keys})(?P=kq)\s*:\s*(?P<vq>\\?["']))"""
                                rf"""(?:\\.|[^\\])*?(?P=vq)""")
            bare = re.compile(rf"""(?i)(\\?["'](?:{keys})\\?["']\s*:\s*)(?!\\?["'])[-+.\w@]+""")
            form = re.compile(rf"""(?i)(^|[&?\s,;('"{{])((?:{keys})=)[^&\s'",;)]+""")
            patterns = self._keys_re = (quoted, bare, form)
        return patterns

    def any_key_in(self, lowered: str) -> bool:
        return any(key in lowered for key in self._keys)


_REGISTRY = _Registry()


def _variants(value: str) -> list[str]:
    """The value as it may appear in a log line: raw, JSON-escaped, repr-escaped."""
    out = [value, json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1], repr(value)[1:-1]]
    return list(dict.fromkeys(v for v in out if v))


def remember_secrets(*values: object, anywhere: bool = False) -> None:
    """Never log these values again (strings and numbers; ``None``/booleans/blank are ignored).

    A one-word value is matched as a whole word; ``anywhere=True`` matches it inside other text too
    (credentials, which can sit inside a URL), at the price of a regular expression per value.
    """
    texts: list[str] = []
    for value in values:
        if value is None or isinstance(value, bool):
            continue
        if hasattr(value, "get_secret_value"):  # pydantic SecretStr
            value = value.get_secret_value()
        if isinstance(value, str | int | Decimal):
            text = str(value).strip()
            if text:
                texts.extend(_variants(text))
    _REGISTRY.add_values(texts, anywhere=anywhere)


def remember_content(content: Any, *, skip_plain_words: bool = False) -> None:
    """Never log any value inside ``content`` (Gate's ``order_content``, a customer account): every
    string and number at any depth.

    ``skip_plain_words`` leaves out values that are ordinary words (letters only, not all capitals, under
    16 characters: ``"delivered"``, ``"Steam"``), which free-form vendor content is full of and which
    would otherwise vanish from every later log line; codes have digits, symbols or capitals.
    """
    stack = [content]
    leaves: list[object] = []
    while stack:
        item = stack.pop()
        if isinstance(item, Mapping):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
        elif not (skip_plain_words and isinstance(item, str) and _is_plain_word(item)):
            leaves.append(item)
    remember_secrets(*leaves)


def _is_plain_word(text: str) -> bool:
    return text.isalpha() and not text.isupper() and len(text) < 16


def remember_secret_keys(*keys: str) -> None:
    """Treat the values of these keys (e.g. customer-account field names) as secret in every log line."""
    _REGISTRY.add_keys(keys)


def _mask_blobs(text: str) -> str:
    """Replace the whole value of ``order_content``/``customer_account`` keys (an object or a list)."""
    lowered = text.lower()
    if not any(key in lowered for key in _BLOB_KEYS):
        return text
    for key in _BLOB_KEYS:
        start = 0
        while True:
            at = text.lower().find(key, start)
            if at < 0:
                break
            colon = re.match(r"""\\?["']?\s*[:=]\s*""", text[at + len(key):])
            if colon is None:
                start = at + len(key)
                continue
            begin = at + len(key) + colon.end()
            end = _value_end(text, begin)
            if end > begin:
                text = text[:begin] + MASK + text[end:]
            start = begin + len(MASK)
    return text


def _value_end(text: str, begin: int) -> int:
    """Where the object/list (bracket-balanced, strings skipped) or scalar starting at ``begin`` ends."""
    if begin >= len(text):
        return begin
    if text[begin] not in "{[":
        match = re.match(r"""(\\?["'])(?:\\.|[^\\])*?\1|[^,}\]\s]+""", text[begin:])
        return begin + (match.end() if match else 0)
    depth, i, quote = 0, begin, ""
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return len(text)  # truncated: everything after the key is the blob


def redact(text: str) -> str:
    """``text`` with every known secret value and every secret-shaped value replaced by ``***``."""
    if not text:
        return text
    text = _REGISTRY.redact_values(text)
    # Each shape only when a cheap substring test says it may be there: this runs on every record.
    lowered = text.lower()
    if "xox" in lowered or "xapp-" in lowered:
        text = _SLACK_TOKEN.sub(lambda m: f"{m.group(1)}-{MASK}", text)
    if "bearer" in lowered:
        text = _BEARER.sub(rf"\1 {MASK}", text)
    if "authorization" in lowered:
        text = _AUTH_QUOTED.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}{m.group(2)}", text)
        text = _AUTH_BARE.sub(rf"\1{MASK}", text)
    if _REGISTRY.any_key_in(lowered):
        quoted, bare, form = _REGISTRY.keys_re()
        if ":" in text:
            text = quoted.sub(rf"\g<head>{MASK}\g<vq>", text)
            text = bare.sub(rf"\1{MASK}", text)
        if "=" in text:
            text = form.sub(rf"\1\2{MASK}", text)
    return _mask_blobs(text)


class RedactingFilter(logging.Filter):
    """Redacts each record once, completely: message with its arguments, exception and stack text.

    Installed on handlers (a handler's filters see every library's records, a logger's only its own).
    Never drops a record and never raises: a record it cannot format is replaced by a note saying so.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_gatebot_redacted", False):
            return True
        try:
            message = redact(record.getMessage())
        except Exception:  # a broken %-format in some library: do not let its arguments through
            message = f"(unformattable log message from {record.name}, dropped)"
        record.msg, record.args = message, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        setattr(record, "_gatebot_redacted", True)  # noqa: B010  (a LogRecord attribute of ours)
        return True


_ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None] | tuple[None, None, None]


class JsonLinesFormatter(JsonFormatter):
    """One JSON object per record: time, level, logger, message, context fields, exception text."""

    def add_fields(self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]) -> None:
        log_data["time"] = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        log_data["level"] = record.levelname
        log_data["logger"] = record.name
        log_data["message"] = record.getMessage()
        log_data.update(getattr(record, "gatebot_context", None) or {})
        log_data.update(message_dict)  # exc_info / stack_info

    def formatException(self, ei: _ExcInfo) -> str:
        text = super().formatException(ei)  # the filter redacted exc_text; this one is fresh
        return redact(text if isinstance(text, str) else "\n".join(text))


def formatter(fmt: LogFormat = "text", *, prefix: str = "") -> logging.Formatter:
    """The formatter called ``fmt`` (``text`` with ``prefix`` in front, or ``json``)."""
    if fmt not in _FORMATS:
        raise ValueError(f"unknown log format {fmt!r}; expected one of {', '.join(_FORMATS)}")
    if fmt == "json":
        return JsonLinesFormatter()
    return logging.Formatter(prefix.replace("%", "%%") + _FORMATS[fmt])


def _remember_settings(settings: Settings) -> None:
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if hasattr(value, "get_secret_value"):
            secret = value.get_secret_value()
            remember_secrets(secret, *secret.split(","), anywhere=True)
    credentials = settings.database_url.split("://", 1)[-1].rpartition("@")[0]
    if ":" in credentials:
        remember_secrets(credentials.split(":", 1)[1], anywhere=True)
    remember_secret_keys(*(str(f.get("name", "")) for fields in settings.gatebot_account_fields.values()
                           for f in fields if isinstance(f, Mapping)))


def configure_logging(
    settings: Settings | None = None,
    *,
    level: int | str = logging.WARNING,
    fmt: LogFormat = "text",
    prefix: str = "",
    stream: TextIO | None = None,
    handler: logging.Handler | None = None,
    quiet: Mapping[str, int] | None = None,
) -> logging.Handler:
    """Set up the root logger for this process: one handler (``handler``, or a stream handler on
    ``stream``/stderr) with the redaction filter and the ``fmt`` formatter, at ``level``.

    Calling it again replaces the handler it installed before (not handlers others added, such as a
    test runner's). ``settings`` feeds the redaction its secrets (tokens, keys) and the account field
    names. ``quiet`` maps logger names to the level they are held at (noisy libraries). Returns the handler.
    """
    if settings is not None:
        _remember_settings(settings)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_gatebot_handler", False)]:
        root.removeHandler(old)
    if handler is None:
        handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
        handler.setFormatter(formatter(fmt, prefix=prefix))
    if not any(isinstance(f, RedactingFilter) for f in handler.filters):
        handler.addFilter(RedactingFilter())
    if not any(isinstance(f, ContextFilter) for f in handler.filters):
        handler.addFilter(ContextFilter())
    setattr(handler, "_gatebot_handler", True)  # noqa: B010  (marks the handler this function owns)
    root.addHandler(handler)
    root.setLevel(level)
    for name, held in {"alembic": logging.WARNING, **(quiet or {})}.items():
        logging.getLogger(name).setLevel(held)
    return handler
