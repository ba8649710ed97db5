"""Free text people type, made safe before anything uses it: the one sanitiser every surface calls.

``/gate ...`` commands, the order form's product search (options loads), and the CLI's
``gatebot order``/``gatebot products`` arguments all pass what was typed through :func:`clean_text`.
It drops what no database or search should ever see — control characters (a NUL is a ``DataError`` on
PostgreSQL) and lone surrogates (not encodable as UTF-8) — turns tabs and newlines into spaces, and
caps the length, so a 20,000-word paste can neither build a huge SQL expression nor reach the store.

Must not import Slack, the scheduler or the store.
"""

from __future__ import annotations

import unicodedata

__all__ = ["MAX_QUERY", "MAX_REFERENCE", "InputTooLong", "clean_text"]

#: Longest product search accepted (longer is surely a paste accident).
MAX_QUERY = 100
#: Longest order reference accepted (external refs are at most 64; keys ``gbk_`` + 32 hex).
MAX_REFERENCE = 100

_SPACES = frozenset("\t\n\r\v\f\x1c\x1d\x1e\x1f\x85")


class InputTooLong(ValueError):
    """The text is longer than the limit; the message names what and the limit."""


def clean_text(text: str, *, limit: int, what: str = "That text", clip: bool = False) -> str:
    """``text`` without control characters or lone surrogates, stripped, at most ``limit`` characters.

    Tabs and line breaks become spaces; other control characters (NUL, DEL, C1) are dropped. Longer
    than ``limit`` raises :class:`InputTooLong` — or, with ``clip=True`` (where there is no way to show
    an error, e.g. a select's options load), is cut to ``limit``.
    """
    out = []
    for ch in text:
        if ch in _SPACES:
            out.append(" ")
        elif unicodedata.category(ch) not in ("Cc", "Cs"):
            out.append(ch)
    cleaned = "".join(out).strip()
    if len(cleaned) > limit:
        if not clip:
            raise InputTooLong(f"{what} is too long (at most {limit} characters).")
        cleaned = cleaned[:limit].rstrip()
    return cleaned
