"""Roles: user ids and user groups from the settings, groups resolved through the Web API and cached."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from gatebot import access
from gatebot.clock import ManualClock
from gatebot.config import Settings
from gatebot.emulator import EmulatorServer, Workspace, running_emulator
from gatebot.slack.roles import ALL_ROLES, Roles, is_user_id


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    with running_emulator() as emu:
        yield emu


@pytest.fixture
def workspace(server: EmulatorServer, clock: ManualClock) -> Workspace:
    ws = Workspace.sample(clock=clock)
    ws.add_usergroup("ops", id="SOPS", members=["UBOB"])
    server.workspace = ws
    return ws


@pytest.fixture
def client(server: EmulatorServer, workspace: Workspace) -> AsyncWebClient:
    return AsyncWebClient(base_url=server.api_url, token=workspace.bot_token)


def roles_for(client: AsyncWebClient | None, clock: ManualClock, **settings: str) -> Roles:
    values: dict[str, Any] = {"gatebot_ops": "", "gatebot_finance": "", "gatebot_support": "",
                              "gatebot_admins": "", **settings}
    return Roles.from_settings(Settings(_env_file=None, **values), client=client, clock=clock)


async def test_user_ids_and_admin_has_every_role(client: AsyncWebClient, clock: ManualClock) -> None:
    roles = roles_for(client, clock, gatebot_ops="UBOB", gatebot_finance="UCAROL,UBOB", gatebot_admins="UALICE")
    assert await roles.of("UBOB") == {"ops", "finance"}
    assert await roles.of("UCAROL") == {"finance"}
    assert await roles.of("UALICE") == ALL_ROLES
    assert await roles.of("UZED") == frozenset()
    assert await roles.has("UALICE", "support") and not await roles.has("UCAROL", "ops")
    assert await roles.has("UZED", None), "no role needed"


async def test_groups_are_resolved_once_per_ttl(client: AsyncWebClient, clock: ManualClock,
                                                workspace: Workspace) -> None:
    roles = roles_for(client, clock, gatebot_ops="SOPS", gatebot_support="SAPPROVERS")
    assert await roles.of("UBOB") == {"ops", "support"}
    assert await roles.of("UALICE") == {"support"}
    assert await roles.of("UCAROL") == frozenset()
    assert len(workspace.calls("usergroups.users.list")) == 2, "one call per group, then the cache"

    workspace.usergroups["SOPS"].members.append("UCAROL")
    assert await roles.of("UCAROL") == frozenset(), "still cached"
    clock.advance(timedelta(minutes=5, seconds=1))
    assert await roles.of("UCAROL") == {"ops"}
    assert len(workspace.calls("usergroups.users.list")) == 4


async def test_a_direct_admin_needs_no_group_lookup(client: AsyncWebClient, clock: ManualClock,
                                                    workspace: Workspace) -> None:
    roles = roles_for(client, clock, gatebot_ops="SOPS", gatebot_admins="UALICE")
    assert await roles.of("UALICE") == ALL_ROLES
    assert workspace.calls("usergroups.users.list") == []


async def test_free_plan_warns_once_and_groups_count_as_empty(client: AsyncWebClient, clock: ManualClock,
                                                              workspace: Workspace,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    workspace.paid_plan = False
    roles = roles_for(client, clock, gatebot_ops="SOPS,UCAROL", gatebot_support="SAPPROVERS")
    with caplog.at_level(logging.WARNING, logger="gatebot.slack.roles"):
        assert await roles.of("UBOB") == frozenset()
        assert await roles.of("UCAROL") == {"ops"}, "listed user ids still work"
    warnings = [r for r in caplog.records if "plan_upgrade_required" in r.getMessage()]
    assert len(warnings) == 1


async def test_a_failed_lookup_keeps_the_last_known_members(client: AsyncWebClient, clock: ManualClock,
                                                            workspace: Workspace) -> None:
    roles = roles_for(client, clock, gatebot_ops="SOPS")
    assert await roles.of("UBOB") == {"ops"}
    clock.advance(timedelta(minutes=6))
    workspace.fail_next("usergroups.users.list", "internal_error")
    assert await roles.of("UBOB") == {"ops"}, "stale members beat locking everyone out"
    assert await roles.of("UBOB") == {"ops"}
    assert len(workspace.calls("usergroups.users.list")) == 2, "a failure is not retried at once"


async def test_who_may_see_codes(client: AsyncWebClient, clock: ManualClock) -> None:
    """Roles supplies the person's roles and GATEBOT_CODE_ROLES; the rule itself is the core's."""

    async def may_see_codes(roles: Roles, user: str, *, requester: str) -> bool:
        return access.may_see_codes(user, requester=requester, roles=await roles.of(user),
                                    code_roles=roles.code_roles)

    roles = roles_for(client, clock, gatebot_support="UCAROL", gatebot_admins="UALICE")
    assert await may_see_codes(roles, "UBOB", requester="UBOB")
    assert await may_see_codes(roles, "UALICE", requester="UBOB")  # GATEBOT_CODE_ROLES defaults to admin
    assert not await may_see_codes(roles, "UCAROL", requester="UBOB")
    wider = Roles.from_settings(Settings(_env_file=None, gatebot_support="UCAROL", gatebot_code_roles="support"),
                                client=None, clock=clock)
    assert await may_see_codes(wider, "UCAROL", requester="UBOB")


def test_unknown_roles_are_refused_and_user_ids_recognised() -> None:
    with pytest.raises(ValueError, match="unknown role"):
        Roles({"superuser": ["U1"]}, client=None)
    assert is_user_id("U0123ABC") and is_user_id("WABC123")
    assert not is_user_id("cli:alice") and not is_user_id("system:tracker") and not is_user_id(None)
