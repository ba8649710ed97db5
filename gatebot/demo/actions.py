"""What a demo user does in Slack: the slash command, who and where they are, buttons, App Home, the shortcut.

What lives here
    :class:`SlackActions`, the part of :class:`~gatebot.demo.session.DemoSession` for ``/gate ...``,
    ``:user``, ``:channel``, ``:press`` (a numbered button, or the newest live one with that label, and a
    menu's option), ``:home`` and ``:lookup`` (the “Look up order” message shortcut). Each is sent signed to
    the real app by the emulator's driver; what the app does in reply is rendered by the change feed.

Must not import the scheduler library.
"""

from __future__ import annotations

from typing import Any

from gatebot.demo.commands import LOOKUP_CALLBACK, CommandError, SessionParts
from gatebot.demo.render import ActionRef, Line
from gatebot.emulator import Ephemeral, Message, View, find_actions
from gatebot.emulator.workspace import ApiError

__all__ = ["SlackActions"]


class SlackActions(SessionParts):
    """``/gate``, ``:user``, ``:channel``, ``:press``, ``:home`` and ``:lookup``."""

    # -- slash command and messages ------------------------------------------------------------------------
    async def _slash(self, text: str) -> None:
        command, _, rest = text.partition(" ")
        if command != "/gate":
            raise CommandError(f"{command} is not a command of this app: try /gate help")
        result = await self.rt.driver.slash_command(self.person.id, rest.strip(), channel=self.channel)
        self._check_delivery(result, "the command")

    # -- who and where ----------------------------------------------------------------------------------------
    async def _user(self, args: str) -> None:
        if not args:
            lines = [Line("people (:user NAME to become one):", "meta")]
            for p in self.rt.people:
                mark = "→" if p is self.person else " "
                lines.append(Line(f"{mark} @{p.name:<6} {p.real_name:<12} {p.note}", "text"))
            self.emit(lines)
            return
        person = self.rt.person(args)
        if person is None:
            names = ", ".join(p.name for p in self.rt.people)
            raise CommandError(f"no demo user {args!r} (people: {names})")
        self.person = person
        self.renderer.viewer = person.id
        self._options = None
        self._say(f"you are now @{person.name} ({person.real_name}) — {person.note}", "ok")
        top = self.rt.workspace.top_view(person.id)
        if top is not None:
            self._show_form(top)

    async def _channel(self, args: str) -> None:
        ws = self.rt.workspace
        if not args:
            lines = [Line("channels (:channel #NAME to go there):", "meta")]
            for ch in ws.channels.values():
                if ch.is_im:
                    continue
                mark = "→" if ch.id == self.channel else " "
                bot = "gatebot is in it" if ch.is_member else "gatebot is not in it"
                lines.append(Line(f"{mark} #{ch.name:<10} {len(ch.members)} people, {bot}", "text"))
            self.emit(lines)
            return
        found = ws.find_channel(args.strip().lstrip("#"))
        if found is None or found.is_im:
            raise CommandError(f"no channel {args} (:channel lists them)")
        self.channel = found.id
        count = len(ws.messages(found.id))
        self._say(f"now in #{found.name} ({count} message{'s' if count != 1 else ''}; :history shows them)", "ok")

    # -- buttons --------------------------------------------------------------------------------------------
    def _live(self, ref: ActionRef) -> Message | Ephemeral | View | None:
        """The message/ephemeral/view holding ``ref`` if the element is still there, else ``None``."""
        ws = self.rt.workspace
        kind, first, second = ref.target
        target: Message | Ephemeral | View
        try:
            if kind == "message":
                target = ws.message(first, second)
            elif kind == "ephemeral":
                if ref.ephemeral is None or ref.ephemeral.deleted:
                    return None
                target = ref.ephemeral
            else:
                target = ws.view(first)
                if target.closed:
                    return None
        except ApiError:
            return None
        found = find_actions(target.blocks, ref.action_id)
        if ref.value is not None:
            found = [f for f in found if f.element.get("value") == ref.value]
        return target if found else None

    async def _press(self, args: str) -> None:
        if not args:
            raise CommandError("usage: :press N (the number in [N]) or :press LABEL, e.g. :press Acknowledge")
        word, _, option = args.partition(" ")
        ref: ActionRef | None
        if word.isdigit():
            ref = self.renderer.actions.get(int(word))
            if ref is None:
                raise CommandError(f"there is no button [{word}] on screen")
        else:
            option = ""
            ref = self.renderer.actions.find(args, accept=lambda r: self._live(r) is not None)
            if ref is None:
                ref, _, option = self._find_with_option(args)
        target = self._live(ref)
        if target is None:
            raise CommandError(f"[{ref.number}] {ref.text} is gone: that message or view changed since "
                               "(press the newer one)")
        owner = target.user if isinstance(target, Ephemeral | View) else None
        if owner is not None and owner != self.person.id:
            who = self.directory.user_name(owner) or owner
            raise CommandError(f"only @{who} sees that (:user {who} to be them)")
        block_id = ref.block_id if find_actions(target.blocks, ref.action_id, block_id=ref.block_id) else None
        kwargs: dict[str, Any] = {"value": ref.value, "block_id": block_id}
        if ref.type in ("static_select", "overflow", "radio_buttons", "external_select"):
            if not option:
                names = " / ".join(self.renderer.text(o.get("text")) for o in ref.options) or "none"
                raise CommandError(f"[{ref.number}] is a menu: :press {ref.number} OPTION (options: {names})")
            kwargs["selected_option"] = self._option_of(ref, option)
        if ref.url:
            self._say(f"↗ opens {ref.url}", "dim")
        delivery = await self.rt.driver.click(self.person.id, target, ref.action_id, **kwargs)
        self._check_delivery(delivery, f"the [{ref.number}] {ref.text} press")

    def _find_with_option(self, args: str) -> tuple[ActionRef, str, str]:
        words = args.split()
        for count in range(len(words) - 1, 0, -1):
            label, option = " ".join(words[:count]), " ".join(words[count:])
            ref = self.renderer.actions.find(label, accept=lambda r: self._live(r) is not None)
            if ref is not None:
                return ref, label, option
        raise CommandError(f"no button “{args}” on screen")

    def _option_of(self, ref: ActionRef, text: str) -> dict[str, Any]:
        wanted = text.strip().lower()
        for option in ref.options:
            label = self.renderer.text(option.get("text")).lower()
            if wanted in (str(option.get("value", "")).lower(), label) or label.startswith(wanted):
                return dict(option)
        raise CommandError(f"[{ref.number}] has no option “{text}”")

    # -- App Home and the message shortcut ---------------------------------------------------------------------
    async def _home(self, args: str) -> None:
        mark, before = self.rt.workspace.call_count, self.rt.settler.mark()
        delivery = await self.rt.driver.app_home_opened(self.person.id)
        self._check_delivery(delivery, "app_home_opened")
        await self.rt.settler.settle(before, timeout=self.settle_timeout)
        if not self.rt.workspace.calls("views.publish", since=mark):
            home = self.rt.workspace.home_view(self.person.id)
            if home is None:
                raise CommandError("the app did not publish a Home tab")
            self.emit(self.renderer.home(home))

    async def _lookup(self, args: str) -> None:
        ws = self.rt.workspace
        if args:
            message = ws.post_message(self.channel, text=args, user=self.person.id)
        else:
            found = ws.latest_message(self.channel)
            if found is None:
                raise CommandError("no message here to look up: :lookup TEXT posts one first")
            message = found
        delivery = await self.rt.driver.message_shortcut(self.person.id, message, LOOKUP_CALLBACK)
        self._check_delivery(delivery, "the “Look up order” shortcut")

