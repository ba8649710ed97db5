"""What a log line is about: the request, the Slack user, the job, the order — carried in a context variable.

:func:`log_context` adds fields for the code inside its ``with`` block (and every task or worker thread
started from there: asyncio tasks copy the context when they are created, and
:meth:`gatebot.store.db.Database.run` carries it into the store's thread). :class:`ContextFilter` copies
the fields onto each record, where the JSON formatter (:mod:`gatebot.logs`) writes them as keys.

Only the :data:`FIELDS` below are kept: ids and references that say which request or order a line is
about, never a secret, an account value or a code. Must not import Slack, the scheduler or the store.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from types import MappingProxyType

__all__ = ["FIELDS", "ContextFilter", "current", "log_context"]

#: The context fields a record may carry, in the order a JSON line shows them.
FIELDS = ("request_id", "slack_user", "job", "order", "external_ref")

_MAX_VALUE = 80  # a reference or an id; longer text is not context
_EMPTY: Mapping[str, str] = MappingProxyType({})
_CONTEXT: ContextVar[Mapping[str, str]] = ContextVar("gatebot_log_context", default=_EMPTY)


def current() -> Mapping[str, str]:
    """The fields in force here."""
    return _CONTEXT.get()


@contextmanager
def log_context(**fields: object) -> Iterator[None]:
    """Add ``fields`` (names from :data:`FIELDS`; ``None`` values are skipped) for the block's duration."""
    unknown = set(fields) - set(FIELDS)
    if unknown:
        raise ValueError(f"unknown log context field(s): {', '.join(sorted(unknown))}")
    merged = dict(_CONTEXT.get())
    merged.update({name: str(value)[:_MAX_VALUE] for name, value in fields.items() if value is not None})
    token = _CONTEXT.set(MappingProxyType(merged))
    try:
        yield
    finally:
        _CONTEXT.reset(token)


class ContextFilter(logging.Filter):
    """Puts the fields in force when the record was made on it as ``record.gatebot_context``."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "gatebot_context"):
            record.gatebot_context = dict(_CONTEXT.get())
        return True
