"""Looking around without acting: DMs, a channel's history, the command list.

What lives here
    :class:`ViewCommands`, the part of :class:`~gatebot.demo.session.DemoSession` for ``:dm``,
    ``:history`` and ``:help``: they render what is already in the workspace and send nothing to the app.

Must not import the scheduler library.
"""

from __future__ import annotations

from gatebot.demo.commands import HELP, SessionParts
from gatebot.demo.render import INDENT, Line

__all__ = ["ViewCommands"]


class ViewCommands(SessionParts):
    """``:dm``, ``:history`` and ``:help``."""

    async def _dm(self, args: str) -> None:
        ws = self.rt.workspace
        dm = ws.dm_channel(self.person.id)
        messages = ws.messages(dm.id)
        if not messages:
            self._say(f"no DMs between @{self.person.name} and gatebot yet", "dim")
            return
        lines = [Line(f"DMs of @{self.person.name} with gatebot ({len(messages)}):", "meta")]
        for message in messages:
            lines += self.renderer.message(message, dm_user=self.person.id, replies=ws.replies(dm.id, message.ts))
        self.emit(lines)

    async def _history(self, args: str) -> None:
        count = int(args) if args.isdigit() else 5
        ws = self.rt.workspace
        messages = ws.messages(self.channel)[-count:]
        if not messages:
            self._say(f"no messages in {self.renderer.channel(self.channel)} yet", "dim")
            return
        lines = [Line(f"last {len(messages)} message(s) of {self.renderer.channel(self.channel)}:", "meta")]
        for message in messages:
            lines += self.renderer.message(message, replies=ws.replies(self.channel, message.ts))
        self.emit(lines)

    async def _help(self, args: str) -> None:
        width = max(len(c) for c, _ in HELP)
        lines = [Line("commands:", "meta")]
        lines += [Line(f"{INDENT}{command:<{width}}  {what}", "text") for command, what in HELP]
        self.emit(lines)
