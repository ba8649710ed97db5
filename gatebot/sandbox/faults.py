"""Misbehaviour on purpose: the fault knobs (:class:`Faults`), what one request gets (:class:`FaultPlan`,
:func:`draw_action`), and the request statistics that count them (:class:`Stats`).

Faults are decided here and in :meth:`Simulator.plan_request <gatebot.sandbox.simulator.Simulator.plan_request>`
but enacted by the app (sleeping, hanging, breaking the connection).

Must not import Slack, the scheduler, HTTP libraries (starlette, uvicorn, httpx) or gatebot.gate.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

__all__ = ["FAULT_ACTIONS", "FaultAction", "FaultPlan", "Faults", "Stats", "draw_action"]

FaultAction = Literal["hang", "rate_limited", "garbage", "unavailable", "reset", "error_after_processing"]
FAULT_ACTIONS: tuple[FaultAction, ...] = ("hang", "rate_limited", "garbage", "unavailable", "reset",
                                          "error_after_processing")
_CREATE_COUNTERS = ("attempted", "created", "replayed", "conflicts", "rejected")

_RATES = ("error_rate", "create_error_rate", "rate_limit_rate", "hang_rate")
_SECONDS = ("latency", "latency_jitter", "hang_seconds")
_COUNTS = ("rate_limit_burst", "hang_next", "garbage_next", "retry_after")


@dataclass
class Faults:
    """Misbehaviour to inject; mutable at run time (``PATCH /_sandbox/faults`` or plain assignment).

    Which requests each knob touches: ``latency``/``latency_jitter`` every Gate request including
    ``/health``; ``health_down`` only ``/health``; everything else only the business endpoints
    (``/agent/...``). Admin endpoints (``/_sandbox/...``) are never faulted. One request gets at
    most one fault, checked in this order: hang, rate limit, garbage, error.

    - ``error_rate``: fraction of business requests failing. Reads answer 503 ``unavailable``; a
      create is, in half of the cases, a *reset* (the order is created, then the response breaks
      off after its headers), in a quarter *processed-then-500*, and in a quarter a plain 503
      before anything happened. ``create_error_rate`` does the same for creates only.
    - ``rate_limit_burst``: the next N business requests answer 429 ``rate_limited`` with
      ``Retry-After: retry_after``; ``rate_limit_rate`` a random fraction does.
    - ``hang_next`` / ``hang_rate``: the request does not answer for ``hang_seconds`` (it gives up
      early when the client disconnects), so a client timeout fires.
    - ``garbage_next``: the next N business requests answer 200 with an HTML body (not processed).
    """

    latency: float = 0.0
    latency_jitter: float = 0.0
    error_rate: float = 0.0
    create_error_rate: float = 0.0
    rate_limit_burst: int = 0
    rate_limit_rate: float = 0.0
    retry_after: int = 1
    health_down: bool = False
    hang_rate: float = 0.0
    hang_next: int = 0
    hang_seconds: float = 3600.0
    garbage_next: int = 0

    def __post_init__(self) -> None:
        self.update(self.as_dict())

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def update(self, changes: Mapping[str, Any]) -> None:
        """Apply a partial update, all or nothing; :class:`ValueError` names the first bad knob."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ValueError(f"unknown fault knob(s): {', '.join(unknown)}; "
                             f"known: {', '.join(sorted(known))}")
        clean: dict[str, Any] = {name: _fault_value(name, value) for name, value in changes.items()}
        for name, value in clean.items():
            setattr(self, name, value)


def _fault_value(name: str, value: Any) -> float | int | bool:
    if name == "health_down":
        if not isinstance(value, bool):
            raise ValueError("health_down must be true or false")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise ValueError(f"{name} must be a number")
    if name in _COUNTS:
        if value != int(value) or value < 0:
            raise ValueError(f"{name} must be a whole number >= 0")
        return int(value)
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"{name} must be a finite number >= 0")
    if name in _RATES and number > 1:
        raise ValueError(f"{name} is a fraction of requests: 0..1")
    return number


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """What the app must do to one request: wait ``delay`` seconds, then enact ``action`` (if any)."""

    delay: float = 0.0
    action: FaultAction | None = None
    hang_seconds: float = 0.0
    retry_after: int = 1

    @property
    def processes(self) -> bool:
        """Whether the request reaches the simulator at all (resets and 500s happen after processing)."""
        return self.action in (None, "reset", "error_after_processing")


@dataclass(slots=True)
class Stats:
    """Requests per endpoint, responses per status, create outcomes and injected faults."""

    requests: Counter[str] = field(default_factory=Counter)
    responses: Counter[int] = field(default_factory=Counter)
    creates: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": dict(sorted(self.requests.items())),
            "responses": {str(status): n for status, n in sorted(self.responses.items())},
            "creates": {name: self.creates[name] for name in _CREATE_COUNTERS},
            "faults": {name: self.faults[name] for name in FAULT_ACTIONS},
        }


def draw_action(f: Faults, rng: random.Random, *, is_create: bool) -> FaultAction | None:
    """The fault for one business request (one at most: hang, rate limit, garbage, error), consuming ``f``'s
    "next N" counters; random choices come from ``rng`` (the fault RNG, apart from the id RNG)."""
    if f.hang_next > 0:
        f.hang_next -= 1
        return "hang"
    if f.hang_rate > 0 and rng.random() < f.hang_rate:
        return "hang"
    if f.rate_limit_burst > 0:
        f.rate_limit_burst -= 1
        return "rate_limited"
    if f.rate_limit_rate > 0 and rng.random() < f.rate_limit_rate:
        return "rate_limited"
    if f.garbage_next > 0:
        f.garbage_next -= 1
        return "garbage"
    rates = (f.error_rate, f.create_error_rate) if is_create else (f.error_rate,)
    for rate in rates:
        if rate > 0 and rng.random() < rate:
            if not is_create:
                return "unavailable"
            split = rng.random()
            return "reset" if split < 0.5 else "error_after_processing" if split < 0.75 else "unavailable"
    return None
