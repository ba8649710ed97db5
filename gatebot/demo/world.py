"""Driving the world around the app: sandbox faults, deposits, balances, and time.

What lives here
    :class:`WorldCommands`, the part of :class:`~gatebot.demo.session.DemoSession` for ``:fault``,
    ``:deposit``, ``:balance`` (changing the sandbox Gate API through its simulator), ``:time +1h`` (the
    clock moves and the jobs that become due run, so alerts and order completions appear) and ``:wait``
    (let background work finish).

Must not import the scheduler library (the runtime's job runner advances time).
"""

from __future__ import annotations

import asyncio
from decimal import Decimal, InvalidOperation
from typing import Any

from gatebot.demo.commands import FAULTS, CommandError, SessionParts
from gatebot.demo.render import INDENT
from gatebot.demo.runner import parse_duration
from gatebot.sandbox.simulator import Faults, SandboxError

__all__ = ["WorldCommands"]


class WorldCommands(SessionParts):
    """``:fault``, ``:deposit``, ``:balance``, ``:time`` and ``:wait``."""

    # -- the sandbox ----------------------------------------------------------------------------------------
    async def _fault(self, args: str) -> None:
        words = args.lower().split()
        if not words:
            raise CommandError("usage: :fault " + " | ".join(("health-down", "health-up", "latency SECONDS",
                                                              "errors RATE", "ok")))
        what, values = words[0], words[1:]
        changes: dict[str, Any]
        if what in ("ok", "off", "none", "reset", "clear"):
            changes = Faults().as_dict()
        elif what in ("health-down", "down"):
            # /health fails: the probes alone take the API down (``errors 1`` fails the other calls too).
            changes = {"health_down": True}
        elif what in ("health-up", "up"):
            changes = {"health_down": False}
        elif what in ("latency", "errors", "error-rate") or what.replace("-", "_") in Faults().as_dict():
            if len(values) != 1:
                raise CommandError(f"usage: :fault {what} NUMBER")
            knob = {"latency": "latency", "errors": "error_rate", "error-rate": "error_rate"}.get(
                what, what.replace("-", "_"))
            changes = {knob: self._number(values[0])}
        else:
            raise CommandError(f"unknown fault {what!r}: " + ", ".join(FAULTS))
        try:
            current = self.rt.sim.update_faults(changes)
        except SandboxError as exc:
            raise CommandError(exc.message) from None
        defaults = Faults().as_dict()
        active = [f"{k}={v}" for k, v in current.items() if v != defaults[k]]
        self._say("🔧 sandbox faults: " + (", ".join(active) if active else "none (all clear)"), "notice")

    @staticmethod
    def _number(text: str) -> int | float:
        try:
            number = Decimal(text)
        except InvalidOperation:
            raise CommandError(f"{text!r} is not a number") from None
        return int(number) if number == number.to_integral_value() and "." not in text else float(number)

    def _money_args(self, args: str, usage: str) -> tuple[str, str]:
        words = args.split()
        if len(words) == 2 and words[0].isalpha():
            return words[0].upper(), words[1]
        if len(words) == 2 and words[1].isalpha():
            return words[1].upper(), words[0]
        raise CommandError(f"usage: {usage}")

    async def _deposit(self, args: str) -> None:
        currency, amount = self._money_args(args, ":deposit CUR AMOUNT, e.g. :deposit USD 500")
        try:
            deposit = self.rt.sim.add_deposit(currency, amount, method="bank_wire")
        except SandboxError as exc:
            raise CommandError(exc.message) from None
        self._say(f"🏦 sandbox: deposit #{deposit['id']} of {currency} {deposit['amount']} posted "
                  "(the deposit watch picks it up on its next run: :time)", "notice")

    async def _balance(self, args: str) -> None:
        currency, amount = self._money_args(args, ":balance CUR AMOUNT, e.g. :balance USD 20")
        try:
            balance = self.rt.sim.set_balance(currency, amount)
        except SandboxError as exc:
            raise CommandError(exc.message) from None
        self._say(f"💰 sandbox: {currency} balance set to {balance['available']} "
                  "(the balance check sees it on its next runs: :time)", "notice")

    # -- time -----------------------------------------------------------------------------------------------
    async def _time(self, args: str) -> None:
        try:
            delta = parse_duration(args)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        target = self.rt.clock.now() + delta
        self._say(f"⏱ {args.strip().lstrip('+')} later: {target:%Y-%m-%d %H:%M} UTC", "notice")
        self.flush()
        before = self.rt.settler.mark()
        report = await self.rt.jobs.advance(delta)
        await self.rt.settler.settle(before, timeout=self.settle_timeout)
        self.flush()
        for failure in dict.fromkeys(report.failures):
            self._say(f"{INDENT}job failed: {failure}", "dim")

    async def _wait(self, args: str) -> None:
        ws = self.rt.workspace
        for _ in range(50):
            mark = ws.call_count
            await self.rt.settler.settle(timeout=self.settle_timeout)
            await asyncio.sleep(0.05)
            if ws.call_count == mark:
                break
