"""The demo's command table and what every part of the session shares.

What lives here
    :data:`HELP` and :data:`COMMANDS` (the ``:commands`` a demo user may type, for ``:help`` and the terminal
    UI's completion), :data:`FAULTS`, :class:`CommandError` (a command that cannot be carried out, shown as
    ``✗ message``), :class:`CommandOutcome`, :class:`WorkspaceDirectory` (names for the renderer) and
    :class:`SessionParts`: the state and the output helpers that the parts of
    :class:`~gatebot.demo.session.DemoSession` share (Slack actions, the open form, the world, views and
    the change feed, each in a module of its own).

Must not import the scheduler library, nor the session's parts (they import this).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gatebot.demo.form import FormInput
from gatebot.demo.render import BlockRenderer, Line, Style
from gatebot.demo.runner import DemoRuntime, Person
from gatebot.emulator import Delivery, View

__all__ = ["COMMANDS", "FAULTS", "HELP", "LOOKUP_CALLBACK", "CommandError", "CommandOutcome", "Emit",
           "SessionParts", "WorkspaceDirectory"]

Emit = Callable[[list[Line]], None]

HELP: tuple[tuple[str, str], ...] = (
    ("/gate TEXT", "the slash command, as you, in the current channel (/gate help lists what you may do)"),
    ("TEXT", "a plain message in the current channel (then :lookup runs “Look up order” on it)"),
    (":user [NAME]", "become alice (admin), bob (ops), carol (finance), erin (support) or dave (no role)"),
    (":channel [#NAME]", "go to #gate-ops, #finance or #general (no name: list channels)"),
    (":press N|LABEL [OPTION]", "press button [N] (or the newest button with that label); OPTION for a menu"),
    (":select TEXT", "type TEXT into the open form's product picker (the app answers the options load)"),
    (":pick N", "choose option (N) of the last :select"),
    (":set FIELD VALUE", "fill a form field by label or block id (quote labels with spaces if needed)"),
    (":submit / :cancel", "submit or close the open form"),
    (":form", "show the open form again"),
    (":home", "open gatebot's App Home tab"),
    (":dm", "your DMs with gatebot"),
    (":history [N]", "the last N messages of the current channel (default 5)"),
    (":lookup [TEXT]", "“Look up order” on the newest message here (or post TEXT first)"),
    (":fault WHAT", "sandbox faults: health-down (/health answers 503: after a few failed probes the "
                    "API counts as down, even while other calls work) | health-up | latency SECONDS | "
                    "errors RATE (a fraction of calls fail) | ok (no faults)"),
    (":deposit CUR AMOUNT", "a deposit posts in the sandbox (e.g. :deposit USD 500)"),
    (":balance CUR AMOUNT", "set the sandbox balance (e.g. :balance USD 20 to trigger a low-balance alert)"),
    (":time +1h|+30m|+90s", "let time pass: the clock moves and the jobs that become due run"),
    (":wait", "let background work finish"),
    (":help / :quit", "this list / leave the demo"),
)
#: Command words for completion.
COMMANDS = (":user", ":channel", ":press", ":select", ":pick", ":set", ":submit", ":cancel", ":form", ":home",
            ":dm", ":history", ":lookup", ":fault", ":deposit", ":balance", ":time", ":wait", ":help", ":quit")
FAULTS = ("health-down", "health-up", "latency", "errors", "ok")
LOOKUP_CALLBACK = "lookup_order"


class CommandError(Exception):
    """A demo command that cannot be carried out (shown as ``✗ message``)."""


@dataclass(frozen=True, slots=True)
class CommandOutcome:
    ok: bool = True
    quit: bool = False


class WorkspaceDirectory:
    """Names from the emulator's workspace (a DM reads as ``dm-alice``)."""

    def __init__(self, runtime: DemoRuntime) -> None:
        self.workspace = runtime.workspace

    def user_name(self, user_id: str) -> str | None:
        user = self.workspace.users.get(user_id)
        return user.name if user is not None else None

    def channel_name(self, channel_id: str) -> str | None:
        channel = self.workspace.channels.get(channel_id)
        if channel is None:
            return None
        if channel.dm_user is not None:
            return f"dm-{self.user_name(channel.dm_user) or channel.dm_user}"
        return channel.name


class SessionParts:
    """What the parts of :class:`~gatebot.demo.session.DemoSession` share: who is at the keyboard, where,
    the runtime, the renderer and the output. ``DemoSession.__init__`` sets all of it."""

    rt: DemoRuntime
    emit: Emit
    settle_timeout: float
    directory: WorkspaceDirectory
    person: Person
    channel: str
    renderer: BlockRenderer
    _options: tuple[str, FormInput, list[dict[str, Any]]] | None  # the last :select (view id, field, options)

    def _say(self, text: str, style: Style = "notice") -> None:
        self.emit([Line(text, style)])

    def _check_delivery(self, delivery: Delivery | None, what: str) -> None:
        if delivery is not None and not delivery.ok:
            raise CommandError(f"the app answered {what} with HTTP {delivery.status}")

    # -- provided by the change feed (:class:`~gatebot.demo.feed.ChangeFeed`) -----------------------------
    def flush(self) -> None:
        raise NotImplementedError

    def _show_form(self, view: View) -> None:
        raise NotImplementedError
