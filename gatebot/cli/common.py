"""What every ``gatebot`` command shares: the one-line usage error, argument types, running the core."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NoReturn

from gatebot.config import Settings

if TYPE_CHECKING:
    from gatebot.runtime import Core


class UsageError(Exception):
    """Bad arguments: the message names what is wrong and how to fix it."""


def print_err(message: str) -> None:
    print(f"gatebot: {message}", file=sys.stderr)


class Parser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line (a :class:`UsageError`, printed by :func:`main`, exit 2)
    instead of the usage block: what is wrong, and where the options are listed."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def positive_int(text: str) -> int:
    """``type=`` for counts such as ``--limit``: a whole number of at least 1."""
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got {text!r}")
    return int(text)


def tcp_port(text: str) -> int:
    """``type=`` for ``--port``: a TCP port 1-65535."""
    if not text.strip().isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"must be a TCP port 1-65535, got {text!r}")
    return int(text)


def run_core(settings: Settings, fn: Callable[[Core], Coroutine[Any, Any, int]]) -> int:
    """``fn`` over the core of a runtime without Slack or jobs (the one-shot commands)."""
    from gatebot.runtime import runtime

    async def go() -> int:
        async with runtime(settings, notifier=False) as rt:
            return await fn(rt.core)

    return asyncio.run(go())


def clean(text: str, *, limit: int, what: str) -> str:
    """A free-text argument through the one sanitiser (``gatebot.textinput``); too long is a usage error."""
    from gatebot.textinput import InputTooLong, clean_text

    try:
        return clean_text(text, limit=limit, what=what)
    except InputTooLong as exc:
        raise UsageError(str(exc)) from None


def parse_since(text: str, option: str = "--since") -> datetime:
    from gatebot.clock import TimeArgumentError, parse_when

    try:
        return parse_when(text, now=datetime.now(UTC), option=option)
    except TimeArgumentError as exc:
        raise UsageError(str(exc)) from None


def order_number(text: str) -> int:
    """``type=`` for an order number: 12 or #12."""
    digits = text.strip().removeprefix("#")
    if not digits.isdigit() or not 1 <= int(digits) < 2**31:
        raise argparse.ArgumentTypeError(f"must be an order number like 12 or #12, got {text!r}")
    return int(digits)


def approver(text: str) -> str:
    """``type=`` for ``--as``: a Slack user id (U…/W…) or a CLI identity ``cli:<name>``."""
    from gatebot.slack.roles import is_user_id

    value = text.strip()
    if is_user_id(value) or (value.startswith("cli:") and len(value) > 4 and len(value) <= 64
                             and value[4:].replace("-", "").replace("_", "").replace(".", "").isalnum()):
        return value
    raise argparse.ArgumentTypeError(f"must be a Slack user id (U…) or cli:<name>, got {text!r}")

