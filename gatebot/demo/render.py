"""Block Kit as readable terminal text: what the demo prints for messages, ephemerals, DMs and App Home.

What lives here
    * :func:`mrkdwn_to_text` — Slack's ``mrkdwn`` for a terminal: ``*bold*`` / ``_italic_`` / ``~strike~``
      / `` `code` `` are kept as typed, ``<@U123>`` becomes ``@alice``, ``<#C1|name>`` ``#name``,
      ``<!date^…|fallback>`` the fallback, ``<url|text>`` ``text (url)``, ``&lt;`` ``<``, and the emoji
      codes gatebot uses become their characters.
    * :class:`ActionIndex` — numbers every button and menu rendered, unique across the whole screen, so
      ``:press 3`` knows which element of which message, ephemeral or view it means.
    * :class:`BlockRenderer` — blocks to :class:`Line`\\ s: header, section (text, fields, accessory),
      context, divider, image, actions (numbered buttons ``[1] Acknowledge``, menus), input (read-only).
    * The screen layouts built on it: :meth:`BlockRenderer.message` (a channel message, with its thread
      replies indented ``↳`` under it), :meth:`~BlockRenderer.edited`, :meth:`~BlockRenderer.reply`,
      :meth:`~BlockRenderer.ephemeral` (``[only you]``), DMs (``[DM to @alice]``) and
      :meth:`~BlockRenderer.home`.

Output is a list of :class:`Line` (text plus a style name); the terminal UI colours them by style, a
script transcript joins the texts. Pure: no I/O, no clock. It reads the emulator's data classes
(:mod:`gatebot.emulator.workspace`) but must not import the Slack libraries, the app, the store or the
scheduler.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from gatebot.emulator.workspace import Ephemeral, Message, View

__all__ = [
    "EMOJI",
    "INDENT",
    "ActionIndex",
    "ActionRef",
    "BlockRenderer",
    "Directory",
    "Line",
    "StaticDirectory",
    "Style",
    "Target",
    "mrkdwn_to_text",
    "option_text",
    "plain_lines",
    "plain_text",
]

JSON = dict[str, Any]

#: Style names a :class:`Line` may carry (the terminal UI maps them to colours).
Style = Literal["text", "header", "meta", "context", "actions", "form", "error", "ok", "notice", "dim", "echo"]

INDENT = "  "
DIVIDER = "─" * 24

#: The emoji codes gatebot's builders use, as characters (unknown codes are left as ``:name:``).
EMOJI: Mapping[str, str] = {
    "bell": "🔔", "eyes": "👀", "hourglass": "⌛", "hourglass_flowing_sand": "⏳", "large_green_circle": "🟢",
    "large_yellow_circle": "🟡", "red_circle": "🔴", "white_circle": "⚪", "grey_question": "❔",
    "information_source": "ℹ️", "lock": "🔒", "moneybag": "💰", "no_entry": "⛔", "outbox_tray": "📤",
    "relaxed": "☺️", "repeat": "🔁", "rotating_light": "🚨", "test_tube": "🧪", "warning": "⚠️",
    "white_check_mark": "✅", "x": "❌", "zzz": "💤", "heavy_check_mark": "✔️", "tada": "🎉",
    "inbox_tray": "📥", "chart_with_upwards_trend": "📈", "chart_with_downwards_trend": "📉",
    "money_with_wings": "💸", "clock1": "🕐", "calendar": "📅", "mag": "🔍", "key": "🔑", "gift": "🎁",
    "point_right": "👉", "robot_face": "🤖", "stopwatch": "⏱️", "arrows_counterclockwise": "🔄",
    "heavy_plus_sign": "➕", "shopping_trolley": "🛒", "bank": "🏦", "receipt": "🧾",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Line:
    """One line of screen output."""

    text: str
    style: Style = "text"


def plain_lines(lines: Iterable[Line]) -> str:
    """The lines as plain text (a transcript)."""
    return "\n".join(line.text for line in lines)


class Directory(Protocol):
    """Names for ids: how ``<@U123>`` and ``<#C123>`` read on screen."""

    def user_name(self, user_id: str) -> str | None: ...

    def channel_name(self, channel_id: str) -> str | None: ...


@dataclass
class StaticDirectory:
    """A :class:`Directory` from two dicts (tests, and anything without a workspace)."""

    users: Mapping[str, str] = field(default_factory=dict)
    channels: Mapping[str, str] = field(default_factory=dict)

    def user_name(self, user_id: str) -> str | None:
        return self.users.get(user_id)

    def channel_name(self, channel_id: str) -> str | None:
        return self.channels.get(channel_id)


# -- mrkdwn ---------------------------------------------------------------------------------------------------

_TOKEN = re.compile(r"<([^<>\n]+)>")
_EMOJI = re.compile(r":([a-z0-9_+\-]+):")


def _token(inner: str, directory: Directory) -> str:
    body, _, label = inner.partition("|")
    if body.startswith("@"):
        uid = body[1:]
        name = directory.user_name(uid) or label.lstrip("@") or uid
        return f"@{name}"
    if body.startswith("#"):
        cid = body[1:]
        name = directory.channel_name(cid) or label.lstrip("#") or cid
        return f"#{name}"
    if body.startswith("!"):
        command = body[1:]
        if command.startswith("date^"):
            return label or command.split("^")[1]
        if command.startswith("subteam^"):
            return label or "@" + command.split("^", 1)[1]
        return label or f"@{command}"
    if label and label != body and label != body.removeprefix("mailto:"):
        return f"{label} ({body})"
    return label or body.removeprefix("mailto:")


def mrkdwn_to_text(text: str, directory: Directory, *, emoji: bool = True) -> str:
    """``mrkdwn`` as a terminal shows it (see the module docstring). Formatting marks are kept."""
    out = _TOKEN.sub(lambda m: _token(m.group(1), directory), text)
    out = out.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    if emoji:
        out = _EMOJI.sub(lambda m: EMOJI.get(m.group(1), m.group(0)), out)
    return out


def plain_text(obj: Any, directory: Directory, *, emoji: bool = True) -> str:
    """The text of a text object (``plain_text`` or ``mrkdwn``), or of a bare string."""
    if isinstance(obj, str):
        return obj
    if not isinstance(obj, dict):
        return ""
    text = str(obj.get("text", ""))
    if obj.get("type") == "mrkdwn":
        return mrkdwn_to_text(text, directory, emoji=emoji)
    return _EMOJI.sub(lambda m: EMOJI.get(m.group(1), m.group(0)), text) if emoji else text


def option_text(option: Any, directory: Directory) -> str:
    """An option's label (with its description, if any)."""
    if not isinstance(option, dict):
        return str(option)
    text = plain_text(option.get("text"), directory)
    description = plain_text(option.get("description"), directory)
    return f"{text} — {description}" if description else text


# -- numbered actions -----------------------------------------------------------------------------------------

#: Where an element lives: a channel/DM message ``("message", channel, ts)``, an ephemeral
#: ``("ephemeral", channel, ts)`` or a view (modal or Home tab) ``("view", view_id, "")``.
Target = tuple[Literal["message", "ephemeral", "view"], str, str]


@dataclass(frozen=True, slots=True)
class ActionRef:
    """One numbered interactive element as it was rendered."""

    number: int
    target: Target
    block_id: str
    action_id: str
    type: str
    text: str
    value: str | None = None
    url: str | None = None
    options: tuple[JSON, ...] = ()
    #: The Ephemeral object for ephemeral targets (they are not addressable by id in the workspace).
    ephemeral: Ephemeral | None = None


class ActionIndex:
    """Numbers for interactive elements, never reused, so a number on screen means one element."""

    def __init__(self) -> None:
        self._refs: dict[int, ActionRef] = {}
        self._next = 1

    def add(
        self, target: Target, block: JSON, element: JSON, directory: Directory, *, ephemeral: Ephemeral | None = None
    ) -> ActionRef:
        options: list[JSON] = [o for o in element.get("options") or [] if isinstance(o, dict)]
        for group in element.get("option_groups") or []:
            options += [o for o in group.get("options") or [] if isinstance(o, dict)]
        text = plain_text(element.get("text"), directory) or plain_text(element.get("placeholder"), directory)
        ref = ActionRef(
            number=self._next,
            target=target,
            block_id=str(block.get("block_id", "")),
            action_id=str(element.get("action_id", "")),
            type=str(element.get("type", "")),
            text=text or str(element.get("type", "")),
            value=element.get("value") if isinstance(element.get("value"), str) else None,
            url=element.get("url") if isinstance(element.get("url"), str) else None,
            options=tuple(options),
            ephemeral=ephemeral,
        )
        self._refs[ref.number] = ref
        self._next += 1
        return ref

    def get(self, number: int) -> ActionRef | None:
        return self._refs.get(number)

    def find(self, text: str, *, accept: Callable[[ActionRef], bool] | None = None) -> ActionRef | None:
        """The most recently rendered element whose label is ``text`` (case-insensitive; a unique prefix
        also matches) and that ``accept`` allows (e.g. still on screen)."""
        wanted = text.strip().lower()
        exact: list[ActionRef] = []
        prefix: list[ActionRef] = []
        for ref in self._refs.values():
            if accept is not None and not accept(ref):
                continue
            label = ref.text.lower()
            if label == wanted:
                exact.append(ref)
            elif label.startswith(wanted):
                prefix.append(ref)
        found = exact or prefix
        return found[-1] if found else None

    def __len__(self) -> int:
        return len(self._refs)


# -- blocks ---------------------------------------------------------------------------------------------------


def _indent(lines: Iterable[Line], prefix: str = INDENT) -> list[Line]:
    return [Line(prefix + line.text if line.text else line.text, line.style) for line in lines]


def _split(text: str, style: Style) -> list[Line]:
    return [Line(part, style) for part in text.split("\n")]


class BlockRenderer:
    """Renders Block Kit for the terminal, numbering interactive elements in a shared :class:`ActionIndex`.

    ``viewer`` is the demo user looking at the screen (their ephemerals read ``[only you]``).
    """

    def __init__(self, directory: Directory, actions: ActionIndex | None = None, *, viewer: str | None = None) -> None:
        self.directory = directory
        self.actions = actions if actions is not None else ActionIndex()
        self.viewer = viewer

    # -- names ---------------------------------------------------------------------------------------------
    def user(self, user_id: str | None) -> str:
        if not user_id:
            return "someone"
        return "@" + (self.directory.user_name(user_id) or user_id)

    def channel(self, channel_id: str) -> str:
        name = self.directory.channel_name(channel_id)
        return f"#{name}" if name else channel_id

    def text(self, obj: Any) -> str:
        return plain_text(obj, self.directory)

    # -- elements --------------------------------------------------------------------------------------------
    def element(self, target: Target, block: JSON, element: JSON, *, ephemeral: Ephemeral | None = None) -> str:
        """One interactive element inline: ``[3] Acknowledge``, ``[4] ▾ Pick a product (a / b)``."""
        etype = str(element.get("type", ""))
        if etype == "image":
            return f"[image: {element.get('alt_text', '')}]"
        ref = self.actions.add(target, block, element, self.directory, ephemeral=ephemeral)
        if etype == "button":
            label = f"[{ref.number}] {ref.text}"
            return label + (" ↗" if ref.url else "")
        if etype == "overflow":
            return f"[{ref.number}] ⋯ " + " / ".join(option_text(o, self.directory) for o in ref.options)
        if etype.endswith("select") or etype in ("radio_buttons", "checkboxes"):
            shown = " / ".join(option_text(o, self.directory) for o in ref.options[:6])
            more = f" / … ({len(ref.options) - 6} more)" if len(ref.options) > 6 else ""
            initial = element.get("initial_option")
            current = f" = {option_text(initial, self.directory)}" if isinstance(initial, dict) else ""
            return f"[{ref.number}] ▾ {ref.text}{current}" + (f" ({shown}{more})" if shown else "")
        if etype == "datepicker":
            return f"[{ref.number}] 📅 {element.get('initial_date') or ref.text}"
        return f"[{ref.number}] {ref.text} ({etype})"

    # -- blocks ----------------------------------------------------------------------------------------------
    def blocks(
        self, blocks: Sequence[JSON] | None, target: Target, *, ephemeral: Ephemeral | None = None
    ) -> list[Line]:
        """Every block, in order. ``target`` is where numbered elements will be pressed."""
        lines: list[Line] = []
        for block in blocks or []:
            if isinstance(block, dict):
                lines += self.block(block, target, ephemeral=ephemeral)
        return lines

    def block(self, block: JSON, target: Target, *, ephemeral: Ephemeral | None = None) -> list[Line]:
        btype = block.get("type")
        if btype == "header":
            return [Line(f"== {self.text(block.get('text'))} ==", "header")]
        if btype == "section":
            return self._section(block, target, ephemeral)
        if btype == "context":
            parts = []
            for element in block.get("elements") or []:
                if isinstance(element, dict) and element.get("type") == "image":
                    parts.append(f"[{element.get('alt_text', 'image')}]")
                else:
                    parts.append(self.text(element))
            return _split("  ·  ".join(p for p in parts if p), "context")
        if btype == "divider":
            return [Line(DIVIDER, "dim")]
        if btype == "image":
            title = self.text(block.get("title"))
            alt = str(block.get("alt_text", ""))
            return [Line(f"[image: {alt}]" + (f" {title}" if title and title != alt else ""), "dim")]
        if btype == "actions":
            parts = [
                self.element(target, block, e, ephemeral=ephemeral)
                for e in block.get("elements") or []
                if isinstance(e, dict)
            ]
            return [Line("  ".join(parts), "actions")]
        if btype == "input":
            label = self.text(block.get("label"))
            element = block.get("element")
            etype = element.get("type", "input") if isinstance(element, dict) else "input"
            return [Line(f"{label}: <{etype}>", "form")]
        if btype == "rich_text":
            return _split(mrkdwn_to_text(_rich_text(block), self.directory), "text")
        if btype == "file":
            return [Line("[file]", "dim")]
        return [Line(f"[{btype} block]", "dim")]

    def _section(self, block: JSON, target: Target, ephemeral: Ephemeral | None) -> list[Line]:
        lines: list[Line] = []
        if block.get("text") is not None:
            lines += _split(self.text(block.get("text")), "text")
        for item in block.get("fields") or []:
            label, _, rest = self.text(item).partition("\n")
            value = " ".join(part.strip() for part in rest.split("\n") if part.strip())
            lines.append(Line(f"{label}: {value}" if value else label, "text"))
        accessory = block.get("accessory")
        if isinstance(accessory, dict):
            inline = self.element(target, block, accessory, ephemeral=ephemeral)
            if lines and accessory.get("type") != "image":
                last = lines[-1]
                lines[-1] = Line(f"{last.text}   {inline}", last.style)
            else:
                lines.append(Line(inline, "actions"))
        return lines

    # -- screen layouts -----------------------------------------------------------------------------------------
    def body(self, item: Message | Ephemeral, target: Target) -> list[Line]:
        """A message's content: its blocks, or its text when it has none."""
        ephemeral = item if isinstance(item, Ephemeral) else None
        if item.blocks:
            return self.blocks(item.blocks, target, ephemeral=ephemeral)
        return _split(mrkdwn_to_text(item.text, self.directory), "text")

    def _author(self, message: Message) -> str:
        return self.directory.user_name(message.user or "") or message.user or "?"

    def where(self, message: Message, *, dm_user: str | None) -> str:
        """``#gate-ops`` or ``[DM to @alice]``."""
        if dm_user is not None:
            return f"[DM to {self.user(dm_user)}]"
        return self.channel(message.channel)

    def _head(self, message: Message, dm_user: str | None, note: str = "") -> Line:
        head = f"{self.where(message, dm_user=dm_user)} · {self._author(message)}"
        return Line(head + (f" {note}" if note else ""), "meta")

    def message(
        self, message: Message, *, dm_user: str | None = None, replies: Sequence[Message] = (), note: str = ""
    ) -> list[Line]:
        """A top-level message: ``#gate-ops · gatebot`` then its content, its thread replies under it."""
        lines = [self._head(message, dm_user, note)]
        lines += _indent(self.body(message, ("message", message.channel, message.ts)))
        for reply in replies:
            lines += self._reply_lines(reply)
        return lines

    def _reply_lines(self, reply: Message) -> list[Line]:
        body = self.body(reply, ("message", reply.channel, reply.ts))
        first = body[0].text if body else ""
        out = [Line(f"{INDENT}↳ {self._author(reply)}: {first}", "context")]
        out += _indent(body[1:], INDENT * 2)
        return out

    def reply(self, reply: Message, parent: Message | None, *, dm_user: str | None = None) -> list[Line]:
        """A thread reply whose parent is not on screen right now: say which thread, then the reply."""
        title = _first_line(parent.text) if parent is not None else "a thread"
        where = self.where(reply, dm_user=dm_user)
        lines = [Line(f"{where} · thread of “{mrkdwn_to_text(title, self.directory)}”", "meta")]
        return lines + self._reply_lines(reply)

    def edited(self, message: Message, *, dm_user: str | None = None) -> list[Line]:
        """An edit: the new rendering replaces the earlier one."""
        where = self.where(message, dm_user=dm_user)
        lines = [Line(f"✎ edited {where} message", "notice"), self._head(message, dm_user)]
        return lines + _indent(self.body(message, ("message", message.channel, message.ts)))

    def deleted(self, message: Message, *, dm_user: str | None = None) -> list[Line]:
        return [Line(f"✗ deleted {self.where(message, dm_user=dm_user)} message “{_first_line(message.text)}”", "dim")]

    def ephemeral(self, item: Ephemeral, *, edited: bool = False) -> list[Line]:
        """``[only you] #gate-ops`` (or ``[only @bob]``) then the content."""
        who = "you" if item.user == self.viewer else self.user(item.user)
        head = f"[only {who}] {self.channel(item.channel)}" + (" (replaced)" if edited else "")
        return [Line(head, "meta"), *_indent(self.body(item, ("ephemeral", item.channel, item.ts)))]

    def home(self, view: View) -> list[Line]:
        """The App Home tab of ``view.user``."""
        lines = [Line(f"[App Home of {self.user(view.user)}]", "meta")]
        return lines + _indent(self.blocks(view.blocks, ("view", view.id, "")))


def _first_line(text: str, limit: int = 60) -> str:
    line = text.strip().split("\n", 1)[0]
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _rich_text(block: JSON) -> str:
    out: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "text":
                out.append(str(node.get("text", "")))
            elif node.get("type") == "link":
                out.append(str(node.get("text") or node.get("url", "")))
            elif node.get("type") == "user":
                out.append(f"<@{node.get('user_id')}>")
            for child in node.get("elements") or []:
                walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk(block)
    return "".join(out)
