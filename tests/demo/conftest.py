"""Fixtures for the demo's tests: a running scripted demo (manual clock, no timers) and a session on it."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from gatebot.demo.render import Line
from gatebot.demo.runner import DemoRuntime, running_demo
from gatebot.demo.session import CommandOutcome, DemoSession


@dataclass
class Demo:
    """A session on a running demo that keeps what it printed."""

    rt: DemoRuntime
    session: DemoSession
    lines: list[Line] = field(default_factory=list)
    outcomes: list[CommandOutcome] = field(default_factory=list)

    async def run(self, *commands: str) -> str:
        """Run ``commands``; returns what they printed (one string, lines joined)."""
        start = len(self.lines)
        for command in commands:
            self.outcomes.append(await self.session.execute(command))
        return "\n".join(line.text for line in self.lines[start:])

    @property
    def ok(self) -> bool:
        return all(o.ok for o in self.outcomes)

    def button(self, label: str, text: str) -> int:
        """The number of the newest ``[N] label`` in ``text``."""
        numbers = re.findall(rf"\[(\d+)\] {re.escape(label)}", text)
        assert numbers, f"no [N] {label} in:\n{text}"
        return int(numbers[-1])


@pytest.fixture
async def demo() -> AsyncIterator[Demo]:
    async with running_demo() as rt:
        lines: list[Line] = []
        session = DemoSession(rt, lines.extend, settle_timeout=10.0)
        try:
            yield Demo(rt, session, lines)
        finally:
            session.close()


async def buy_voucher(demo: Demo, *, ref: str = "INV-1001") -> str:
    """alice buys one Steam Gift Card 20 USD with external reference ``ref``; returns the output."""
    return await demo.run("/gate buy", ":select steam gift", ":pick 1", f":set external reference {ref}",
                          ":submit", ":submit")
