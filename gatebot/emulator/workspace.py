"""The state of an emulated Slack workspace, and the operations Slack performs on it.

Everything the emulator knows lives in one :class:`Workspace`: people, user groups, channels and
DMs, the messages in them (with edit history), ephemeral messages, modal stacks and App Home tabs,
issued ``trigger_id``s and ``response_url``s, injected faults, and a log of every Web API call.
The Web API (:mod:`gatebot.emulator.web_api`) and the driver (:mod:`gatebot.emulator.driver`) are
thin translators between HTTP and the methods here; the rules Slack enforces (``not_in_channel``,
trigger expiry, ``hash_conflict``, the 3-view stack, the 5-post ``response_url`` limit, Block Kit
limits) are enforced here, as :class:`ApiError`.

Thread safety: the Web API usually runs on a server thread while a test or the demo reads and drives
the workspace from another, so every mutation holds one re-entrant lock. Change listeners are called
after the lock is released, on the thread that made the change: keep them short (a terminal UI should
hand the :class:`Change` to its own loop with ``loop.call_soon_threadsafe``).

Ids and timestamps come from counters and the injected :class:`~gatebot.clock.Clock`, so a run with a
:class:`~gatebot.clock.ManualClock` is fully deterministic.

Must not import slack_bolt, slack_sdk, the scheduler or any HTTP library.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import hashlib
import logging
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gatebot.clock import Clock, SystemClock
from gatebot.emulator.files import UploadedFile

__all__ = [
    "LIST_STATE_KEYS",
    "STATE_KEYS",
    "TRIGGER_TTL",
    "ApiError",
    "Call",
    "Change",
    "ChangeKind",
    "Channel",
    "Ephemeral",
    "FoundAction",
    "Message",
    "ResponseUrl",
    "Revision",
    "User",
    "UserGroup",
    "View",
    "Workspace",
    "block_problems",
    "find_action",
    "find_actions",
    "initial_state",
    "iter_elements",
    "number_problem",
    "view_problems",
]

log = logging.getLogger(__name__)

JSON = dict[str, Any]
T = TypeVar("T")

#: How long a ``trigger_id`` can be exchanged for a modal (emulator clock).
TRIGGER_TTL = timedelta(seconds=3)
#: ``response_url`` limits: posts per URL and lifetime.
RESPONSE_URL_MAX_POSTS = 5
RESPONSE_URL_TTL = timedelta(minutes=30)
MAX_VIEW_STACK = 3
MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_MESSAGE_TEXT = 40_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

#: Element types that carry a value in ``state.values``, with the key that holds it and how an
#: untouched element with an ``initial_*`` field starts out.
STATE_KEYS: dict[str, tuple[str, str]] = {
    "plain_text_input": ("value", "initial_value"),
    "number_input": ("value", "initial_value"),
    "email_text_input": ("value", "initial_value"),
    "url_text_input": ("value", "initial_value"),
    "rich_text_input": ("rich_text_value", "initial_value"),
    "static_select": ("selected_option", "initial_option"),
    "external_select": ("selected_option", "initial_option"),
    "radio_buttons": ("selected_option", "initial_option"),
    "multi_static_select": ("selected_options", "initial_options"),
    "multi_external_select": ("selected_options", "initial_options"),
    "checkboxes": ("selected_options", "initial_options"),
    "users_select": ("selected_user", "initial_user"),
    "multi_users_select": ("selected_users", "initial_users"),
    "conversations_select": ("selected_conversation", "initial_conversation"),
    "multi_conversations_select": ("selected_conversations", "initial_conversations"),
    "channels_select": ("selected_channel", "initial_channel"),
    "multi_channels_select": ("selected_channels", "initial_channels"),
    "datepicker": ("selected_date", "initial_date"),
    "timepicker": ("selected_time", "initial_time"),
    "datetimepicker": ("selected_date_time", "initial_date_time"),
}
LIST_STATE_KEYS = frozenset(
    {"selected_options", "selected_users", "selected_conversations", "selected_channels"}
)


class ApiError(Exception):
    """A Slack Web API error code (``{"ok": false, "error": code}``), with optional detail messages."""

    def __init__(self, error: str, *messages: str) -> None:
        super().__init__(error if not messages else f"{error}: {'; '.join(messages)}")
        self.error = error
        self.messages = list(messages)


# --------------------------------------------------------------------------------------------- data


@dataclass(slots=True)
class User:
    id: str
    name: str
    real_name: str = ""
    tz: str = "UTC"
    is_bot: bool = False
    is_admin: bool = False
    deleted: bool = False


@dataclass(slots=True)
class UserGroup:
    id: str
    handle: str
    name: str = ""
    members: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Channel:
    """A public/private channel, or a DM (``dm_user`` set, id ``D…``). ``members`` are people;
    whether the bot is in the channel is ``is_member`` (always true for DMs)."""

    id: str
    name: str
    members: list[str] = field(default_factory=list)
    is_member: bool = True
    is_private: bool = False
    is_archived: bool = False
    dm_user: str | None = None
    created: int = 0

    @property
    def is_im(self) -> bool:
        return self.dm_user is not None


@dataclass(slots=True)
class Revision:
    """A message's content before one edit; ``edited_ts`` is when it was replaced."""

    text: str
    blocks: list[JSON] | None
    edited_ts: str


@dataclass(slots=True, eq=False)
class Message:
    channel: str
    ts: str
    text: str
    blocks: list[JSON] | None = None
    user: str | None = None
    bot_id: str | None = None
    thread_ts: str | None = None
    reply_broadcast: bool = False
    metadata: JSON | None = None
    attachments: list[JSON] | None = None
    edits: list[Revision] = field(default_factory=list)
    deleted: bool = False

    @property
    def edited(self) -> bool:
        return bool(self.edits)

    @property
    def is_reply(self) -> bool:
        return self.thread_ts is not None and self.thread_ts != self.ts


@dataclass(slots=True, eq=False)
class Ephemeral:
    """A message only ``user`` sees. ``source``: ``chat.postEphemeral``, ``response_url`` or
    ``command_response`` (the body of the app's answer to a slash command)."""

    channel: str
    user: str
    ts: str
    text: str
    blocks: list[JSON] | None = None
    thread_ts: str | None = None
    source: str = "chat.postEphemeral"
    revisions: list[Revision] = field(default_factory=list)
    deleted: bool = False


@dataclass(slots=True, eq=False)
class View:
    """A modal (on a user's stack) or an App Home tab. ``state`` is ``state.values``: block_id ->
    action_id -> element state; ``errors`` holds the last ``response_action: errors``."""

    id: str
    user: str
    type: str
    hash: str
    blocks: list[JSON]
    callback_id: str = ""
    private_metadata: str = ""
    external_id: str = ""
    title: JSON | None = None
    submit: JSON | None = None
    close: JSON | None = None
    notify_on_close: bool = False
    clear_on_close: bool = False
    root_view_id: str | None = None
    previous_view_id: str | None = None
    state: dict[str, dict[str, JSON]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    closed: bool = False
    updates: int = 0


@dataclass(frozen=True, slots=True)
class Call:
    """One Web API call as received (the token is never recorded)."""

    method: str
    params: JSON
    at: datetime
    ok: bool
    error: str | None = None


ChangeKind = Literal[
    "message.posted",
    "message.updated",
    "message.deleted",
    "ephemeral.posted",
    "ephemeral.updated",
    "ephemeral.deleted",
    "view.opened",
    "view.pushed",
    "view.updated",
    "view.input",
    "view.closed",
    "home.published",
]


@dataclass(frozen=True, slots=True)
class Change:
    """What a change listener receives."""

    kind: ChangeKind
    channel: str | None = None
    user: str | None = None
    message: Message | None = None
    ephemeral: Ephemeral | None = None
    view: View | None = None


@dataclass(slots=True)
class ResponseUrl:
    """A ``response_url`` the driver handed to the app; ``original`` is the message it may replace."""

    token: str
    user: str
    channel: str
    issued_at: datetime
    original: Message | Ephemeral | None = None
    posts: int = 0


@dataclass(slots=True)
class _Trigger:
    id: str
    user: str
    issued_at: datetime
    used: bool = False


@dataclass(frozen=True, slots=True)
class _Fault:
    error: str
    retry_after: int | None = None


@dataclass(frozen=True, slots=True)
class FoundAction:
    """An interactive element found in blocks, with the block that holds it."""

    block_id: str
    block: JSON
    element: JSON


# -------------------------------------------------------------------------------- block helpers


def iter_elements(blocks: Iterable[JSON]) -> Iterator[tuple[JSON, JSON]]:
    """Every interactive element as ``(block, element)``: section accessories, actions elements and
    input elements, in display order."""
    for block in blocks:
        btype = block.get("type")
        if btype == "section" and isinstance(block.get("accessory"), dict):
            yield block, block["accessory"]
        elif btype == "actions":
            for element in block.get("elements") or []:
                if isinstance(element, dict):
                    yield block, element
        elif btype == "input" and isinstance(block.get("element"), dict):
            yield block, block["element"]


def find_actions(
    blocks: Iterable[JSON] | None, action_id: str, *, block_id: str | None = None
) -> list[FoundAction]:
    """All elements with ``action_id`` (optionally only in block ``block_id``)."""
    found = []
    for block, element in iter_elements(blocks or []):
        if element.get("action_id") == action_id and (block_id is None or block.get("block_id") == block_id):
            found.append(FoundAction(str(block.get("block_id", "")), block, element))
    return found


def find_action(
    blocks: Iterable[JSON] | None, action_id: str, *, block_id: str | None = None
) -> FoundAction | None:
    """The first element with ``action_id`` in ``blocks`` (a message's or view's), or ``None``."""
    found = find_actions(blocks, action_id, block_id=block_id)
    return found[0] if found else None


def _short_id(seed: str) -> str:
    digest = hashlib.sha256(seed.encode()).digest()
    return base64.b32encode(digest).decode()[:5]


def _assign_ids(blocks: list[JSON], seed: str) -> list[JSON]:
    """A deep copy of ``blocks`` where, as Slack does, blocks without ``block_id`` and interactive
    elements without ``action_id`` get generated ones (different on every post/update, so — as in
    Slack — typed values survive ``views.update`` only when the app sets its own ids)."""
    result = copy.deepcopy(blocks)
    for index, block in enumerate(result):
        if isinstance(block, dict) and not block.get("block_id"):
            block["block_id"] = _short_id(f"{seed}:b{index}")
    for index, (_block, element) in enumerate(iter_elements(result)):
        if "action_id" not in element and element.get("type") not in (None, "image"):
            element["action_id"] = _short_id(f"{seed}:a{index}")
    return result


def _text_of(obj: Any) -> str:
    return str(obj.get("text", "")) if isinstance(obj, dict) else ""


def block_problems(blocks: Any, *, max_blocks: int) -> list[str]:
    """Block Kit rules Slack enforces server-side that dict-built blocks can break."""
    if not isinstance(blocks, list):
        return ["blocks must be an array"]
    problems: list[str] = []
    if len(blocks) > max_blocks:
        problems.append(f"no more than {max_blocks} items allowed [json-pointer:/blocks]")
    seen_blocks: set[str] = set()
    for index, block in enumerate(blocks):
        where = f"[json-pointer:/blocks/{index}]"
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            problems.append(f"missing required field: type {where}")
            continue
        bid = block.get("block_id")
        if bid is not None:
            if bid in seen_blocks:
                problems.append(f"duplicate block_id {bid!r} {where}")
            seen_blocks.add(bid)
        btype = block["type"]
        if btype == "section":
            if len(_text_of(block.get("text"))) > 3000:
                problems.append(f"must be less than 3001 characters [json-pointer:/blocks/{index}/text/text]")
            if len(block.get("fields") or []) > 10:
                problems.append(f"no more than 10 items allowed [json-pointer:/blocks/{index}/fields]")
            if "text" not in block and "fields" not in block:
                problems.append(f"must provide text or fields {where}")
        elif btype == "header" and len(_text_of(block.get("text"))) > 150:
            problems.append(f"must be less than 151 characters [json-pointer:/blocks/{index}/text/text]")
        elif btype == "input" and not isinstance(block.get("element"), dict):
            problems.append(f"missing required field: element {where}")
        elif btype == "actions" and len(block.get("elements") or []) > 25:
            problems.append(f"no more than 25 items allowed [json-pointer:/blocks/{index}/elements]")
        seen_actions: set[str] = set()
        for _block, element in iter_elements([block]):
            aid = element.get("action_id")
            if isinstance(aid, str):
                if aid in seen_actions:
                    problems.append(f"duplicate action_id {aid!r} {where}")
                seen_actions.add(aid)
            options = element.get("options")
            if isinstance(options, list):
                if len(options) > 100:
                    problems.append(f"no more than 100 options allowed {where}")
                for option in options:
                    if len(_text_of(option.get("text"))) > 75:
                        problems.append(f"option text must be less than 76 characters {where}")
                    if len(str(option.get("value", ""))) > 150:
                        problems.append(f"option value must be less than 151 characters {where}")
    return problems


def initial_state(blocks: list[JSON]) -> dict[str, dict[str, JSON]]:
    """``state.values`` of freshly shown blocks: every stateful element at its ``initial_*`` value
    (``None``/``[]`` when it has none), as Slack reports untouched inputs."""
    state: dict[str, dict[str, JSON]] = {}
    for block, element in iter_elements(blocks):
        etype = element.get("type")
        aid = element.get("action_id")
        if not isinstance(etype, str) or etype not in STATE_KEYS or not isinstance(aid, str):
            continue
        key, initial = STATE_KEYS[etype]
        default: Any = [] if key in LIST_STATE_KEYS else None
        value = copy.deepcopy(element.get(initial, default))
        state.setdefault(str(block["block_id"]), {})[aid] = {"type": etype, key: value}
    return state


def _carry_state(old: dict[str, dict[str, JSON]], blocks: list[JSON]) -> dict[str, dict[str, JSON]]:
    """State for updated ``blocks``: values of elements whose block_id, action_id and type are unchanged
    survive; everything else starts from its initial value."""
    state = initial_state(blocks)
    for block_id, actions in state.items():
        for action_id, value in actions.items():
            previous = old.get(block_id, {}).get(action_id)
            if previous is not None and previous.get("type") == value["type"]:
                actions[action_id] = previous
    return state


def _plain_len(obj: Any) -> int:
    return len(_text_of(obj))


def view_problems(view: Any, *, kind: Literal["modal", "home"]) -> list[str]:
    """What Slack's ``invalid_arguments`` would complain about in a view."""
    if not isinstance(view, dict):
        return ["view must be an object"]
    problems: list[str] = []
    if view.get("type") != kind:
        problems.append(f"type must be {kind!r} [json-pointer:/view/type]")
    blocks = view.get("blocks")
    if not isinstance(blocks, list):
        return [*problems, "missing required field: blocks [json-pointer:/view/blocks]"]
    problems += block_problems(blocks, max_blocks=MAX_VIEW_BLOCKS)
    if kind == "modal":
        if not isinstance(view.get("title"), dict):
            problems.append("missing required field: title [json-pointer:/view/title]")
        for name in ("title", "submit", "close"):
            if name in view and _plain_len(view[name]) > 24:
                problems.append(f"must be less than 25 characters [json-pointer:/view/{name}/text]")
        if any(b.get("type") == "input" for b in blocks if isinstance(b, dict)) and "submit" not in view:
            problems.append("submit is required when a view has input blocks [json-pointer:/view/submit]")
    if len(str(view.get("private_metadata", ""))) > 3000:
        problems.append("must be less than 3001 characters [json-pointer:/view/private_metadata]")
    if len(str(view.get("callback_id", ""))) > 255:
        problems.append("must be less than 256 characters [json-pointer:/view/callback_id]")
    return problems


def number_problem(element: JSON, value: str | None) -> str | None:
    """What Slack's client says about a ``number_input`` value before it lets a view be submitted."""
    if value is None or value == "":
        return None
    try:
        number = Decimal(value)
    except InvalidOperation:
        return "Enter a number."
    if not number.is_finite():
        return "Enter a number."
    if not element.get("is_decimal_allowed", False) and number != number.to_integral_value():
        return "Enter a whole number."
    low, high = element.get("min_value"), element.get("max_value")
    if low is not None and number < Decimal(str(low)):
        return f"Enter a number that's {low} or more."
    if high is not None and number > Decimal(str(high)):
        return f"Enter a number that's {high} or less."
    return None


# ---------------------------------------------------------------------------------- the workspace


class Workspace:
    """One emulated Slack workspace (team) with one bot user, the app under test."""

    def __init__(
        self,
        *,
        team_id: str = "T00000001",
        team_domain: str = "gatebot-emulator",
        team_name: str = "Gatebot Emulator",
        bot_user_id: str = "UBOT",
        bot_id: str = "B00000001",
        bot_name: str = "gatebot",
        app_id: str = "A00000001",
        bot_token: str = "xoxb-emulator-token",  # noqa: S107 - not a secret: the emulator's own token
        clock: Clock | None = None,
        paid_plan: bool = True,
    ) -> None:
        self.team_id = team_id
        self.team_domain = team_domain
        self.team_name = team_name
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.bot_name = bot_name
        self.app_id = app_id
        self.bot_token = bot_token
        self.clock: Clock = clock or SystemClock()
        #: ``False`` makes ``usergroups.users.list`` answer ``plan_upgrade_required`` (free plans).
        self.paid_plan = paid_plan

        self._lock = threading.RLock()
        self._counters: dict[str, int] = defaultdict(int)
        self._last_ts_us = 0
        self.users: dict[str, User] = {}
        self.usergroups: dict[str, UserGroup] = {}
        self.channels: dict[str, Channel] = {}
        self._messages: dict[str, list[Message]] = defaultdict(list)
        self._by_ts: dict[tuple[str, str], Message] = {}
        self._ephemerals: list[Ephemeral] = []
        self._views: dict[str, View] = {}
        self._stacks: dict[str, list[View]] = defaultdict(list)
        self._homes: dict[str, View] = {}
        self._triggers: dict[str, _Trigger] = {}
        self._response_urls: dict[str, ResponseUrl] = {}
        self._faults: dict[str, deque[_Fault]] = defaultdict(deque)
        self._calls: list[Call] = []
        self._listeners: list[Callable[[Change], None]] = []
        #: Files uploaded with ``files_upload_v2`` (see :mod:`gatebot.emulator.files`), by file id.
        self.files: dict[str, UploadedFile] = {}
        self.users[bot_user_id] = User(bot_user_id, bot_name, real_name=bot_name, is_bot=True)

    @classmethod
    def sample(cls, *, clock: Clock | None = None, **options: Any) -> Workspace:
        """A small ready-made team: alice (admin), bob and carol; ``#gate-ops`` (bot invited, everyone
        in it), ``#general`` (bot not invited) and user group ``@gate-approvers`` (alice, bob)."""
        ws = cls(clock=clock, **options)
        ws.add_user("UALICE", "alice", real_name="Alice Adams", tz="Europe/Berlin", is_admin=True)
        ws.add_user("UBOB", "bob", real_name="Bob Brown", tz="America/New_York")
        ws.add_user("UCAROL", "carol", real_name="Carol Chen", tz="Asia/Singapore")
        ws.add_channel("gate-ops", id="COPS", members=["UALICE", "UBOB", "UCAROL"])
        ws.add_channel("general", id="CGENERAL", members=["UALICE", "UBOB", "UCAROL"], bot_member=False)
        ws.add_usergroup("gate-approvers", id="SAPPROVERS", members=["UALICE", "UBOB"])
        return ws

    # ----------------------------------------------------------------------------- plumbing

    def _next_id(self, prefix: str) -> str:
        self._counters[prefix] += 1
        return f"{prefix}{self._counters[prefix]:08d}"

    def _next_ts(self) -> str:
        """A message ts: the clock's time in microseconds, bumped to stay strictly increasing."""
        us = (self.clock.now() - _EPOCH) // timedelta(microseconds=1)
        us = max(us, self._last_ts_us + 1)
        self._last_ts_us = us
        return f"{us // 1_000_000}.{us % 1_000_000:06d}"

    def _new_hash(self) -> str:
        self._counters["hash"] += 1
        return f"{int(self.clock.now().timestamp())}.{self._counters['hash']:08x}"

    @contextmanager
    def _mutating(self) -> Iterator[list[Change]]:
        """Hold the lock while changing state; tell listeners afterwards (only if no error)."""
        changes: list[Change] = []
        with self._lock:
            yield changes
        for change in changes:
            self._emit(change)

    def _emit(self, change: Change) -> None:
        for listener in list(self._listeners):
            try:
                listener(change)
            except Exception:
                log.exception("emulator change listener %r failed on %s", listener, change.kind)

    def add_listener(self, listener: Callable[[Change], None]) -> Callable[[], None]:
        """Call ``listener`` after every state change; returns a function that removes it."""
        with self._lock:
            self._listeners.append(listener)

        def remove() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return remove

    # -------------------------------------------------------------------------- directory

    def add_user(
        self,
        id: str | None = None,
        name: str = "",
        *,
        real_name: str = "",
        tz: str = "UTC",
        is_admin: bool = False,
        is_bot: bool = False,
    ) -> User:
        with self._lock:
            uid = id or self._next_id("U")
            user = User(uid, name or uid.lower(), real_name or name, tz, is_bot=is_bot, is_admin=is_admin)
            self.users[uid] = user
            return user

    def add_channel(
        self,
        name: str,
        *,
        id: str | None = None,
        members: Sequence[str] = (),
        bot_member: bool = True,
        is_private: bool = False,
    ) -> Channel:
        with self._lock:
            cid = id or self._next_id("G" if is_private else "C")
            channel = Channel(
                cid,
                name.lstrip("#"),
                list(members),
                is_member=bot_member,
                is_private=is_private,
                created=int(self.clock.now().timestamp()),
            )
            self.channels[cid] = channel
            return channel

    def add_usergroup(
        self, handle: str, *, id: str | None = None, members: Sequence[str] = (), name: str = ""
    ) -> UserGroup:
        with self._lock:
            gid = id or self._next_id("S")
            group = UserGroup(gid, handle.lstrip("@"), name or handle, list(members))
            self.usergroups[gid] = group
            return group

    def invite_bot(self, channel: str) -> None:
        with self._lock:
            self.channel(channel).is_member = True

    def remove_bot(self, channel: str) -> None:
        with self._lock:
            self.channel(channel).is_member = False

    def user(self, user_id: str) -> User:
        try:
            return self.users[user_id]
        except KeyError:
            raise ApiError("user_not_found") from None

    def find_channel(self, ref: str) -> Channel | None:
        """A channel by id, ``name``/``#name``, or a user id (the user's DM with the bot, opened now)."""
        with self._lock:
            if ref in self.channels:
                return self.channels[ref]
            if ref.startswith(("U", "W")) and ref in self.users:
                return self._open_dm(ref)[0]
            name = ref.lstrip("#")
            for channel in self.channels.values():
                if not channel.is_im and channel.name == name:
                    return channel
            return None

    def channel(self, ref: str) -> Channel:
        """Like :meth:`find_channel` but raises ``channel_not_found``."""
        found = self.find_channel(ref)
        if found is None:
            raise ApiError("channel_not_found")
        return found

    def _open_dm(self, user_id: str) -> tuple[Channel, bool]:
        for channel in self.channels.values():
            if channel.dm_user == user_id:
                return channel, True
        self.user(user_id)
        cid = self._next_id("D")
        channel = Channel(cid, user_id, [user_id], dm_user=user_id, created=int(self.clock.now().timestamp()))
        self.channels[cid] = channel
        return channel, False

    def open_dm(self, user_id: str) -> tuple[Channel, bool]:
        """The bot's DM channel with ``user_id`` and whether it already existed."""
        with self._lock:
            return self._open_dm(user_id)

    def dm_channel(self, user_id: str) -> Channel:
        return self.open_dm(user_id)[0]

    def usergroup_members(self, group_id: str) -> list[str]:
        with self._lock:
            if not self.paid_plan:
                raise ApiError("plan_upgrade_required")
            group = self.usergroups.get(group_id)
            if group is None:
                raise ApiError("no_such_subteam")
            return list(group.members)

    def tz_offset(self, user: User) -> int:
        try:
            zone = ZoneInfo(user.tz)
        except (ZoneInfoNotFoundError, ValueError):
            return 0
        offset = self.clock.now().astimezone(zone).utcoffset()
        return int(offset.total_seconds()) if offset else 0

    # --------------------------------------------------------------------------- messages

    def post_message(
        self,
        channel: str,
        *,
        text: str | None = None,
        blocks: list[JSON] | None = None,
        thread_ts: str | None = None,
        reply_broadcast: bool = False,
        metadata: JSON | None = None,
        attachments: list[JSON] | None = None,
        user: str | None = None,
        check_membership: bool = True,
    ) -> Message:
        """Post as the bot (``user=None``, the rules of ``chat.postMessage``) or as a person (demo input).

        ``check_membership=False`` is for what Slack posts on the app's behalf without the bot being
        in the channel (an ``in_channel`` answer to a slash command).
        """
        with self._mutating() as changes:
            ch = self.channel(channel)
            if user is None:
                if check_membership:
                    self._check_bot_can_post(ch)
            else:
                self.user(user)
            message = self._post(
                ch,
                text=text,
                blocks=blocks,
                thread_ts=thread_ts,
                reply_broadcast=reply_broadcast,
                metadata=metadata,
                attachments=attachments,
                user=user,
            )
            changes.append(Change("message.posted", channel=ch.id, user=user, message=message))
            return message

    def _check_bot_can_post(self, ch: Channel) -> None:
        if ch.is_archived:
            raise ApiError("is_archived")
        if not ch.is_member:
            raise ApiError("not_in_channel")

    def _check_content(
        self, text: str | None, blocks: list[JSON] | None, attachments: list[JSON] | None
    ) -> None:
        if not text and not blocks and not attachments:
            raise ApiError("no_text")
        if text is not None and len(text) > MAX_MESSAGE_TEXT:
            raise ApiError("msg_too_long")
        if blocks is not None:
            problems = block_problems(blocks, max_blocks=MAX_MESSAGE_BLOCKS)
            if problems:
                raise ApiError("invalid_blocks", *problems)

    def _post(
        self,
        ch: Channel,
        *,
        text: str | None,
        blocks: list[JSON] | None,
        thread_ts: str | None = None,
        reply_broadcast: bool = False,
        metadata: JSON | None = None,
        attachments: list[JSON] | None = None,
        user: str | None = None,
    ) -> Message:
        self._check_content(text, blocks, attachments)
        if thread_ts is not None:
            parent = self._by_ts.get((ch.id, thread_ts))
            if parent is None or parent.deleted:
                raise ApiError("thread_not_found")
            thread_ts = parent.thread_ts or parent.ts
        ts = self._next_ts()
        message = Message(
            channel=ch.id,
            ts=ts,
            text=text or "",
            blocks=_assign_ids(blocks, f"{ch.id}:{ts}") if blocks is not None else None,
            user=user or self.bot_user_id,
            bot_id=None if user else self.bot_id,
            thread_ts=thread_ts,
            reply_broadcast=reply_broadcast,
            metadata=copy.deepcopy(metadata),
            attachments=copy.deepcopy(attachments),
        )
        if thread_ts is not None:
            parent = self._by_ts[(ch.id, thread_ts)]
            parent.thread_ts = parent.ts
        self._messages[ch.id].append(message)
        self._by_ts[(ch.id, ts)] = message
        return message

    def message(self, channel: str, ts: str) -> Message:
        """The message at ``ts`` (``message_not_found`` if there is none or it was deleted)."""
        with self._lock:
            ch = self.channel(channel)
            message = self._by_ts.get((ch.id, ts))
            if message is None or message.deleted:
                raise ApiError("message_not_found")
            return message

    def update_message(
        self,
        channel: str,
        ts: str,
        *,
        text: str | None = None,
        blocks: list[JSON] | None = None,
        attachments: list[JSON] | None = None,
        metadata: JSON | None = None,
    ) -> Message:
        """``chat.update``: replace text and/or blocks (omitted ones are kept, as in Slack); the previous
        content is kept in ``message.edits``."""
        with self._mutating() as changes:
            message = self.message(channel, ts)
            if message.bot_id != self.bot_id:
                raise ApiError("cant_update_message")
            self._edit(message, text=text, blocks=blocks, attachments=attachments, metadata=metadata)
            changes.append(Change("message.updated", channel=message.channel, message=message))
            return message

    def _edit(
        self,
        message: Message,
        *,
        text: str | None,
        blocks: list[JSON] | None,
        attachments: list[JSON] | None = None,
        metadata: JSON | None = None,
    ) -> None:
        new_text = message.text if text is None else text
        new_blocks = message.blocks if blocks is None else blocks
        self._check_content(new_text, new_blocks, attachments or message.attachments)
        edited_ts = self._next_ts()
        message.edits.append(Revision(message.text, message.blocks, edited_ts))
        message.text = new_text
        if blocks is not None:
            message.blocks = _assign_ids(blocks, f"{message.channel}:{edited_ts}")
        if attachments is not None:
            message.attachments = copy.deepcopy(attachments)
        if metadata is not None:
            message.metadata = copy.deepcopy(metadata)

    def delete_message(self, channel: str, ts: str) -> Message:
        with self._mutating() as changes:
            message = self.message(channel, ts)
            if message.bot_id != self.bot_id:
                raise ApiError("cant_delete_message")
            message.deleted = True
            changes.append(Change("message.deleted", channel=message.channel, message=message))
            return message

    def permalink(self, channel: str, ts: str) -> str:
        message = self.message(channel, ts)
        link = f"https://{self.team_domain}.slack.com/archives/{message.channel}/p{ts.replace('.', '')}"
        if message.is_reply:
            link += f"?thread_ts={message.thread_ts}&cid={message.channel}"
        return link

    def post_ephemeral(
        self,
        channel: str,
        user: str,
        *,
        text: str | None = None,
        blocks: list[JSON] | None = None,
        thread_ts: str | None = None,
        source: str = "chat.postEphemeral",
        check_membership: bool = True,
    ) -> Ephemeral:
        """``chat.postEphemeral`` (with its membership rules), or an ephemeral the driver records."""
        with self._mutating() as changes:
            ch = self.channel(channel)
            self.user(user)
            if check_membership:
                self._check_bot_can_post(ch)
                if user not in ch.members:
                    raise ApiError("user_not_in_channel")
            ephemeral = self._ephemeral(
                ch, user, text=text, blocks=blocks, thread_ts=thread_ts, source=source
            )
            changes.append(Change("ephemeral.posted", channel=ch.id, user=user, ephemeral=ephemeral))
            return ephemeral

    def _ephemeral(
        self,
        ch: Channel,
        user: str,
        *,
        text: str | None,
        blocks: list[JSON] | None,
        thread_ts: str | None,
        source: str,
    ) -> Ephemeral:
        self._check_content(text, blocks, None)
        ts = self._next_ts()
        ephemeral = Ephemeral(
            channel=ch.id,
            user=user,
            ts=ts,
            text=text or "",
            blocks=_assign_ids(blocks, f"{ch.id}:{ts}:e") if blocks is not None else None,
            thread_ts=thread_ts,
            source=source,
        )
        self._ephemerals.append(ephemeral)
        return ephemeral

    # ------------------------------------------------------------------------------ queries

    def messages(self, channel: str, *, include_replies: bool = False) -> list[Message]:
        """Messages in a channel, oldest first; thread replies only if asked (or broadcast)."""
        with self._lock:
            ch = self.channel(channel)
            return [
                m
                for m in self._messages[ch.id]
                if not m.deleted and (include_replies or not m.is_reply or m.reply_broadcast)
            ]

    def latest_message(self, channel: str) -> Message | None:
        """The newest top-level message in a channel."""
        found = self.messages(channel)
        return found[-1] if found else None

    def replies(self, channel: str, thread_ts: str) -> list[Message]:
        """The replies in a thread (without its parent), oldest first."""
        with self._lock:
            ch = self.channel(channel)
            return [
                m for m in self._messages[ch.id] if not m.deleted and m.is_reply and m.thread_ts == thread_ts
            ]

    def dm_messages(self, user: str) -> list[Message]:
        """Messages in the bot's DM with ``user`` (including thread replies)."""
        return self.messages(self.dm_channel(user).id, include_replies=True)

    def ephemerals(self, user: str | None = None, *, channel: str | None = None) -> list[Ephemeral]:
        """Ephemeral messages (for ``user``, in ``channel``), oldest first."""
        with self._lock:
            cid = self.channel(channel).id if channel is not None else None
            return [
                e
                for e in self._ephemerals
                if not e.deleted and (user is None or e.user == user) and (cid is None or e.channel == cid)
            ]

    def latest_ephemeral(self, user: str, *, channel: str | None = None) -> Ephemeral | None:
        found = self.ephemerals(user, channel=channel)
        return found[-1] if found else None

    def view_stack(self, user: str) -> list[View]:
        with self._lock:
            return list(self._stacks[user])

    def top_view(self, user: str) -> View | None:
        """The modal the user sees (top of the stack), or ``None``."""
        with self._lock:
            stack = self._stacks[user]
            return stack[-1] if stack else None

    def home_view(self, user: str) -> View | None:
        with self._lock:
            return self._homes.get(user)

    def view(self, view_id: str) -> View:
        with self._lock:
            try:
                return self._views[view_id]
            except KeyError:
                raise ApiError("not_found") from None

    # -------------------------------------------------------------------------------- calls

    def record_call(self, method: str, params: JSON, *, error: str | None = None) -> Call:
        with self._lock:
            call = Call(method, dict(params), self.clock.now(), error is None, error)
            self._calls.append(call)
            return call

    def calls(self, method: str | None = None, *, since: int = 0) -> list[Call]:
        """Recorded Web API calls (of ``method``), oldest first; ``since`` skips the first N calls."""
        with self._lock:
            return [c for c in self._calls[since:] if method is None or c.method == method]

    @property
    def call_count(self) -> int:
        """How many calls were recorded so far (a mark for ``calls(since=...)``)."""
        with self._lock:
            return len(self._calls)

    async def wait_for(
        self,
        probe: Callable[[], T | None],
        *,
        timeout: float = 3.0,  # noqa: ASYNC109 - a budget so a test never hangs, as in asyncio.wait_for
        what: str = "",
    ) -> T:
        """Await until ``probe()`` returns something truthy and return it.

        The app works after ``ack()`` (Bolt runs listeners on, and answers Slack before, that work
        finishes), so tests wait on the workspace rather than asserting at once. Polls every 10 ms of
        real time; raises :class:`TimeoutError` after ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while True:
            result = probe()
            if result:
                return result
            if time.monotonic() >= deadline:
                raise TimeoutError(f"emulator: gave up waiting for {what or probe!r} after {timeout} s")
            await asyncio.sleep(0.01)

    async def wait_for_call(
        self,
        method: str,
        *,
        since: int = 0,
        timeout: float = 3.0,  # noqa: ASYNC109 - see wait_for
        **params: Any,
    ) -> Call:
        """Await a call of ``method`` (recorded after mark ``since``) whose params include ``params``."""

        def probe() -> Call | None:
            for call in self.calls(method, since=since):
                if all(call.params.get(k) == v for k, v in params.items()):
                    return call
            return None

        return await self.wait_for(probe, timeout=timeout, what=f"a {method} call matching {params}")

    # ------------------------------------------------------------------------------- faults

    def fail_next(self, method: str, error: str = "internal_error", *, times: int = 1) -> None:
        """Make the next ``times`` calls of ``method`` answer ``{"ok": false, "error": error}``."""
        with self._lock:
            self._faults[method].extend(_Fault(error) for _ in range(times))

    def rate_limit_next(self, method: str, *, retry_after: int = 1, times: int = 1) -> None:
        """Make the next ``times`` calls of ``method`` answer HTTP 429 with ``Retry-After``."""
        with self._lock:
            self._faults[method].extend(_Fault("ratelimited", retry_after) for _ in range(times))

    def take_fault(self, method: str) -> _Fault | None:
        with self._lock:
            queue = self._faults.get(method)
            return queue.popleft() if queue else None

    # ------------------------------------------------------------------ triggers & response urls

    def next_event_id(self) -> str:
        """A fresh Events API ``event_id``."""
        with self._lock:
            self._counters["event"] += 1
            return f"Ev{self._counters['event']:08d}"

    def issue_trigger(self, user: str) -> str:
        """A fresh ``trigger_id`` for an interaction by ``user`` (valid for :data:`TRIGGER_TTL`)."""
        with self._lock:
            self._counters["trigger"] += 1
            n = self._counters["trigger"]
            digest = hashlib.sha256(f"{self.team_id}:{n}".encode()).hexdigest()[:20]
            trigger_id = f"{1_000_000 + n}.{self.team_id}.{digest}"
            self._triggers[trigger_id] = _Trigger(trigger_id, user, self.clock.now())
            return trigger_id

    def _check_trigger(self, trigger_id: str) -> _Trigger:
        trigger = self._triggers.get(trigger_id)
        if trigger is None:
            raise ApiError("invalid_trigger_id")
        if trigger.used:
            raise ApiError("exchanged_trigger_id")
        if self.clock.now() - trigger.issued_at > TRIGGER_TTL:
            raise ApiError("expired_trigger_id")
        return trigger

    def issue_response_url(
        self, base_url: str, *, user: str, channel: str, original: Message | Ephemeral | None = None
    ) -> str:
        """A ``response_url`` under ``base_url`` (the emulator server) for an interaction in ``channel``."""
        with self._lock:
            self._counters["response_url"] += 1
            n = self._counters["response_url"]
            token = f"{n:08d}{hashlib.sha256(f'{self.team_id}:r{n}'.encode()).hexdigest()[:16]}"
            cid = self.channel(channel).id
            self._response_urls[token] = ResponseUrl(token, user, cid, self.clock.now(), original)
            return f"{base_url.rstrip('/')}/response/{token}"

    def response_url(self, token: str) -> ResponseUrl | None:
        with self._lock:
            return self._response_urls.get(token)

    def bind_response_url(self, url: str, original: Message | Ephemeral) -> None:
        """Make ``original`` the message a later ``replace_original``/``delete_original`` acts on."""
        with self._lock:
            target = self._response_urls.get(url.rstrip("/").rsplit("/", 1)[-1])
            if target is not None:
                target.original = original

    def respond(self, token: str, body: JSON) -> Message | Ephemeral | None:
        """A post to a ``response_url``: an ephemeral by default, a channel message for
        ``response_type: in_channel``, or a replacement/deletion of the original."""
        with self._mutating() as changes:
            target = self._response_urls.get(token)
            if target is None:
                raise ApiError("invalid_url")
            if self.clock.now() - target.issued_at > RESPONSE_URL_TTL:
                raise ApiError("expired_url")
            if target.posts >= RESPONSE_URL_MAX_POSTS:
                raise ApiError("used_url")
            text = body.get("text")
            blocks = body.get("blocks")
            if blocks is not None and not isinstance(blocks, list):
                raise ApiError("invalid_blocks")
            original = target.original
            if body.get("delete_original") and original is not None:
                target.posts += 1
                original.deleted = True
                kind: ChangeKind = "message.deleted" if isinstance(original, Message) else "ephemeral.deleted"
                changes.append(self._change_for(kind, original))
                return None
            if body.get("replace_original") and original is not None and not original.deleted:
                if isinstance(original, Message):
                    self._edit(original, text=text or "", blocks=blocks if blocks is not None else [])
                    changes.append(self._change_for("message.updated", original))
                else:
                    self._check_content(text, blocks, None)
                    original.revisions.append(Revision(original.text, original.blocks, self._next_ts()))
                    original.text = text or ""
                    original.blocks = (
                        _assign_ids(blocks, f"{original.ts}:r{len(original.revisions)}") if blocks else None
                    )
                    changes.append(self._change_for("ephemeral.updated", original))
                target.posts += 1
                return original
            ch = self.channel(target.channel)
            thread_ts = body.get("thread_ts")
            result: Message | Ephemeral
            if body.get("response_type") == "in_channel":
                result = self._post(ch, text=text, blocks=blocks, thread_ts=thread_ts)
                changes.append(Change("message.posted", channel=ch.id, message=result))
            else:
                result = self._ephemeral(
                    ch, target.user, text=text, blocks=blocks, thread_ts=thread_ts, source="response_url"
                )
                changes.append(Change("ephemeral.posted", channel=ch.id, user=target.user, ephemeral=result))
                if target.original is None:
                    target.original = result  # a later replace_original replaces this reply
            target.posts += 1
            return result

    @staticmethod
    def _change_for(kind: ChangeKind, item: Message | Ephemeral) -> Change:
        if isinstance(item, Message):
            return Change(kind, channel=item.channel, message=item)
        return Change(kind, channel=item.channel, user=item.user, ephemeral=item)

    # -------------------------------------------------------------------------------- views

    def _build_view(
        self, user: str, spec: JSON, *, view_id: str | None = None, old: View | None = None
    ) -> View:
        vid = view_id or self._next_id("V")
        view_hash = self._new_hash()
        blocks = _assign_ids(list(spec.get("blocks") or []), f"{vid}:{view_hash}")
        state = _carry_state(old.state, blocks) if old is not None else initial_state(blocks)
        return View(
            id=vid,
            user=user,
            type=str(spec.get("type", "modal")),
            hash=view_hash,
            blocks=blocks,
            callback_id=str(spec.get("callback_id", "")),
            private_metadata=str(spec.get("private_metadata", "")),
            external_id=str(spec.get("external_id", "")),
            title=copy.deepcopy(spec.get("title")),
            submit=copy.deepcopy(spec.get("submit")),
            close=copy.deepcopy(spec.get("close")),
            notify_on_close=bool(spec.get("notify_on_close", False)),
            clear_on_close=bool(spec.get("clear_on_close", False)),
            state=state,
        )

    def _validate_view(
        self, spec: Any, kind: Literal["modal", "home"], *, replacing: View | None = None
    ) -> JSON:
        problems = view_problems(spec, kind=kind)
        if problems:
            raise ApiError("invalid_arguments", *problems)
        assert isinstance(spec, dict)
        external_id = spec.get("external_id")
        if external_id:
            for other in self._views.values():
                if other.external_id == external_id and not other.closed and other is not replacing:
                    raise ApiError("duplicate_external_id")
        return spec

    def open_view(self, trigger_id: str, spec: JSON) -> View:
        """``views.open``: a new modal stack for the trigger's user (replacing any open one)."""
        with self._mutating() as changes:
            trigger = self._check_trigger(trigger_id)
            self._validate_view(spec, "modal")
            for old in self._stacks[trigger.user]:
                old.closed = True
                changes.append(Change("view.closed", user=trigger.user, view=old))
            view = self._build_view(trigger.user, spec)
            view.root_view_id = view.id
            trigger.used = True
            self._views[view.id] = view
            self._stacks[trigger.user] = [view]
            changes.append(Change("view.opened", user=trigger.user, view=view))
            return view

    def push_view(self, trigger_id: str, spec: JSON) -> View:
        """``views.push``: a new view on top of the trigger's user's open modal (at most 3)."""
        with self._mutating() as changes:
            trigger = self._check_trigger(trigger_id)
            view = self._push(trigger.user, spec, changes)
            trigger.used = True
            return view

    def _push(self, user: str, spec: JSON, changes: list[Change]) -> View:
        stack = self._stacks[user]
        if not stack:
            raise ApiError("not_found", "no modal is open to push onto")
        if len(stack) >= MAX_VIEW_STACK:
            raise ApiError("push_limit_reached")
        self._validate_view(spec, "modal")
        view = self._build_view(user, spec)
        view.root_view_id = stack[0].id
        view.previous_view_id = stack[-1].id
        self._views[view.id] = view
        stack.append(view)
        changes.append(Change("view.pushed", user=user, view=view))
        return view

    def update_view(
        self,
        spec: JSON,
        *,
        view_id: str | None = None,
        external_id: str | None = None,
        hash: str | None = None,
    ) -> View:
        """``views.update``: replace an open modal (or a Home tab) in place; a stale ``hash`` is a
        ``hash_conflict``. Typed values survive where block_id, action_id and element type match."""
        with self._mutating() as changes:
            view = self._find_open_view(view_id, external_id)
            if hash is not None and hash != view.hash:
                raise ApiError("hash_conflict")
            self._validate_view(spec, "home" if view.type == "home" else "modal", replacing=view)
            self._replace(view, spec)
            changes.append(Change("view.updated", user=view.user, view=view))
            return view

    def _find_open_view(self, view_id: str | None, external_id: str | None) -> View:
        if not view_id and not external_id:
            raise ApiError("invalid_arguments", "view_id or external_id is required")
        for view in self._views.values():
            if not view.closed and (
                (view_id and view.id == view_id) or (external_id and view.external_id == external_id)
            ):
                return view
        raise ApiError("not_found")

    def _replace(self, view: View, spec: JSON) -> None:
        new = self._build_view(view.user, spec, view_id=view.id, old=view)
        for name in (
            "type",
            "hash",
            "blocks",
            "callback_id",
            "private_metadata",
            "external_id",
            "title",
            "submit",
            "close",
            "notify_on_close",
            "clear_on_close",
            "state",
        ):
            setattr(view, name, getattr(new, name))
        view.errors = {}
        view.updates += 1

    def publish_home(self, user: str, spec: JSON, *, hash: str | None = None) -> View:
        """``views.publish``: set ``user``'s App Home tab (the view keeps its id across publishes)."""
        with self._mutating() as changes:
            self.user(user)
            current = self._homes.get(user)
            if current is not None and hash is not None and hash != current.hash:
                raise ApiError("hash_conflict")
            self._validate_view(spec, "home", replacing=current)
            if current is None:
                current = self._build_view(user, spec)
                self._views[current.id] = current
                self._homes[user] = current
            else:
                self._replace(current, spec)
            changes.append(Change("home.published", user=user, view=current))
            return current

    # ----------------------------------------------------- what the Slack client does to views

    def set_view_state(self, view_id: str, block_id: str, action_id: str, value: JSON) -> View:
        """Record what the user typed/selected (``value`` is the element's ``state.values`` entry)."""
        with self._mutating() as changes:
            view = self.view(view_id)
            view.state.setdefault(block_id, {})[action_id] = copy.deepcopy(value)
            changes.append(Change("view.input", user=view.user, view=view))
            return view

    def set_view_errors(self, view_id: str, errors: dict[str, str]) -> View:
        with self._mutating() as changes:
            view = self.view(view_id)
            view.errors = dict(errors)
            changes.append(Change("view.updated", user=view.user, view=view))
            return view

    def replace_top_view(self, user: str, spec: JSON) -> View:
        """``response_action: update``: replace the top view (validated like ``views.update``)."""
        with self._mutating() as changes:
            view = self.top_view(user)
            if view is None:
                raise ApiError("not_found")
            self._validate_view(spec, "modal", replacing=view)
            self._replace(view, spec)
            changes.append(Change("view.updated", user=user, view=view))
            return view

    def push_view_for(self, user: str, spec: JSON) -> View:
        """``response_action: push``."""
        with self._mutating() as changes:
            return self._push(user, spec, changes)

    def close_top_view(self, user: str) -> View | None:
        """The user closes (or submits) the top view; the one below becomes visible."""
        with self._mutating() as changes:
            stack = self._stacks[user]
            if not stack:
                return None
            view = stack.pop()
            view.closed = True
            changes.append(Change("view.closed", user=user, view=view))
            return view

    def clear_views(self, user: str) -> list[View]:
        """``response_action: clear`` / ``clear_on_close``: close the whole stack."""
        with self._mutating() as changes:
            closed = list(reversed(self._stacks[user]))
            self._stacks[user] = []
            for view in closed:
                view.closed = True
                changes.append(Change("view.closed", user=user, view=view))
            return closed

    # -------------------------------------------------------------------------- serialising

    def message_dict(self, message: Message) -> JSON:
        """A message as Slack's Web API and interaction payloads show it."""
        with self._lock:
            data: JSON = {"type": "message", "text": message.text, "user": message.user, "ts": message.ts}
            if message.bot_id is not None:
                data["bot_id"] = message.bot_id
                data["app_id"] = self.app_id
                data["bot_profile"] = {
                    "id": message.bot_id,
                    "app_id": self.app_id,
                    "name": self.bot_name,
                    "deleted": False,
                    "team_id": self.team_id,
                }
            data["team"] = self.team_id
            if message.blocks is not None:
                data["blocks"] = copy.deepcopy(message.blocks)
            if message.attachments is not None:
                data["attachments"] = copy.deepcopy(message.attachments)
            if message.metadata is not None:
                data["metadata"] = copy.deepcopy(message.metadata)
            if message.thread_ts is not None:
                data["thread_ts"] = message.thread_ts
                if not message.is_reply:
                    replies = [
                        m for m in self._messages[message.channel] if m.is_reply and m.thread_ts == message.ts
                    ]
                    data["reply_count"] = len(replies)
                    data["reply_users"] = sorted({str(m.user) for m in replies})
                    if replies:
                        data["latest_reply"] = replies[-1].ts
                else:
                    data["parent_user_id"] = self._by_ts[(message.channel, message.thread_ts)].user
            if message.edits:
                data["edited"] = {"user": message.user, "ts": message.edits[-1].edited_ts}
            return data

    def view_dict(self, view: View) -> JSON:
        """A view as ``views.*`` responses and interaction payloads show it."""
        with self._lock:
            data: JSON = {
                "id": view.id,
                "team_id": self.team_id,
                "type": view.type,
                "blocks": copy.deepcopy(view.blocks),
                "private_metadata": view.private_metadata,
                "callback_id": view.callback_id,
                "state": {"values": copy.deepcopy(view.state)},
                "hash": view.hash,
                "clear_on_close": view.clear_on_close,
                "notify_on_close": view.notify_on_close,
                "root_view_id": view.root_view_id,
                "previous_view_id": view.previous_view_id,
                "app_id": self.app_id,
                "external_id": view.external_id,
                "app_installed_team_id": self.team_id,
                "bot_id": self.bot_id,
            }
            if view.type == "modal":
                data["title"] = copy.deepcopy(view.title)
                data["close"] = copy.deepcopy(view.close)
                data["submit"] = copy.deepcopy(view.submit)
            return data

    def channel_dict(self, channel: Channel) -> JSON:
        if channel.is_im:
            return {
                "id": channel.id,
                "created": channel.created,
                "is_im": True,
                "is_org_shared": False,
                "user": channel.dm_user,
                "is_user_deleted": False,
                "priority": 0,
            }
        return {
            "id": channel.id,
            "name": channel.name,
            "name_normalized": channel.name,
            "is_channel": not channel.is_private,
            "is_group": channel.is_private,
            "is_im": False,
            "is_mpim": False,
            "is_private": channel.is_private,
            "is_archived": channel.is_archived,
            "is_general": channel.name == "general",
            "is_shared": False,
            "is_ext_shared": False,
            "is_org_shared": False,
            "is_member": channel.is_member,
            "created": channel.created,
            "creator": "",
            "topic": {"value": "", "creator": "", "last_set": 0},
            "purpose": {"value": "", "creator": "", "last_set": 0},
            "num_members": len(channel.members) + (1 if channel.is_member else 0),
        }

    def user_dict(self, user: User) -> JSON:
        return {
            "id": user.id,
            "team_id": self.team_id,
            "name": user.name,
            "deleted": user.deleted,
            "real_name": user.real_name,
            "tz": user.tz,
            "tz_label": user.tz,
            "tz_offset": self.tz_offset(user),
            "is_admin": user.is_admin,
            "is_owner": False,
            "is_bot": user.is_bot,
            "is_app_user": False,
            "profile": {
                "real_name": user.real_name,
                "display_name": user.name,
                "real_name_normalized": user.real_name,
                "display_name_normalized": user.name,
                "team": self.team_id,
            },
        }

    def user_ref(self, user_id: str) -> JSON:
        """The ``user`` object of interaction payloads."""
        user = self.user(user_id)
        return {"id": user.id, "username": user.name, "name": user.name, "team_id": self.team_id}

    def team_ref(self) -> JSON:
        return {"id": self.team_id, "domain": self.team_domain}

    def channel_ref(self, channel: Channel) -> JSON:
        return {"id": channel.id, "name": "directmessage" if channel.is_im else channel.name}

    def now_ts(self) -> str:
        """The clock as a Slack ``action_ts``/``event_ts`` string (not necessarily unique)."""
        us = (self.clock.now() - _EPOCH) // timedelta(microseconds=1)
        return f"{us // 1_000_000}.{us % 1_000_000:06d}"
