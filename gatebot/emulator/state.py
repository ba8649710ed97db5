"""The workspace's plumbing: identity, the lock, ids and timestamps, change listeners, the log of Web
API calls (and waiting on it), and injected faults.

Thread safety: the Web API usually runs on a server thread while a test or the demo reads and drives
the workspace from another, so every mutation holds one re-entrant lock. Change listeners are called
after the lock is released, on the thread that made the change: keep them short (a terminal UI should
hand the :class:`~gatebot.emulator.model.Change` to its own loop with ``loop.call_soon_threadsafe``).

Ids and timestamps come from counters and the injected :class:`~gatebot.clock.Clock`, so a run with a
:class:`~gatebot.clock.ManualClock` is fully deterministic.

Must not import slack_bolt, slack_sdk, the scheduler or any HTTP library.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from gatebot.clock import Clock, SystemClock
from gatebot.emulator.files import UploadedFile
from gatebot.emulator.model import (
    JSON,
    Call,
    Change,
    Channel,
    Ephemeral,
    Fault,
    Message,
    ResponseUrl,
    Trigger,
    User,
    UserGroup,
    View,
)

log = logging.getLogger("gatebot.emulator.workspace")

T = TypeVar("T")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class WorkspaceState:
    """Everything a workspace holds, and the plumbing the rules in its other modules share."""

    def __init__(
        self,
        *,
        team_id: str = "T00000001",
        team_domain: str = "gatebot-emulator",
        team_name: str = "Gatebot Emulator",
        bot_user_id: str = "UBOT",
        bot_id: str = "B00000001",
        bot_name: str = "gatebot",
        app_id: str = "A00000001",
        bot_token: str = "xoxb-emulator-token",  # noqa: S107 - not a secret: the emulator's own token
        clock: Clock | None = None,
        paid_plan: bool = True,
    ) -> None:
        self.team_id = team_id
        self.team_domain = team_domain
        self.team_name = team_name
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.bot_name = bot_name
        self.app_id = app_id
        self.bot_token = bot_token
        self.clock: Clock = clock or SystemClock()
        #: ``False`` makes ``usergroups.users.list`` answer ``plan_upgrade_required`` (free plans).
        self.paid_plan = paid_plan

        self._lock = threading.RLock()
        self._counters: dict[str, int] = defaultdict(int)
        self._last_ts_us = 0
        self.users: dict[str, User] = {}
        self.usergroups: dict[str, UserGroup] = {}
        self.channels: dict[str, Channel] = {}
        self._messages: dict[str, list[Message]] = defaultdict(list)
        self._by_ts: dict[tuple[str, str], Message] = {}
        self._ephemerals: list[Ephemeral] = []
        self._views: dict[str, View] = {}
        self._stacks: dict[str, list[View]] = defaultdict(list)
        self._homes: dict[str, View] = {}
        self._triggers: dict[str, Trigger] = {}
        self._response_urls: dict[str, ResponseUrl] = {}
        self._faults: dict[str, deque[Fault]] = defaultdict(deque)
        self._calls: list[Call] = []
        self._listeners: list[Callable[[Change], None]] = []
        #: Files uploaded with ``files_upload_v2`` (see :mod:`gatebot.emulator.files`), by file id.
        self.files: dict[str, UploadedFile] = {}
        self.users[bot_user_id] = User(bot_user_id, bot_name, real_name=bot_name, is_bot=True)


    # ----------------------------------------------------------------------------- plumbing

    def _next_id(self, prefix: str) -> str:
        self._counters[prefix] += 1
        return f"{prefix}{self._counters[prefix]:08d}"

    def _next_ts(self) -> str:
        """A message ts: the clock's time in microseconds, bumped to stay strictly increasing."""
        us = (self.clock.now() - _EPOCH) // timedelta(microseconds=1)
        us = max(us, self._last_ts_us + 1)
        self._last_ts_us = us
        return f"{us // 1_000_000}.{us % 1_000_000:06d}"

    def _new_hash(self) -> str:
        self._counters["hash"] += 1
        return f"{int(self.clock.now().timestamp())}.{self._counters['hash']:08x}"

    @contextmanager
    def _mutating(self) -> Iterator[list[Change]]:
        """Hold the lock while changing state; tell listeners afterwards (only if no error)."""
        changes: list[Change] = []
        with self._lock:
            yield changes
        for change in changes:
            self._emit(change)

    def _emit(self, change: Change) -> None:
        for listener in list(self._listeners):
            try:
                listener(change)
            except Exception:
                log.exception("emulator change listener %r failed on %s", listener, change.kind)

    def add_listener(self, listener: Callable[[Change], None]) -> Callable[[], None]:
        """Call ``listener`` after every state change; returns a function that removes it."""
        with self._lock:
            self._listeners.append(listener)

        def remove() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return remove

    def now_ts(self) -> str:
        """The clock as a Slack ``action_ts``/``event_ts`` string (not necessarily unique)."""
        us = (self.clock.now() - _EPOCH) // timedelta(microseconds=1)
        return f"{us // 1_000_000}.{us % 1_000_000:06d}"

    # -------------------------------------------------------------------------------- calls

    def record_call(self, method: str, params: JSON, *, error: str | None = None) -> Call:
        with self._lock:
            call = Call(method, dict(params), self.clock.now(), error is None, error)
            self._calls.append(call)
            return call

    def calls(self, method: str | None = None, *, since: int = 0) -> list[Call]:
        """Recorded Web API calls (of ``method``), oldest first; ``since`` skips the first N calls."""
        with self._lock:
            return [c for c in self._calls[since:] if method is None or c.method == method]

    @property
    def call_count(self) -> int:
        """How many calls were recorded so far (a mark for ``calls(since=...)``)."""
        with self._lock:
            return len(self._calls)

    async def wait_for(
        self,
        probe: Callable[[], T | None],
        *,
        timeout: float = 3.0,  # noqa: ASYNC109 - a budget so a test never hangs, as in asyncio.wait_for
        what: str = "",
    ) -> T:
        """Await until ``probe()`` returns something truthy and return it.

        The app works after ``ack()`` (Bolt runs listeners on, and answers Slack before, that work
        finishes), so tests wait on the workspace rather than asserting at once. Polls every 10 ms of
        real time; raises :class:`TimeoutError` after ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while True:
            result = probe()
            if result:
                return result
            if time.monotonic() >= deadline:
                raise TimeoutError(f"emulator: gave up waiting for {what or probe!r} after {timeout} s")
            await asyncio.sleep(0.01)

    async def wait_for_call(
        self,
        method: str,
        *,
        since: int = 0,
        timeout: float = 3.0,  # noqa: ASYNC109 - see wait_for
        **params: Any,
    ) -> Call:
        """Await a call of ``method`` (recorded after mark ``since``) whose params include ``params``."""

        def probe() -> Call | None:
            for call in self.calls(method, since=since):
                if all(call.params.get(k) == v for k, v in params.items()):
                    return call
            return None

        return await self.wait_for(probe, timeout=timeout, what=f"a {method} call matching {params}")

    # ------------------------------------------------------------------------------- faults

    def fail_next(self, method: str, error: str = "internal_error", *, times: int = 1) -> None:
        """Make the next ``times`` calls of ``method`` answer ``{"ok": false, "error": error}``."""
        with self._lock:
            self._faults[method].extend(Fault(error) for _ in range(times))

    def rate_limit_next(self, method: str, *, retry_after: int = 1, times: int = 1) -> None:
        """Make the next ``times`` calls of ``method`` answer HTTP 429 with ``Retry-After``."""
        with self._lock:
            self._faults[method].extend(Fault("ratelimited", retry_after) for _ in range(times))

    def take_fault(self, method: str) -> Fault | None:
        with self._lock:
            queue = self._faults.get(method)
            return queue.popleft() if queue else None

    def next_event_id(self) -> str:
        """A fresh Events API ``event_id``."""
        with self._lock:
            self._counters["event"] += 1
            return f"Ev{self._counters['event']:08d}"
