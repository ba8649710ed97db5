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
them, a script prints them). Must not import the scheduler library.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from gatebot.demo.form import (
    SELECT_TYPES,
    FormError,
    FormInput,
    current_value,
    form_inputs,
    input_value,
    options_lines,
    picker,
    render_form,
    split_field_value,
)
from gatebot.demo.render import INDENT, ActionRef, BlockRenderer, Line, Style
from gatebot.demo.runner import DemoRuntime, Person, parse_duration
from gatebot.emulator import AckTimeoutError, Change, Delivery, Ephemeral, Message, View, find_actions
from gatebot.emulator.workspace import ApiError
from gatebot.sandbox.simulator import Faults, SandboxError

__all__ = ["COMMANDS", "HELP", "CommandOutcome", "DemoSession", "WorkspaceDirectory"]

log = logging.getLogger(__name__)

Emit = Callable[[list[Line]], None]

#: ``(command, what it does)`` for ``:help`` (and the terminal UI's completion).
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


class DemoSession:
    """One person at the keyboard (see the module docstring). Call :meth:`execute` per command line."""

    def __init__(self, runtime: DemoRuntime, emit: Emit, *, settle_timeout: float = 30.0) -> None:
        self.rt = runtime
        self.emit = emit
        self.settle_timeout = settle_timeout
        self.directory = WorkspaceDirectory(runtime)
        self.person: Person = runtime.people[0]
        self.channel = runtime.workspace.channel("gate-ops").id
        self.renderer = BlockRenderer(self.directory, viewer=self.person.id)
        self._pending: OrderedDict[tuple[str, ...], _Pending] = OrderedDict()
        self._lock = threading.Lock()
        self._busy = False
        self._flush_handle: asyncio.TimerHandle | None = None
        try:
            self._loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None
        self._options: tuple[str, FormInput, list[dict[str, Any]]] | None = None
        self._shown_view: str | None = None
        self._shown_values: dict[str, str] = {}
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

    # -- output ------------------------------------------------------------------------------------------
    def _say(self, text: str, style: Style = "notice") -> None:
        self.emit([Line(text, style)])

    # -- slash command and messages ------------------------------------------------------------------------
    async def _slash(self, text: str) -> None:
        command, _, rest = text.partition(" ")
        if command != "/gate":
            raise CommandError(f"{command} is not a command of this app: try /gate help")
        result = await self.rt.driver.slash_command(self.person.id, rest.strip(), channel=self.channel)
        self._check_delivery(result, "the command")

    def _check_delivery(self, delivery: Delivery | None, what: str) -> None:
        if delivery is not None and not delivery.ok:
            raise CommandError(f"the app answered {what} with HTTP {delivery.status}")

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

    # -- the open form ----------------------------------------------------------------------------------------
    def _top(self) -> View:
        view = self.rt.workspace.top_view(self.person.id)
        if view is None:
            raise CommandError("no form is open (/gate buy opens one)")
        return view

    async def _form(self, args: str) -> None:
        self._show_form(self._top())

    async def _select(self, args: str) -> None:
        view = self._top()
        field = picker(view, self.directory)
        query = args
        if field.type == "external_select" or field.type == "multi_external_select":
            try:
                result = await self.rt.driver.select_options(
                    self.person.id, view, field.action_id, query, block_id=field.block_id)
            except ValueError as exc:
                raise CommandError(str(exc).removeprefix("emulator: ")) from None
            self._check_delivery(result, "the options load")
            options = list(result.options)
        else:
            wanted = query.lower()
            options = [o for o in (field.element.get("options") or [])
                       if wanted in self.renderer.text(o.get("text")).lower()]
        self._options = (view.id, field, options)
        self.emit(options_lines(options, self.directory, query=query))

    async def _pick(self, args: str) -> None:
        if self._options is None:
            raise CommandError("nothing to pick from: :select TEXT first")
        view_id, field, options = self._options
        view = self._top()
        if view.id != view_id:
            raise CommandError("the form changed since :select — :select again")
        if not args.strip().isdigit() or not 1 <= int(args) <= len(options):
            raise CommandError(f"usage: :pick N with N from 1 to {len(options)}")
        await self._fill(view, field, options[int(args) - 1])

    async def _set(self, args: str) -> None:
        view = self._top()
        field, raw = split_field_value(view, args, self.directory)
        if field.type == "external_select":
            await self._select(raw)
            assert self._options is not None
            options = self._options[2]
            exact = [o for o in options if self.renderer.text(o.get("text")).lower() == raw.strip().lower()]
            chosen = exact or options
            if len(chosen) == 1:
                await self._fill(view, field, chosen[0])
            return
        await self._fill(view, field, input_value(field, raw, self.directory))

    async def _fill(self, view: View, field: FormInput, value: Any) -> None:
        """Type or pick ``value`` like the Slack client: a dispatching input sends ``block_actions``."""
        if field.dispatch or field.element.get("dispatch_action_config"):
            kwargs: dict[str, Any] = {"block_id": field.block_id}
            if field.type in SELECT_TYPES:
                kwargs["selected_option"] = value
            elif isinstance(value, list):
                kwargs["selected_options"] = value
            else:
                kwargs["value"] = value
            delivery = await self.rt.driver.click(self.person.id, view, field.action_id, **kwargs)
            self._check_delivery(delivery, f"the change of “{field.label}”")
        else:
            self.rt.driver.set_input(view, field.block_id, field.action_id, value)

    async def _submit(self, args: str) -> None:
        view = self._top()
        result = await self.rt.driver.submit_view(self.person.id, view)
        if result.client_errors:
            self._say("Slack does not send the form: fix the marked fields", "error")
        elif result.client_error:
            raise CommandError(f"Slack shows: {result.client_error}")
        elif result.errors:
            count = len(result.errors)
            self._say(f"the app found {count} problem{'s' if count != 1 else ''} in the form", "error")

    async def _cancel(self, args: str) -> None:
        view = self._top()
        await self.rt.driver.close_view(self.person.id, view)

    # -- other surfaces ----------------------------------------------------------------------------------------
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

    # -- the world: sandbox and time ------------------------------------------------------------------------------
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

    async def _help(self, args: str) -> None:
        width = max(len(c) for c, _ in HELP)
        lines = [Line("commands:", "meta")]
        lines += [Line(f"{INDENT}{command:<{width}}  {what}", "text") for command, what in HELP]
        self.emit(lines)

    async def _quit(self, args: str) -> bool:
        return True

    # -- what changed -----------------------------------------------------------------------------------------------
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
