"""The change feed: what the app did, rendered in the order it happened.

What lives here
    :class:`ChangeFeed`, the part of :class:`~gatebot.demo.session.DemoSession` that listens to the
    emulator's workspace (the listener may run on any thread), notes each change and renders it on
    :meth:`~ChangeFeed.flush`: new messages (thread replies indented under their parent), edits
    (``✎ edited``, the new rendering replacing the old), ephemerals (``[only you]``), DMs
    (``[DM to @alice]``), the open modal as a form (typing into it shows only the changed fields), the
    Home tab. Changes that happen between commands (a live scheduler's posts) are flushed shortly after
    they happen; during a command the session flushes once the app has settled.

Must not import the scheduler library.
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from dataclasses import dataclass

from gatebot.demo.commands import SessionParts
from gatebot.demo.form import current_value, form_inputs, render_form
from gatebot.demo.render import Line
from gatebot.emulator import Change, Ephemeral, Message, View
from gatebot.emulator.workspace import ApiError

__all__ = ["ChangeFeed"]


@dataclass
class _Pending:
    """A changed thing waiting to be rendered (first change decides its place in the output)."""

    kind: str  # message | ephemeral | view | home
    new: bool = False
    deleted: bool = False
    message: Message | None = None
    ephemeral: Ephemeral | None = None
    user: str | None = None
    full: bool = False  # a view was opened/updated (not just typed into)


class ChangeFeed(SessionParts):
    """Notes the workspace's changes and renders them (see the module docstring)."""

    _pending: OrderedDict[tuple[str, ...], _Pending]
    _lock: threading.Lock
    _busy: bool  # a command is running: it flushes when the app has settled
    _flush_handle: asyncio.TimerHandle | None
    _loop: asyncio.AbstractEventLoop | None
    _shown_view: str | None
    _shown_values: dict[str, str]

    def _on_change(self, change: Change) -> None:
        """The workspace's listener (may run on any thread): note the change, render it soon."""
        with self._lock:
            self._note(change)
        loop = self._loop
        if loop is None or self._busy:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._schedule_flush()
        else:
            loop.call_soon_threadsafe(self._schedule_flush)

    def _schedule_flush(self) -> None:
        if self._flush_handle is None and self._loop is not None:
            self._flush_handle = self._loop.call_later(0.2, self._deferred_flush)

    def _deferred_flush(self) -> None:
        self._flush_handle = None
        if not self._busy:
            self.flush()

    def _touch(self, key: tuple[str, ...], new: _Pending) -> _Pending:
        """The pending entry for ``key``: an edit moves it to the end (it is shown where it last changed);
        a message posted in this batch stays where it was posted."""
        item = self._pending.get(key)
        if item is None:
            self._pending[key] = new
            return new
        if not item.new:
            self._pending.move_to_end(key)
        return item

    def _note(self, change: Change) -> None:
        kind = change.kind
        if kind.startswith("message.") and change.message is not None:
            m = change.message
            item = self._touch(("message", m.channel, m.ts), _Pending("message", message=m))
            item.new = item.new or kind == "message.posted"
            item.deleted = kind == "message.deleted"
        elif kind.startswith("ephemeral.") and change.ephemeral is not None:
            e = change.ephemeral
            item = self._touch(("ephemeral", str(id(e))), _Pending("ephemeral", ephemeral=e))
            item.new = item.new or kind == "ephemeral.posted"
            item.deleted = kind == "ephemeral.deleted"
        elif kind.startswith("view.") and change.user is not None:
            item = self._touch(("view", change.user), _Pending("view", user=change.user))
            if kind != "view.input":
                item.full = True
        elif kind == "home.published" and change.user is not None:
            self._touch(("home", change.user), _Pending("home", user=change.user))

    def flush(self) -> None:
        """Render everything that changed since the last flush, in the order it first changed."""
        with self._lock:
            pending, self._pending = self._pending, OrderedDict()
        if not pending:
            return
        ws = self.rt.workspace
        shown_parents = {(p.message.channel, p.message.ts) for p in pending.values()
                         if p.kind == "message" and p.new and p.message is not None and not p.message.is_reply}
        lines: list[Line] = []
        # The current user's form first (their own action's direct answer), then what followed from it,
        # in the order it happened: that order does not depend on which of the two the loop ran first.
        ordered = sorted(pending.values(), key=lambda p: p.kind != "view")
        for item in ordered:
            if item.kind == "message" and item.message is not None:
                lines += self._message_lines(item, item.message, shown_parents, pending)
            elif item.kind == "ephemeral" and item.ephemeral is not None:
                if not item.deleted:
                    lines += self.renderer.ephemeral(item.ephemeral, edited=not item.new)
            elif item.kind == "view" and item.user == self.person.id:
                lines += self._view_lines(item)
            elif item.kind == "home" and item.user == self.person.id:
                home = ws.home_view(self.person.id)
                if home is not None:
                    lines += self.renderer.home(home)
        if lines:
            self.emit(lines)

    def _dm_user(self, channel_id: str) -> str | None:
        channel = self.rt.workspace.channels.get(channel_id)
        return channel.dm_user if channel is not None else None

    def _message_lines(self, item: _Pending, message: Message, shown_parents: set[tuple[str, str]],
                       pending: OrderedDict[tuple[str, ...], _Pending]) -> list[Line]:
        ws = self.rt.workspace
        dm_user = self._dm_user(message.channel)
        if item.deleted:
            return [] if item.new else self.renderer.deleted(message, dm_user=dm_user)
        if message.is_reply:
            if item.new and (message.channel, str(message.thread_ts)) in shown_parents:
                return []  # rendered under its parent
            try:
                parent: Message | None = ws.message(message.channel, str(message.thread_ts))
            except ApiError:
                parent = None
            lines = self.renderer.reply(message, parent, dm_user=dm_user)
            return lines if item.new else [Line("✎ edited thread reply", "notice"), *lines]
        if not item.new:
            return self.renderer.edited(message, dm_user=dm_user)
        replies = [r for r in ws.replies(message.channel, message.ts)
                   if pending.get(("message", r.channel, r.ts), _Pending("message")).new]
        return self.renderer.message(message, dm_user=dm_user, replies=replies)

    def _view_lines(self, item: _Pending) -> list[Line]:
        top = self.rt.workspace.top_view(self.person.id)
        if top is None:
            if self._shown_view is not None:
                self._shown_view = None
                return [Line("✓ the form closed", "ok")]
            return []
        if item.full or top.id != self._shown_view:
            return self._form_lines(top)
        return self._input_lines(top)

    def _values(self, view: View) -> dict[str, str]:
        return {f.block_id: current_value(view, f, self.directory) for f in form_inputs(view, self.directory)}

    def _form_lines(self, view: View) -> list[Line]:
        self._shown_view = view.id
        self._shown_values = self._values(view)
        depth = len(self.rt.workspace.view_stack(self.person.id))
        return render_form(view, self.renderer, depth=depth)

    def _show_form(self, view: View) -> None:
        self.emit(self._form_lines(view))

    def _input_lines(self, view: View) -> list[Line]:
        """Only the fields whose value changed (typing into a form does not redraw it)."""
        lines = []
        values = self._values(view)
        for field in form_inputs(view, self.directory):
            value = values.get(field.block_id, "")
            if value != self._shown_values.get(field.block_id, ""):
                shown = (value or "(empty)").replace("\n", " ⏎ ")
                lines.append(Line(f"│ {field.label}: {shown}", "form"))
        self._shown_values = values
        return lines
