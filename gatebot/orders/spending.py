"""Daily spending limits and the approval decision at quote time: does this order go out, wait, or stop?

Must not import Slack or the scheduler.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlmodel import Session

from gatebot.money import Money
from gatebot.orders.base import ServiceBase
from gatebot.orders.model import OrderDraft, OrderInvalid
from gatebot.orders.policy import LIMIT_WINDOW, LimitUse
from gatebot.store import repo
from gatebot.store.models import Order


class Spending(ServiceBase):
    """The daily limits counted from the store, and the rule that routes an order to approval."""

    async def limit_uses(self, requester: str, roles: Iterable[str], currency: str) -> list[LimitUse]:
        """Each daily limit that applies to ``requester`` (holding ``roles``) in ``currency``, with what was
        used in the last 24 hours (estimated costs, open approval requests included)."""
        limits = self.approval_policy.limits_for(currency, roles)
        if not limits:
            return []
        since = self.clock.now() - LIMIT_WINDOW

        def used(s: Session) -> list[LimitUse]:
            return [LimitUse(lim, Money(repo.spent_since(
                s, currency=currency, since=since, requester=requester if lim.role is None else None,
                role=lim.role), currency.upper())) for lim in limits]

        return await self.db.run(used)

    async def order_limit_uses(self, order: Order) -> list[LimitUse]:
        """The daily limits ``order`` counts against (its requester, with the roles they held when ordering)."""
        roles = repo.roles_of(order.requester_roles)
        return await self.limit_uses(order.requester, roles, order.currency)

    async def _approval_reason(self, cost: Money, draft: OrderDraft) -> str | None:
        """Why the order must wait for approval (``None``: send it). Raises :class:`OrderInvalid` (key
        ``limit``) when it would go over a daily limit and the policy refuses such orders."""
        policy = self.approval_policy
        reasons = [reason] if (reason := policy.threshold_reason(cost)) else []
        for use in await self.limit_uses(draft.requester, draft.requester_roles, cost.currency):
            if use.exceeded_by(cost):
                if policy.over_limit == "refuse":
                    raise OrderInvalid({"limit": use.message(cost) + " Ask finance to raise it, or order less."})
                reasons.append(use.reason())
        return "; ".join(reasons) or None
