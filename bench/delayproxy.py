"""A TCP proxy that delays every byte by a fixed time each way: a slow network in front of a database.

:class:`DelayProxy` listens on an ephemeral loopback port and forwards each connection to ``upstream``,
holding every chunk for ``delay`` seconds in each direction (so one round trip costs ``2 * delay`` more),
in order and without limiting throughput. It runs its own event loop in a thread: a program whose own
loop stops on a synchronous database call must not also stop the network it is waiting for.

    with DelayProxy(("127.0.0.1", 5432), delay=0.010) as proxy:
        url = f"postgresql://postgres@127.0.0.1:{proxy.port}/test"

For the benches only; imports nothing from gatebot.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from types import TracebackType

__all__ = ["DelayProxy"]

_CHUNK = 65536


class DelayProxy:
    """``127.0.0.1:<port>`` -> ``upstream`` with ``delay`` seconds added each way."""

    def __init__(self, upstream: tuple[str, int], *, delay: float) -> None:
        self.upstream = upstream
        self.delay = delay
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._main, name="delay-proxy", daemon=True)

    def __enter__(self) -> DelayProxy:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the delay proxy did not start")
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def _main(self) -> None:
        self._loop.run_until_complete(self._serve())
        self._loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        async with server:
            await self._stop.wait()
            server.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _connection(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            up_r, up_w = await asyncio.open_connection(*self.upstream)
        except OSError:
            client_w.close()
            return
        await asyncio.gather(self._pump(client_r, up_w), self._pump(up_r, client_w), return_exceptions=True)
        for writer in (client_w, up_w):
            writer.close()

    async def _pump(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        """Copy ``src`` to ``dst``, each chunk written ``delay`` s after it was read (order kept)."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def read() -> None:
            try:
                while data := await src.read(_CHUNK):
                    queue.put_nowait((loop.time() + self.delay, data))
            finally:
                queue.put_nowait((loop.time() + self.delay, b""))

        reader = asyncio.create_task(read())
        try:
            while True:
                due, data = await queue.get()
                await asyncio.sleep(max(0.0, due - loop.time()))
                if not data:
                    with contextlib.suppress(OSError):
                        dst.write_eof()
                    return
                dst.write(data)
                await dst.drain()
        finally:
            reader.cancel()
