"""Serving the emulator (or any ASGI app, e.g. the Bolt app under test) on a loopback port.

:class:`LoopbackServer` runs uvicorn on a socket it binds itself (``127.0.0.1``, a free port unless
one is given), so its URL is known before the first request. Two ways to run it:

* on a background thread with its own event loop — ``with running_emulator() as emu:`` or
  ``with running_asgi(app) as server:`` — the way tests run servers their client code (sync or async)
  talks to over real HTTP;
* inside the caller's event loop — ``async with EmulatorServer(ws) as emu:`` or
  ``await server.serve()`` — the way ``gatebot demo`` runs it next to the app.

uvicorn's signal handling is switched off: whoever started the server stops it.

Must not import slack_bolt or slack_sdk.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
from collections.abc import Generator, Iterator
from types import TracebackType
from typing import Any

import httpx
import uvicorn
from starlette.types import ASGIApp

from gatebot.emulator.driver import SlackDriver
from gatebot.emulator.web_api import WebApi, create_app
from gatebot.emulator.workspace import Workspace

__all__ = ["EmulatorServer", "LoopbackServer", "running_asgi", "running_emulator"]

log = logging.getLogger(__name__)


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class LoopbackServer:
    """An ASGI app served by uvicorn on ``host`` (a free port when ``port`` is 0)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        log_level: str = "warning",
        graceful_shutdown: float = 2.0,
    ) -> None:
        self.app = app
        self.host = host
        self._port = port
        self._config = uvicorn.Config(
            app,
            log_level=log_level,
            access_log=False,
            lifespan="off",
            ws="none",
            timeout_graceful_shutdown=max(1, round(graceful_shutdown)),
        )
        self._server: _Server | None = None
        self._socket: socket.socket | None = None
        self._task: asyncio.Task[None] | None = None
        self._thread: threading.Thread | None = None
        self._thread_error: BaseException | None = None

    # --------------------------------------------------------------------------- addresses

    @property
    def port(self) -> int:
        if self._socket is None:
            raise RuntimeError("the server is not started")
        return int(self._socket.getsockname()[1])

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>`` (no trailing slash)."""
        return f"http://{self.host}:{self.port}"

    # ----------------------------------------------------------------------------- serving

    def _bind(self) -> socket.socket:
        if self._server is not None:
            raise RuntimeError("the server is already running")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self._port))
        except OSError:
            sock.close()
            raise
        sock.set_inheritable(True)
        self._socket = sock
        self._server = _Server(self._config)
        return sock

    async def serve(self) -> None:
        """Serve in the running loop until :meth:`stop`/``should_exit`` (binds first if needed)."""
        sock = self._socket if self._server is not None and self._socket is not None else self._bind()
        assert self._server is not None
        try:
            await self._server.serve(sockets=[sock])
        finally:
            sock.close()

    async def start(self, *, timeout: float = 5.0) -> None:  # noqa: ASYNC109 - start-up budget
        """Start serving in the running loop; returns once the server accepts connections."""
        self._bind()
        server = self._server
        assert server is not None
        self._task = asyncio.create_task(self.serve(), name=f"loopback-server:{self.port}")
        async with asyncio.timeout(timeout):
            while not server.started:
                if self._task.done():
                    self._task.result()
                    raise RuntimeError("the server stopped during start-up")
                await asyncio.sleep(0.005)
        log.debug("serving %r on %s", self.app, self.url)

    async def stop(self) -> None:
        """Stop serving (in-loop mode) and wait until it has."""
        if self._server is not None:
            self._server.should_exit = True
        if self._task is not None:
            try:
                await self._task
            finally:
                self._task = None
        self._server = None

    async def __aenter__(self) -> LoopbackServer:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # ------------------------------------------------------------------------------ thread

    def start_in_thread(self, *, timeout: float = 5.0) -> None:
        """Serve from a daemon thread with its own event loop; returns once it accepts connections."""
        self._bind()
        server = self._server
        assert server is not None
        ready = threading.Event()

        async def main() -> None:
            task = asyncio.create_task(self.serve())
            while not server.started and not task.done():  # noqa: ASYNC110 - uvicorn has no started event
                await asyncio.sleep(0.005)
            ready.set()
            await task

        def run() -> None:
            try:
                asyncio.run(main())
            except BaseException as exc:  # reported to the starting thread
                self._thread_error = exc
            finally:
                ready.set()

        self._thread = threading.Thread(target=run, name=f"loopback-server:{self.port}", daemon=True)
        self._thread.start()
        if not ready.wait(timeout) or not server.started:
            self.stop_thread()
            raise RuntimeError(f"the server did not start: {self._thread_error!r}")

    def stop_thread(self, *, timeout: float = 10.0) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("loopback server thread %s did not stop within %s s", self._thread.name, timeout)
            self._thread = None
        self._server = None


class EmulatorServer(LoopbackServer):
    """The Slack emulator: Web API at :attr:`api_url`, ``response_url``s under :attr:`base_url`."""

    def __init__(
        self, workspace: Workspace | None = None, *, host: str = "127.0.0.1", port: int = 0, **options: Any
    ) -> None:
        app = create_app(workspace if workspace is not None else Workspace.sample())
        self._api: WebApi = app.state.web_api
        super().__init__(app, host=host, port=port, **options)

    @property
    def workspace(self) -> Workspace:
        return self._api.workspace

    @workspace.setter
    def workspace(self, workspace: Workspace) -> None:
        """Serve another workspace from now on (a fresh one per test, one server per session)."""
        self._api.workspace = workspace

    @property
    def base_url(self) -> str:
        return self.url

    @property
    def api_url(self) -> str:
        """The ``base_url`` for Slack clients: ``http://127.0.0.1:<port>/api/``."""
        return f"{self.url}/api/"

    def driver(
        self, app_url: str, signing_secret: str, *, http: httpx.AsyncClient | None = None, **options: Any
    ) -> SlackDriver:
        """A :class:`SlackDriver` for the app at ``app_url``, wired to this emulator."""
        return SlackDriver(app_url, signing_secret, self.workspace, self.base_url, http, **options)

    async def __aenter__(self) -> EmulatorServer:
        await self.start()
        return self


@contextlib.contextmanager
def running_asgi(app: ASGIApp, *, host: str = "127.0.0.1", port: int = 0) -> Iterator[LoopbackServer]:
    """Serve ``app`` on a loopback port from a background thread for the duration of the block."""
    server = LoopbackServer(app, host=host, port=port)
    server.start_in_thread()
    try:
        yield server
    finally:
        server.stop_thread()


@contextlib.contextmanager
def running_emulator(
    workspace: Workspace | None = None, *, host: str = "127.0.0.1", port: int = 0
) -> Iterator[EmulatorServer]:
    """Serve the emulator for ``workspace`` (default :meth:`Workspace.sample`) from a background
    thread: ``with running_emulator(ws) as emu: WebClient(base_url=emu.api_url, token=ws.bot_token)``."""
    server = EmulatorServer(workspace, host=host, port=port)
    server.start_in_thread()
    try:
        yield server
    finally:
        server.stop_thread()
