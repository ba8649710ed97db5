"""Alert states to and from their stored JSON: pydantic, one ``TypeAdapter`` per state type.

The stored form is the one gatebot has always written, so rows written by earlier versions load::

    {"type": "balance", "v": 1, "alert": {"key": "balance:USD", "open": true, ...}, "currency": "USD", ...}

``type`` picks the state class, ``v`` is the format version; the field formats are in
:mod:`gatebot.alerts.fields`. Absent optional keys take their defaults (forward/backward compatible);
a wrong type or value is a :class:`~gatebot.alerts.policy.StateError`.

Must not import Slack, the scheduler or the store.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any, TypeVar

from pydantic import TypeAdapter, ValidationError

from gatebot.alerts.balance import BalanceState
from gatebot.alerts.health import HealthState
from gatebot.alerts.job import JobState
from gatebot.alerts.lifecycle import AlertState, PolicyState
from gatebot.alerts.policy import StateError

__all__ = ["STATE_VERSION", "dump_alert", "dump_state", "load_alert", "load_state"]

STATE_VERSION = 1

_STATE_TYPES: dict[str, type[PolicyState]] = {
    BalanceState.TYPE: BalanceState,
    HealthState.TYPE: HealthState,
    JobState.TYPE: JobState,
}

P = TypeVar("P", bound=PolicyState)


@cache
def _adapter(cls: type[Any]) -> TypeAdapter[Any]:
    return TypeAdapter(cls)


def _problem(what: str, exc: ValidationError) -> StateError:
    lines = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(part) for part in error["loc"]) or "value"
        lines.append(f"{where}: {error['msg']}")
    return StateError(f"{what}: " + "; ".join(lines))


def dump_state(state: PolicyState) -> dict[str, Any]:
    """The stored JSON of ``state``: ``type``, ``v`` and its fields (plain str/int/bool/None)."""
    fields = _adapter(type(state)).dump_python(state, mode="json")
    return {"type": state.TYPE, "v": STATE_VERSION, **fields}


def load_state(data: Any, expected: type[P] | None = None) -> PolicyState:
    """Read back :func:`dump_state`'s output, dispatching on its ``type`` (which must be ``expected``'s
    when given); raises :class:`StateError` on anything else."""
    kind = data.get("type") if isinstance(data, Mapping) else None
    cls = _STATE_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None or not isinstance(data, Mapping):
        if expected is not None and isinstance(data, Mapping):
            raise StateError(f"{expected.TYPE}: stored type is {kind!r}")
        raise StateError(f"unknown alert state type {kind!r}")
    if expected is not None and cls is not expected:
        raise StateError(f"{expected.TYPE}: stored type is {kind!r}")
    version = data.get("v", STATE_VERSION)
    if version != STATE_VERSION:
        raise StateError(f"{cls.TYPE}: unsupported state version {version!r}")
    fields = {k: v for k, v in data.items() if k not in ("type", "v")}
    try:
        state: PolicyState = _adapter(cls).validate_python(fields)
    except ValidationError as exc:
        raise _problem(cls.TYPE, exc) from None
    return state


def dump_alert(alert: AlertState) -> dict[str, Any]:
    """The stored JSON of the life-cycle part alone."""
    data: dict[str, Any] = _adapter(AlertState).dump_python(alert, mode="json")
    return data


def load_alert(data: Any) -> AlertState:
    try:
        alert: AlertState = _adapter(AlertState).validate_python(data)
    except ValidationError as exc:
        raise _problem("alert", exc) from None
    return alert
