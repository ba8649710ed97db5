"""Stopping long-running commands (``gatebot serve``, ``socket``, ``clock``) on SIGTERM/SIGINT.

Both signals mean the same: drain, stop the scheduler, release the lease, exit 0 (Heroku, systemd,
Docker and Kubernetes stop processes with SIGTERM; a person presses Ctrl-C). The one stop sequence is
:meth:`gatebot.runtime.Runtime.run`'s, the only user of :func:`stop_on_signals`; no library may keep
its own handlers meanwhile (uvicorn's re-raise the signal after serving, which killed ``gatebot
serve`` with 143 before the scheduler stopped).

Must not import Slack or the scheduler.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["stop_on_signals"]


@contextmanager
def stop_on_signals(stop: asyncio.Event, *, again: Callable[[], None] | None = None) -> Iterator[asyncio.Event]:
    """Set ``stop`` on SIGTERM or SIGINT while inside the block (where the loop can take handlers:
    not outside the main thread, nor on Windows — there ``stop`` is only set by its owner).

    A second signal once ``stop`` is set calls ``again`` (e.g. "stop waiting for open connections")."""
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        if stop.is_set() and again is not None:
            again()
        stop.set()

    installed: list[signal.Signals] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, on_signal)
            installed.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):
            pass
    try:
        yield stop
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
