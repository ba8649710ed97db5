"""Who may see what: the access rules of the business, as pure functions of ids and role names.

:func:`may_see_codes` is the one rule for voucher codes and PINs: the requester always sees their own;
anyone else only with a role listed in ``GATEBOT_CODE_ROLES``. Where the person's roles come from (Slack
user lists and user groups: ``gatebot.slack.roles.Roles``) is the edge's business; what those roles
allow is decided here, so the Slack lookups, the Home tab and any later surface ask the same question.

Pure: no I/O. Must not import Slack, the scheduler, ``gatebot.slack``, ``gatebot.jobs``, ``gatebot.demo``
or ``gatebot.emulator``.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["may_see_codes"]


def may_see_codes(viewer: str, *, requester: str | None, roles: Iterable[str], code_roles: Iterable[str]) -> bool:
    """Whether ``viewer`` (holding ``roles``) may see the codes of an order placed by ``requester``.

    The requester always may; others need a role in ``code_roles`` (``GATEBOT_CODE_ROLES``, default admin)."""
    if requester is not None and viewer == requester:
        return True
    return bool(frozenset(code_roles) & frozenset(roles))
