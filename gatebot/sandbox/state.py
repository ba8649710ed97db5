"""The sandbox's state on disk, so that a sequence of processes behaves like one Gate account.

Why: with ``GATE_API_URL`` unset every ``gatebot`` command runs the sandbox in-process. Without a
saved state each command met a freshly seeded account — the same opening balance, the same order
ids handed out again — while the store remembered the earlier ones. :class:`StateFile` keeps the
account (orders with their clock timestamps, balances, deposits, the id sequence and both random
generators, the offset of an advanceable clock) in one JSON file beside the store:

* :meth:`StateFile.load` at start, :meth:`StateFile.refresh` before each request (another process
  may have written since: the file's size and mtime tell);
* :meth:`StateFile.save` after each mutating request: written to a temporary file in the same
  directory, then renamed over the old one (readers see the old or the new state, never half);
* :meth:`StateFile.locked`: mutating requests of several processes take turns (``flock`` on a
  ``.lock`` file beside it), so two commands one after another — or at once — both land.

Timestamps are the sandbox clock's (absolute UTC); a pending order is due at ``due_at`` of that
clock, so a later process on the same clock sees it completed once its delay has passed.
Fault knobs and request statistics are per process and not saved.

Serialisation is pydantic (:class:`SandboxState`, one ``TypeAdapter`` round trip); money stays
``Money`` (its ``Decimal`` written as a string, never a float).

Must not import Slack, the scheduler, HTTP libraries or gatebot.gate.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tempfile
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, ValidationError

from gatebot.money import Money

try:
    import fcntl as _fcntl

    fcntl: Any = _fcntl
except ImportError:  # pragma: no cover - Windows: no locking between processes
    fcntl = None

if TYPE_CHECKING:
    from gatebot.sandbox.simulator import Simulator

__all__ = ["BalanceState", "DepositState", "OrderState", "SandboxState", "StateFile"]

log = logging.getLogger(__name__)

#: ``random.Random.getstate()``: (version, 625 words, gauss_next).
RandomState = tuple[int, tuple[int, ...], float | None]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class BalanceState(_Model):
    available: Money
    updated_at: AwareDatetime


class DepositState(_Model):
    id: int
    amount: Money
    method: str
    status: str
    external_ref: str | None
    created_at: AwareDatetime
    posted_at: AwareDatetime | None


class OrderState(_Model):
    """One order; the product is referred to by id (the catalog is configuration, not state)."""

    seq: int
    id: str
    product_id: int
    idempotency_key: str
    fingerprint: str
    external_ref: str | None
    quantity: int
    is_test: bool
    charge: Money
    plexy_margin: Money
    balance_before: Money
    balance_after: Money
    created_at: AwareDatetime
    due_at: AwareDatetime
    order_content: dict[str, Any] | None
    deliverable: dict[str, Any] | None
    status: str
    completed_at: AwareDatetime | None
    failed_at: AwareDatetime | None
    failure_reason: str | None


class SandboxState(_Model):
    """Everything a later process needs to carry on as the same Gate account."""

    version: Literal[1] = 1
    seed: int
    saved_at: AwareDatetime
    #: The offset of an :class:`~gatebot.clock.OffsetClock` (time moved by ``/_sandbox/time``).
    clock_offset: timedelta | None = None
    seq: int
    rng: RandomState
    fault_rng: RandomState
    balances: list[BalanceState]
    deposits: list[DepositState]
    orders: list[OrderState]


class StateFile:
    """One simulator's state file: load, refresh when another process wrote, save atomically."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self._seen: tuple[int, int] | None = None

    def _signature(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return st.st_mtime_ns, st.st_size

    def load(self, sim: Simulator) -> bool:
        """Restore ``sim`` from the file; ``False`` (seeded state kept) when there is none or it is unreadable."""
        signature = self._signature()
        self._seen = signature
        if signature is None:
            return False
        try:
            state = SandboxState.model_validate_json(self.path.read_bytes())
            sim.restore(state)
        except (OSError, ValidationError, ValueError) as exc:
            log.warning("ignoring the sandbox state in %s (%s); starting from the seeded account",
                        self.path, type(exc).__name__)
            return False
        return True

    def refresh(self, sim: Simulator) -> None:
        """Reload when another process saved since we last loaded or saved."""
        if self._signature() != self._seen:
            self.load(sim)

    def save(self, sim: Simulator) -> None:
        """Write the state to a temporary file beside the target, then rename it over the target."""
        data = sim.snapshot().model_dump_json().encode("utf-8")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        self._seen = self._signature()

    @contextlib.asynccontextmanager
    async def locked(self) -> AsyncIterator[None]:
        """Hold the inter-process lock (waiting for it off the event loop)."""
        if fcntl is None:  # pragma: no cover
            yield
            return
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock
