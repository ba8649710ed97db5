"""The demo session: commands typed by a demo user, and what appears on screen in reply.

What lives here
    :class:`DemoSession` runs one command line at a time on a :class:`~gatebot.demo.runner.DemoRuntime`:
    ``/gate ...`` (the real slash command, sent signed to the real app by the emulator's driver), plain
    text (a message in the current channel) and the demo's own ``:commands`` (:data:`HELP`): who you
    are (``:user``), where (``:channel``), pressing numbered buttons (``:press``), filling the open modal
    (``:select``/``:pick``/``:set``/``:submit``/``:cancel``), App Home, DMs, the message shortcut, and
    driving the world: sandbox faults, deposits, balances and time (``:time +1h`` runs the jobs that
    become due, so alerts and order completions appear).

    Everything the app does shows up through the emulator's change listener: after a command the session
    waits until the app has finished reacting (:class:`~gatebot.demo.runner.Settler`), then renders what
    changed, in the order it happened — new messages (thread replies indented under their parent), edits
    (``✎ edited``, the new rendering replacing the old), ephemerals (``[only you]``), DMs
    (``[DM to @alice]``), the open modal as a form, the Home tab. Changes that happen between commands
    (a live scheduler's posts) are rendered shortly after they happen.

Output goes to the ``emit`` callback as :class:`~gatebot.demo.render.Line`\\ s (the terminal UI colours
them, a script prints them).

Where the parts live
    This module runs a command line (:meth:`DemoSession.execute`: dispatch, errors shown as ``✗ ...``,
    settling, flushing). The commands themselves are parts of :class:`DemoSession`, one module each:
    :mod:`~gatebot.demo.actions` (``/gate``, ``:user``, ``:channel``, ``:press``, ``:home``, ``:lookup``),
    :mod:`~gatebot.demo.modal` (the open form), :mod:`~gatebot.demo.world` (faults, deposits, balances,
    time), :mod:`~gatebot.demo.views` (``:dm``, ``:history``, ``:help``) and :mod:`~gatebot.demo.feed`
    (rendering what changed); the command table and the shared state are in :mod:`~gatebot.demo.commands`
    (re-exported here). Must not import the scheduler library.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from gatebot.demo.actions import SlackActions
from gatebot.demo.commands import (
    COMMANDS,
    FAULTS,
    HELP,
    LOOKUP_CALLBACK,
    CommandError,
    CommandOutcome,
    Emit,
    WorkspaceDirectory,
)
from gatebot.demo.feed import ChangeFeed
from gatebot.demo.form import FormError
from gatebot.demo.modal import ModalCommands
from gatebot.demo.render import BlockRenderer
from gatebot.demo.runner import DemoRuntime
from gatebot.demo.views import ViewCommands
from gatebot.demo.world import WorldCommands
from gatebot.emulator import AckTimeoutError
from gatebot.emulator.workspace import ApiError

__all__ = ["COMMANDS", "FAULTS", "HELP", "LOOKUP_CALLBACK", "CommandError", "CommandOutcome", "DemoSession",
           "WorkspaceDirectory"]

log = logging.getLogger(__name__)


class DemoSession(SlackActions, ModalCommands, WorldCommands, ViewCommands, ChangeFeed):
    """One person at the keyboard (see the module docstring). Call :meth:`execute` per command line."""

    def __init__(self, runtime: DemoRuntime, emit: Emit, *, settle_timeout: float = 30.0) -> None:
        self.rt = runtime
        self.emit = emit
        self.settle_timeout = settle_timeout
        self.directory = WorkspaceDirectory(runtime)
        self.person = runtime.people[0]
        self.channel = runtime.workspace.channel("gate-ops").id
        self.renderer = BlockRenderer(self.directory, viewer=self.person.id)
        self._pending = OrderedDict()
        self._lock = threading.Lock()
        self._busy = False
        self._flush_handle = None
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None
        self._options = None
        self._shown_view = None
        self._shown_values = {}
        self._remove_listener = runtime.workspace.add_listener(self._on_change)

    def close(self) -> None:
        self._remove_listener()
        if self._flush_handle is not None:
            self._flush_handle.cancel()

    # -- prompt ----------------------------------------------------------------------------------------
    @property
    def prompt(self) -> str:
        """``alice@#gate-ops> ``"""
        return f"{self.person.name}@{self.renderer.channel(self.channel)}> "

    # -- running commands -----------------------------------------------------------------------------
    async def execute(self, line: str) -> CommandOutcome:
        """Run one command line; everything it causes is emitted before this returns."""
        self._loop = asyncio.get_running_loop()
        text = line.strip()
        if not text or text.startswith("#"):
            return CommandOutcome()
        self._busy = True
        before = self.rt.settler.mark()
        ok, quit_ = True, False
        try:
            quit_ = await self._dispatch(text)
        except (CommandError, FormError) as exc:
            self._say(f"✗ {exc}", "error")
            ok = False
        except AckTimeoutError:
            self._say("✗ the app did not answer within 3 s: Slack would show the user a timeout", "error")
            ok = False
        except ApiError as exc:
            self._say(f"✗ Slack refused that: {exc.error}", "error")
            ok = False
        except (LookupError, ValueError) as exc:  # the driver's "no such element / view" and bad values
            self._say(f"✗ {str(exc).removeprefix('emulator: ')}", "error")
            ok = False
        except Exception as exc:  # keep the demo alive; the traceback goes to the log
            log.exception("demo command %r failed", text.split(" ", 1)[0])
            self._say(f"✗ that did not work: {type(exc).__name__}: {exc}", "error")
            ok = False
        finally:
            try:
                if not await self.rt.settler.settle(before, timeout=self.settle_timeout):
                    self._say("… the app is still working; what it does will appear when it is done", "dim")
            finally:
                self._busy = False
                self.flush()
        return CommandOutcome(ok=ok, quit=quit_)

    async def _dispatch(self, text: str) -> bool:
        if text.startswith("/"):
            await self._slash(text)
            return False
        if not text.startswith(":"):
            self.rt.workspace.post_message(self.channel, text=text, user=self.person.id)
            return False
        word, _, args = text.partition(" ")
        args = args.strip()
        handler = self._handlers().get(word.lower())
        if handler is None:
            raise CommandError(f"unknown command {word} — :help lists the commands")
        result = await handler(args)
        return result is True

    def _handlers(self) -> dict[str, Callable[[str], Any]]:
        return {
            ":user": self._user, ":channel": self._channel, ":press": self._press, ":select": self._select,
            ":pick": self._pick, ":set": self._set, ":submit": self._submit, ":cancel": self._cancel,
            ":form": self._form, ":home": self._home, ":dm": self._dm, ":history": self._history,
            ":lookup": self._lookup, ":fault": self._fault, ":deposit": self._deposit, ":balance": self._balance,
            ":time": self._time, ":wait": self._wait, ":help": self._help, ":quit": self._quit, ":exit": self._quit,
        }  # fmt: skip

    async def _quit(self, args: str) -> bool:
        return True
