"""Roles: who may do what in Slack, from ``GATEBOT_OPS`` / ``_FINANCE`` / ``_SUPPORT`` / ``_ADMINS``.

Each setting lists Slack user ids (``U…``/``W…``) and user-group ids (``S…``). A group's members are
resolved with ``usergroups.users.list`` and cached for :attr:`Roles.ttl` (5 minutes by default), so a
busy channel costs one API call per group per TTL, never one per request. A free Slack plan answers
``plan_upgrade_required``: that is logged once and the group counts as empty (list user ids instead).
Any other failure keeps the last known members (or none) and is retried after a short back-off.

``admin`` implies every role. Which role each ``/gate`` subcommand needs lives in
:mod:`gatebot.slack.grammar`; who may see voucher codes (besides the requester) is
``GATEBOT_CODE_ROLES``. Refusals are recorded by the listeners (see ``Deps.audit``), not here.

Nothing happens at import time. Must not import the store, the order pipeline or the scheduler.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from gatebot.clock import Clock, SystemClock
from gatebot.config import Settings
from gatebot.slack.grammar import ROLE_ADMIN, ROLE_FINANCE, ROLE_OPS, ROLE_SUPPORT, ROLES

__all__ = ["ALL_ROLES", "Roles", "is_user_id"]

log = logging.getLogger(__name__)

ALL_ROLES: frozenset[str] = frozenset(ROLES)
_USER_RE = re.compile(r"[UW][A-Z0-9]{2,}")
#: How long a failed group lookup is not retried (the stale member list, if any, is used meanwhile).
FAILURE_BACKOFF = timedelta(seconds=30)


def is_user_id(value: str | None) -> bool:
    """``True`` for a Slack user id (``U…``/``W…``) — not ``cli:alice`` or ``system:tracker``."""
    return bool(value) and _USER_RE.fullmatch(value or "") is not None


@dataclass(slots=True)
class _Group:
    members: frozenset[str]
    fetched_at: datetime | None  # None: never fetched successfully
    retry_at: datetime


class Roles:
    """Answers "which roles does this user have?" from the settings plus cached user-group members."""

    def __init__(
        self,
        members: Mapping[str, Iterable[str]],
        *,
        client: AsyncWebClient | None,
        clock: Clock | None = None,
        code_roles: Iterable[str] = (ROLE_ADMIN,),
        ttl: timedelta = timedelta(minutes=5),
        lookup_timeout: float = 2.0,
    ) -> None:
        unknown = set(members) - ALL_ROLES
        if unknown:
            raise ValueError(f"unknown role(s): {', '.join(sorted(unknown))}")
        self._users: dict[str, frozenset[str]] = {}
        self._groups: dict[str, tuple[str, ...]] = {}
        for role, ids in members.items():
            listed = [i.strip() for i in ids if i.strip()]
            self._users[role] = frozenset(i for i in listed if not i.startswith("S"))
            self._groups[role] = tuple(dict.fromkeys(i for i in listed if i.startswith("S")))
        self.client = client
        self.clock: Clock = clock or SystemClock()
        self.code_roles = frozenset(code_roles)
        self.ttl = ttl
        self.lookup_timeout = lookup_timeout
        self._cache: dict[str, _Group] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._warned_plan = False

    @classmethod
    def from_settings(cls, settings: Settings, *, client: AsyncWebClient | None, clock: Clock | None = None,
                      ttl: timedelta = timedelta(minutes=5)) -> Roles:
        return cls(
            {ROLE_OPS: settings.gatebot_ops, ROLE_FINANCE: settings.gatebot_finance,
             ROLE_SUPPORT: settings.gatebot_support, ROLE_ADMIN: settings.gatebot_admins},
            client=client, clock=clock, code_roles=settings.gatebot_code_roles, ttl=ttl,
        )

    # -- questions ------------------------------------------------------------------------------------
    async def of(self, user_id: str) -> frozenset[str]:
        """The user's roles; an admin has all of them. Group lookups happen only when needed."""
        direct = {role for role, users in self._users.items() if user_id in users}
        if ROLE_ADMIN in direct:
            return ALL_ROLES
        pending = [role for role, groups in self._groups.items() if groups and role not in direct]
        if pending:
            found = await asyncio.gather(*(self._in_any(user_id, self._groups[role]) for role in pending))
            direct.update(role for role, yes in zip(pending, found, strict=True) if yes)
        return ALL_ROLES if ROLE_ADMIN in direct else frozenset(direct)

    async def has(self, user_id: str, role: str | None) -> bool:
        """Whether the user may act as ``role`` (``None``: anyone)."""
        return role is None or bool({role, ROLE_ADMIN} & await self.of(user_id))

    def forget(self) -> None:
        """Drop the cached group members (the next question asks Slack again)."""
        self._cache.clear()

    # -- user groups ------------------------------------------------------------------------------------
    async def _in_any(self, user_id: str, groups: tuple[str, ...]) -> bool:
        for group in groups:
            if user_id in await self.members(group):
                return True
        return False

    async def members(self, group_id: str) -> frozenset[str]:
        """A user group's members (cached; empty when Slack cannot tell us)."""
        now = self.clock.now()
        cached = self._cache.get(group_id)
        if cached is not None and now < cached.retry_at:
            return cached.members
        lock = self._locks.setdefault(group_id, asyncio.Lock())
        async with lock:
            cached = self._cache.get(group_id)
            if cached is not None and self.clock.now() < cached.retry_at:
                return cached.members  # another task refreshed it while we waited
            return await self._fetch(group_id, cached)

    async def _fetch(self, group_id: str, cached: _Group | None) -> frozenset[str]:
        now = self.clock.now()
        stale = cached.members if cached is not None else frozenset()
        if self.client is None:
            self._cache[group_id] = _Group(frozenset(), None, now + self.ttl)
            return frozenset()
        try:
            response = await asyncio.wait_for(
                self.client.usergroups_users_list(usergroup=group_id), self.lookup_timeout)
            users = response.get("users") or []
        except SlackApiError as exc:
            error = str(exc.response.get("error", "unknown_error"))
            if error == "plan_upgrade_required":
                if not self._warned_plan:
                    self._warned_plan = True
                    log.warning("Slack user groups need a paid plan (plan_upgrade_required): group %s counts "
                                "as empty; list user ids in GATEBOT_OPS/FINANCE/SUPPORT/ADMINS instead", group_id)
                self._cache[group_id] = _Group(frozenset(), now, now + self.ttl)
                return frozenset()
            log.warning("could not read the members of user group %s (%s); using the last known list",
                        group_id, error)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            log.warning("could not read the members of user group %s (%s); using the last known list",
                        group_id, type(exc).__name__)
        else:
            members = frozenset(str(u) for u in users if isinstance(u, str))
            self._cache[group_id] = _Group(members, now, now + self.ttl)
            return members
        self._cache[group_id] = _Group(stale, cached.fetched_at if cached else None, now + FAILURE_BACKOFF)
        return stale
