"""The sandbox's JSON: bodies in (:func:`parse_json`), answers and fingerprints out (:func:`to_json`),
times (:func:`iso`).

``to_json`` is :func:`gatebot.exact_json.dumps` with the sandbox's settings: Decimals normalised (so
``10.0`` and ``10`` give the same idempotency fingerprint) and floats allowed (fault knobs, never
money). Fingerprints are kept in saved sandbox states, so the bytes must not change
(``tests/fixtures/stored_formats_v1.json``).

Must not import Slack, the scheduler, HTTP libraries (starlette, uvicorn, httpx) or gatebot.gate.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from gatebot import exact_json
from gatebot.sandbox.contract import invalid

__all__ = ["iso", "parse_json", "to_json"]


def to_json(value: Any, *, sort_keys: bool = False) -> str:
    """Serialize JSON-ready data; ``Decimal`` becomes a JSON *number* (``10``, ``0.5``) without a float.

    Also the canonical form behind idempotency comparisons (``sort_keys=True``): numerically equal
    Decimals (``10`` and ``10.0``) encode the same.
    """
    return exact_json.dumps(value, decimals="normalized", floats=True, sort_keys=sort_keys)


def parse_json(raw: bytes | str) -> Any:
    """Decode a request body: numbers with a fraction become ``Decimal``; NaN/Infinity are refused."""
    try:
        return exact_json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise invalid("the request body is not valid JSON") from None


def iso(moment: datetime | None) -> str | None:
    """``2024-11-01T10:00:00Z`` (UTC, whole seconds) or ``None``."""
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
