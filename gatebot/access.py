"""Who may see what: the access rules of the business, as pure functions of ids and role names.

:func:`may_see_codes` is the one rule for voucher codes and PINs: the requester always sees their own;
anyone else only with a role listed in ``GATEBOT_CODE_ROLES``. :func:`approval_refusal` is the one rule
for who may decide an approval request (four eyes: an approver role, never the requester);
:func:`batch_control_refusal` for who may pause, resume or cancel a bulk batch (its requester, or an admin). Where the
person's roles come from (Slack user lists and user groups: ``gatebot.slack.roles.Roles``) is the
edge's business; what those roles allow is decided here, so the Slack lookups, the Home tab and any
later surface ask the same question.

Pure: no I/O. Must not import Slack, the scheduler, ``gatebot.slack``, ``gatebot.jobs``, ``gatebot.demo``
or ``gatebot.emulator``.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["approval_refusal", "batch_control_refusal", "may_see_codes"]


def may_see_codes(viewer: str, *, requester: str | None, roles: Iterable[str], code_roles: Iterable[str],
                  bulk_row: bool = False) -> bool:
    """Whether ``viewer`` (holding ``roles``) may see the codes of an order placed by ``requester``.

    The requester always may; others need a role in ``code_roles`` (``GATEBOT_CODE_ROLES``, default admin).
    A row of a bulk batch (``bulk_row``) shows its codes to nobody: they are only in the results file sent
    to the requester by DM (issue 14)."""
    if bulk_row:
        return False
    if requester is not None and viewer == requester:
        return True
    return bool(frozenset(code_roles) & frozenset(roles))


def approval_refusal(approver: str, *, requester: str | None, roles: Iterable[str],
                     approver_roles: Iterable[str]) -> str | None:
    """Why ``approver`` (holding ``roles``) may NOT decide a request placed by ``requester``; ``None``: they may.

    Four eyes: never the requester, even one holding an approver role; otherwise a role in
    ``approver_roles`` (``GATEBOT_APPROVER_ROLES``, default finance and admin) is needed."""
    if requester is not None and approver == requester:
        return "You placed this order, so someone else has to approve or reject it (four-eyes rule)."
    if not frozenset(approver_roles) & frozenset(roles):
        wanted = " or ".join(sorted(approver_roles)) or "an approver role"
        return f"Only {wanted} may approve or reject orders."
    return None


def batch_control_refusal(actor: str, *, requester: str, roles: Iterable[str]) -> str | None:
    """Why ``actor`` (holding ``roles``) may NOT pause, resume or cancel a bulk batch placed by ``requester``;
    ``None``: they may. The requester may, and so may an admin (someone has to stop a runaway batch)."""
    if actor == requester or "admin" in frozenset(roles):
        return None
    return "Only the person who placed the batch, or an admin, may pause, resume or cancel it."
