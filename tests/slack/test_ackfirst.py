"""Work after an ack yields to the acks other requests still owe Slack (gatebot.slack.ackfirst)."""

from __future__ import annotations

import asyncio

from gatebot.slack.ackfirst import AckQueue, acks_first


async def _ack() -> str:
    return "acked"


async def test_work_after_an_ack_waits_for_the_other_requests_acks() -> None:
    queue = AckQueue(max_yield=5.0)
    order: list[str] = []
    second_may_ack = asyncio.Event()

    async def request(name: str, before_ack: asyncio.Event | None) -> None:
        """Like Bolt's dispatch: start the listener, answer once it has acked; the work goes on after."""
        sent = asyncio.Event()

        async def ack() -> str:
            sent.set()
            return "acked"

        with queue.arrived():
            async def listener() -> None:
                yielding_ack = acks_first(ack)
                if before_ack is not None:
                    await before_ack.wait()
                assert await yielding_ack() == "acked"
                order.append(f"{name} works")

            task = asyncio.ensure_future(listener())
            await sent.wait()
            order.append(f"{name} answered")
        await task

    first = asyncio.ensure_future(request("first", None))
    second = asyncio.ensure_future(request("second", second_may_ack))
    for _ in range(10):
        await asyncio.sleep(0)
    assert queue.waiting == 1 and "first works" not in order  # first acked, but second still waits
    second_may_ack.set()
    await asyncio.gather(first, second)
    assert order.index("first works") > order.index("second answered") > order.index("first answered")
    assert queue.waiting == 0


async def test_a_request_that_never_acks_leaves_the_queue_when_it_ends() -> None:
    queue = AckQueue(max_yield=5.0)
    with queue.arrived():
        assert queue.waiting == 1
    assert queue.waiting == 0
    await asyncio.wait_for(queue.others_acked(), 0.1)  # nothing owed: returns at once


async def test_the_wait_is_bounded() -> None:
    queue = AckQueue(max_yield=0.01)
    with queue.arrived():  # a request stuck before its ack
        loop = asyncio.get_running_loop()
        started = loop.time()
        await queue.others_acked()
        assert loop.time() - started < 1.0


async def test_outside_an_edge_the_ack_is_plain() -> None:
    assert await acks_first(_ack)() == "acked"  # Socket Mode: nothing counted, nothing awaited
