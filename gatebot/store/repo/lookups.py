"""Finding the order a person means: by ``#number``, Gate id, external_ref or idempotency key.

Every condition is an index search (see migration 0003), so lookups stay fast on a million orders.

Must not import Slack, the scheduler, the Gate client or ``db``.
"""

from __future__ import annotations

import re
import uuid
from typing import Final, cast

from sqlalchemy import and_, func, or_
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, select

from gatebot.store.models import (
    Order,
)
from gatebot.store.repo._sql import like_escape as _like_escape
from gatebot.store.repo.orders import MAX_ORDER_NUMBER, MAX_REF_LENGTH
from gatebot.textinput import MAX_REFERENCE, clean_text

#: Shortest Gate-id prefix a lookup searches by (a receipt shows the first 8 characters).
MIN_GATE_PREFIX: Final = 8
#: Most orders a fuzzy lookup returns (the caller lists them and asks for a better reference).
MAX_LOOKUP_MATCHES: Final = 10

_NUMBER_RE = re.compile(r"#?\s*(\d{1,10})")


def normalize_ref(ref: str) -> str:
    """Strip whitespace and surrounding ``<...>``/backticks as pasted from Slack: `` `<#12>` `` -> ``#12``.

    Control characters (a NUL is a ``DataError`` on PostgreSQL) and lone surrogates are dropped first.
    """
    text = clean_text(ref, limit=MAX_REFERENCE, clip=True)
    while len(text) >= 2 and ((text[0] == "<" and text[-1] == ">") or (text[0] == "`" and text[-1] == "`")):
        text = text[1:-1].strip()
    return text


def _order_number(text: str) -> int | None:
    match = _NUMBER_RE.fullmatch(text)
    if match is None:
        return None
    number = int(match.group(1))
    return number if 1 <= number <= MAX_ORDER_NUMBER else None


def _ref_variants(text: str) -> list[str]:
    variants = [text]
    if 32 <= len(text) <= 45:  # a UUID in any spelling -> also its canonical lower-case form
        try:
            canonical = str(uuid.UUID(text))
        except ValueError:
            pass
        else:
            if canonical != text:
                variants.append(canonical)
    return variants


def find_order(s: Session, ref: str) -> Order | None:
    """The order a person means by ``ref``: ``#123``/``123`` (our number), Gate's order id, our
    ``external_ref`` or the idempotency key.

    Whitespace and surrounding ``<>``/backticks are stripped. Refs and keys match exactly
    (case-sensitive), except that a UUID also matches its canonical lower-case spelling. One indexed
    query; when a reference matches several orders the precedence is: our number, Gate id,
    external_ref, idempotency key (so a bare ``123`` means order #123 even if some order's
    external_ref is also ``123``; that order is still found by ``INV-...``-style refs).
    """
    text = normalize_ref(ref)
    if not text:
        return None
    number = _order_number(text)
    strings = [v for v in _ref_variants(text) if len(v) <= MAX_REF_LENGTH]
    conditions: list[ColumnElement[bool]] = []
    if number is not None:
        conditions.append(col(Order.id) == number)
    if strings:
        conditions += [
            col(Order.gate_order_id).in_(strings),
            col(Order.external_ref).in_(strings),
            col(Order.idempotency_key).in_(strings),
        ]
    if not conditions:
        return None
    matches = list(s.exec(select(Order).where(or_(*conditions))).all())
    if not matches:
        return None
    wanted = set(strings)

    def rank(order: Order) -> int:
        if number is not None and order.id == number:
            return 0
        if order.gate_order_id in wanted:
            return 1
        if order.external_ref in wanted:
            return 2
        return 3

    return min(matches, key=lambda order: (rank(order), order.id or 0))


def _starts_with(s: Session, column: ColumnElement[str | None], prefix: str) -> ColumnElement[bool]:
    """``column`` starts with ``prefix`` (``%`` and ``_`` in it are literal), answered from an index.

    PostgreSQL answers ``LIKE 'prefix%'`` from a ``varchar_pattern_ops`` index whatever its collation
    (migration 0003). SQLite's LIKE ignores case and so cannot use the column's index; the byte-wise
    range on it can, and the LIKE keeps the match exact.
    """
    like = column.like(_like_escape(prefix) + "%", escape="\\")
    if s.get_bind().dialect.name == "sqlite":
        return and_(column >= prefix, column < prefix + "\U0010ffff", like)
    return like


def find_orders(s: Session, ref: str, *, limit: int = MAX_LOOKUP_MATCHES) -> list[Order]:
    """The orders a person may mean by ``ref``, as typed or pasted: newest first, at most ``limit``.

    An exact match (:func:`find_order`'s rules) is the only answer when there is one. Otherwise: the
    external_ref without regard to case (``inv-1001`` finds ``INV-1001``; expression index on
    ``lower(external_ref)``), and Gate ids starting with ``ref`` (at least :data:`MIN_GATE_PREFIX`
    characters, as on a receipt). Several matches are all returned — the caller lists them rather than
    guess. Every condition is an index search, so this stays fast on a million orders.
    """
    exact = find_order(s, ref)
    if exact is not None:
        return [exact]
    text = normalize_ref(ref)
    if not text or len(text) > MAX_REF_LENGTH:
        return []
    conditions: list[ColumnElement[bool]] = [func.lower(col(Order.external_ref)) == text.lower()]
    if len(text) >= MIN_GATE_PREFIX:
        gate_id = cast("ColumnElement[str | None]", col(Order.gate_order_id))
        conditions += [_starts_with(s, gate_id, variant) for variant in dict.fromkeys((text, text.lower()))]
    statement = select(Order).where(or_(*conditions)).order_by(col(Order.id).desc()).limit(limit)
    return list(s.exec(statement).all())


def external_ref_exists(s: Session, ref: str) -> bool:
    return s.exec(select(Order.id).where(col(Order.external_ref) == ref).limit(1)).first() is not None
