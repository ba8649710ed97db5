"""The emulator's records: people, channels, messages, views, recorded calls and change notices.

Plain dataclasses the :class:`~gatebot.emulator.workspace.Workspace` keeps and hands out; the rules that
change them live in the workspace's modules. :class:`ApiError` is how every rule says no.

Must not import slack_bolt, slack_sdk, the scheduler or any HTTP library.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

JSON = dict[str, Any]


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
class Trigger:
    id: str
    user: str
    issued_at: datetime
    used: bool = False


@dataclass(frozen=True, slots=True)
class Fault:
    error: str
    retry_after: int | None = None


@dataclass(frozen=True, slots=True)
class FoundAction:
    """An interactive element found in blocks, with the block that holds it."""

    block_id: str
    block: JSON
    element: JSON

