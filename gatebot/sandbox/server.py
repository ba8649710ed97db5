"""Serving the sandbox over real HTTP with uvicorn: :func:`serve` (foreground) and :func:`running_sandbox`.

* :func:`serve` runs until SIGINT/SIGTERM — what ``gatebot sandbox`` and ``python -m gatebot.sandbox``
  do. It binds the socket itself, so ``port=0`` works and ``on_ready`` learns the real URL.
* :func:`running_sandbox` starts uvicorn in a background thread on a free loopback port and
  yields ``(base_url, sim)``; tests use it for real sockets (timeouts, resets, keep-alive).

The *reset* fault makes uvicorn drop a connection on purpose; the resulting "Exception in ASGI
application" record is filtered out of uvicorn's log (the app logs one INFO line instead).

Must not import Slack, the scheduler or gatebot.gate.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import NamedTuple

import uvicorn

from gatebot.clock import Clock
from gatebot.sandbox.app import SimulatedReset, create_app
from gatebot.sandbox.simulator import SandboxConfig, Simulator

__all__ = ["DEFAULT_PORT", "RunningSandbox", "running_sandbox", "serve"]

DEFAULT_PORT = 8099


class RunningSandbox(NamedTuple):
    """What :func:`running_sandbox` yields: ``with running_sandbox() as (base_url, sim): ...``."""

    base_url: str
    sim: Simulator


class _QuietResets(logging.Filter):
    """Drop uvicorn's traceback for connections the sandbox breaks on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, SimulatedReset)


def _quiet_resets() -> None:
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _QuietResets) for f in logger.filters):
        logger.addFilter(_QuietResets())


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server((host, port), family=family)
    # create_server() leaves the protocol number 0, so asyncio does not set TCP_NODELAY on accepted
    # sockets; without it every loopback answer waits ~40 ms for a delayed ACK.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _server(config: SandboxConfig | None, clock: Clock | None, *, log_level: str,
            quiet: bool) -> tuple[uvicorn.Server, Simulator]:
    app = create_app(config, clock=clock)
    extra = {"log_config": None} if quiet else {}
    uv_config = uvicorn.Config(
        app, lifespan="off", ws="none", log_level=log_level, access_log=not quiet,
        # Hanging requests end when their client disconnects; this bounds the rest at shutdown.
        timeout_graceful_shutdown=2, **extra,  # type: ignore[arg-type]
    )
    _quiet_resets()
    return uvicorn.Server(uv_config), app.state.sim


def serve(config: SandboxConfig | None = None, *, host: str = "127.0.0.1", port: int = DEFAULT_PORT,
          clock: Clock | None = None, log_level: str = "info",
          on_ready: Callable[[str], None] | None = None) -> None:
    """Serve the sandbox until interrupted. ``on_ready(url)`` is called once the socket listens."""
    sock = _bind(host, port)  # first: a taken port fails before anything is configured
    try:
        server, _ = _server(config, clock, log_level=log_level, quiet=False)
        if on_ready is not None:
            on_ready(_url(sock))  # connections made now wait in the listen backlog until uvicorn runs
        server.run(sockets=[sock])
    finally:
        sock.close()


@contextlib.contextmanager
def running_sandbox(config: SandboxConfig | None = None, *, clock: Clock | None = None,
                    host: str = "127.0.0.1", port: int = 0,
                    startup_timeout: float = 10.0) -> Iterator[RunningSandbox]:
    """Run the sandbox in a background thread for the duration of the ``with`` block.

    ``port=0`` picks a free port. The simulator is shared with the server thread (it is
    thread-safe), so the test can set faults, move time or inspect orders directly.
    """
    server, sim = _server(config, clock, log_level="warning", quiet=True)
    sock = _bind(host, port)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="gate-sandbox", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + startup_timeout
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("the sandbox server stopped during startup")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the sandbox server did not start within {startup_timeout} s")
            time.sleep(0.005)
        yield RunningSandbox(_url(sock), sim)
    finally:
        server.should_exit = True
        thread.join(timeout=startup_timeout)
        sock.close()
