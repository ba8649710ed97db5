"""JSON where a ``Decimal`` is a JSON *number* with no float in between: the one encoder for that.

Two places need it. The order store seals the exact request body it sends to Gate
(:func:`gatebot.store.crypto.dumps_exact`) and replays those bytes on every retry under the same
idempotency key, so a body re-encoded later must be byte-identical and keep every digit
(``10.00`` stays ``10.00``); floats are refused. The sandbox answers and fingerprints bodies
(:func:`gatebot.sandbox.jsonio.to_json`): it writes Decimals normalised (``10.0`` and ``10`` are the
same idempotent body) and allows floats (fault knobs such as ``latency``, never money).

Why not pydantic: pydantic-core writes a ``Decimal`` only as a string (its JSON default) or through a
float (a ``PlainSerializer`` returning ``float``), and it has no "raw JSON fragment" value, so it can
produce neither ``10.00`` nor ``123456789012345678901234567890.123456789`` as a number — which the
stored, encrypted request bodies already contain. Hence this one small encoder, parametrised for its
two users, pinned by ``tests/fixtures/stored_formats_v1.json``.

Text is written as ``json.dumps(..., ensure_ascii=False)`` does, compact, keys in insertion order
unless ``sort_keys``. Must not import any other gatebot module (a leaf).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Literal

__all__ = ["dumps", "loads"]


def dumps(value: Any, *, decimals: Literal["exact", "normalized"] = "exact", floats: bool = False,
          sort_keys: bool = False) -> str:
    """Compact JSON of ``value`` (None, bool, int, str, Decimal, lists/tuples, str-keyed mappings).

    ``decimals="exact"`` writes ``str(d)`` (every digit, ``1E+2`` kept as written);
    ``"normalized"`` writes ``format(d.normalize(), "f")`` (``100``, ``0.5``). Floats raise
    ``TypeError`` unless ``floats`` (then finite ones are written as ``repr``). Non-finite numbers
    raise ``ValueError``; other types and non-string keys ``TypeError``.
    """
    out: list[str] = []
    _Writer(out, normalize=decimals == "normalized", floats=floats, sort_keys=sort_keys).write(value)
    return "".join(out)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def loads(raw: bytes | str) -> Any:
    """Read JSON back: numbers with a fraction or exponent become ``Decimal``; NaN/Infinity raise ``ValueError``."""
    return json.loads(raw, parse_float=Decimal, parse_constant=_reject_constant)


class _Writer:
    def __init__(self, out: list[str], *, normalize: bool, floats: bool, sort_keys: bool) -> None:
        self.out, self.normalize, self.floats, self.sort_keys = out, normalize, floats, sort_keys

    def write(self, value: Any) -> None:
        out = self.out
        if value is None or isinstance(value, bool | str):
            out.append(json.dumps(value, ensure_ascii=False))
        elif isinstance(value, int):
            out.append(str(int(value)))
        elif isinstance(value, Decimal):
            if not value.is_finite():
                raise ValueError(f"cannot write a non-finite Decimal ({value}) as JSON")
            out.append(format(value.normalize(), "f") if self.normalize else str(value))
        elif isinstance(value, float):
            if not self.floats:
                raise TypeError("refusing to write a float as exact JSON: use Decimal or a string")
            if not math.isfinite(value):
                raise ValueError(f"cannot write {value!r} as JSON")
            out.append(repr(value))
        elif isinstance(value, Mapping):
            self._object(value)
        elif isinstance(value, list | tuple):
            out.append("[")
            for index, item in enumerate(value):
                if index:
                    out.append(",")
                self.write(item)
            out.append("]")
        else:
            raise TypeError(f"cannot write {type(value).__name__} as JSON")

    def _object(self, value: Mapping[Any, Any]) -> None:
        items = list(value.items())
        for key, _ in items:
            if not isinstance(key, str):
                raise TypeError(f"JSON object keys must be strings, got {type(key).__name__}")
        if self.sort_keys:
            items.sort(key=lambda pair: pair[0])
        self.out.append("{")
        for index, (key, item) in enumerate(items):
            if index:
                self.out.append(",")
            self.out.append(json.dumps(key, ensure_ascii=False))
            self.out.append(":")
            self.write(item)
        self.out.append("}")
