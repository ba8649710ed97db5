"""The state of an emulated Slack workspace, and the operations Slack performs on it.

Everything the emulator knows lives in one :class:`Workspace`: people, user groups, channels and
DMs, the messages in them (with edit history), ephemeral messages, modal stacks and App Home tabs,
issued ``trigger_id``s and ``response_url``s, injected faults, and a log of every Web API call.
The Web API (:mod:`gatebot.emulator.web_api`) and the driver (:mod:`gatebot.emulator.driver`) are
thin translators between HTTP and the methods here; the rules Slack enforces (``not_in_channel``,
trigger expiry, ``hash_conflict``, the 3-view stack, the 5-post ``response_url`` limit, Block Kit
limits) are enforced here, as :class:`ApiError`.

The class is assembled from one module per concern, each a layer on the one before::

    state.WorkspaceState          identity, lock, ids/timestamps, listeners, call log, faults
      directory.Directory         users, user groups, channels, DMs
        conversations.Conversations   messages, threads, edits, ephemerals
          responses.ResponseUrls      response_url posts
        views.Views               trigger_ids, modal stacks, Home tabs
    Workspace(ResponseUrls, Views)

with the records in :mod:`~gatebot.emulator.model` and the Block Kit rules in
:mod:`~gatebot.emulator.blockkit`. Everything is re-exported here, so ``from gatebot.emulator.workspace
import ...`` keeps working.
Thread safety: the Web API usually runs on a server thread while a test or the demo reads and drives
the workspace from another, so every mutation holds one re-entrant lock. Change listeners are called
after the lock is released, on the thread that made the change: keep them short (a terminal UI should
hand the :class:`Change` to its own loop with ``loop.call_soon_threadsafe``).

Ids and timestamps come from counters and the injected :class:`~gatebot.clock.Clock`, so a run with a
:class:`~gatebot.clock.ManualClock` is fully deterministic.

Must not import slack_bolt, slack_sdk, the scheduler or any HTTP library.
"""

from __future__ import annotations

from typing import Any

from gatebot.clock import Clock
from gatebot.emulator.blockkit import (
    LIST_STATE_KEYS,
    STATE_KEYS,
    block_problems,
    find_action,
    find_actions,
    initial_state,
    iter_elements,
    number_problem,
    view_problems,
)
from gatebot.emulator.files import UploadedFile
from gatebot.emulator.model import (
    ApiError,
    Call,
    Change,
    ChangeKind,
    Channel,
    Ephemeral,
    FoundAction,
    Message,
    ResponseUrl,
    Revision,
    User,
    UserGroup,
    View,
)
from gatebot.emulator.responses import ResponseUrls
from gatebot.emulator.views import TRIGGER_TTL, Views

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


class Workspace(ResponseUrls, Views):
    """One emulated Slack workspace (team) with one bot user, the app under test.

    Keyword options (all defaulted): ``team_id``, ``team_domain``, ``team_name``, ``bot_user_id``,
    ``bot_id``, ``bot_name``, ``app_id``, ``bot_token``, ``clock`` and ``paid_plan`` (see
    :class:`~gatebot.emulator.state.WorkspaceState`).
    """

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

    def upload_file(self, user: str, filename: str, content: bytes, *, filetype: str | None = None) -> UploadedFile:
        """``user`` picks a file in a ``file_input``: the Slack client uploads it at once (the view's state then
        holds its file object; see :mod:`gatebot.emulator.files`). ``filetype`` defaults to the extension."""
        with self._lock:
            self.user(user)
            file_id = f"F{len(self.files) + 1:08d}"
            kind = filetype or (filename.rsplit(".", 1)[-1].lower() if "." in filename else "text")
            uploaded = UploadedFile(file_id, filename, len(content), content=content, user=user, filetype=kind,
                                    created=int(self.clock.now().timestamp()))
            self.files[file_id] = uploaded
            return uploaded
