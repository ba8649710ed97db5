"""The workspace's directory: people, user groups, channels and the bot's DMs, and how Slack shows them.

Must not import slack_bolt, slack_sdk, the scheduler or any HTTP library.
"""

from __future__ import annotations

from collections.abc import Sequence
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gatebot.emulator.model import JSON, ApiError, Channel, User, UserGroup
from gatebot.emulator.state import WorkspaceState


class Directory(WorkspaceState):
    """Users, user groups, channels and DMs: adding them, finding them (``channel_not_found``,
    ``user_not_found``, ``no_such_subteam``) and their Web API shapes."""

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

    # -------------------------------------------------------------------------- serialising

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
