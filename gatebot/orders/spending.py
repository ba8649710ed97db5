"""Daily spending limits and the approval decision: does this order go out, wait, or stop?

The rule is :meth:`Spending.over_limits`, a step of a unit of work. It runs twice for every order: early,
at quote time, so the modal can say so inline; and as the authority, inside the unit of work that saves
the intent (``Submitting._save_intent``) or confirms a batch (``gatebot.bulk``), under the store's
spending lock (``repo.lock_spending``), so two orders placed at the same moment cannot both pass on the
same remaining budget.

Must not import Slack or the scheduler.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlmodel import Session

from gatebot.money import Money
from gatebot.orders.base import ServiceBase
from gatebot.orders.model import OrderInvalid
from gatebot.orders.policy import LIMIT_WINDOW, LimitUse
from gatebot.store import repo
from gatebot.store.models import Order


class OverLimit(OrderInvalid):
    """An order (or a batch's total) of ``cost`` would go over ``use``'s limit, and the policy refuses it."""

    def __init__(self, use: LimitUse, cost: Money) -> None:
        self.use = use
        self.cost = cost
        super().__init__({"limit": use.message(cost) + " Ask finance to raise it, or order less."})


class Spending(ServiceBase):
    """The daily limits counted from the store, and the rule that routes an order to approval."""

    async def limit_uses(self, requester: str, roles: Iterable[str], currency: str) -> list[LimitUse]:
        """Each daily limit that applies to ``requester`` (holding ``roles``) in ``currency``, with what was
        used in the last 24 hours (estimated costs, open approval requests included)."""
        now = self.clock.now()
        held = frozenset(roles)
        if not self.approval_policy.limits_for(currency, held):
            return []
        return await self.db.run(lambda s: self._limit_uses(s, requester, held, currency, now))

    async def order_limit_uses(self, order: Order) -> list[LimitUse]:
        """The daily limits ``order`` counts against (its requester, with the roles they held when ordering)."""
        roles = repo.roles_of(order.requester_roles)
        return await self.limit_uses(order.requester, roles, order.currency)

    def _limit_uses(self, s: Session, requester: str, roles: Iterable[str], currency: str,
                    now: datetime) -> list[LimitUse]:
        limits = self.approval_policy.limits_for(currency, roles)
        since = now - LIMIT_WINDOW
        return [LimitUse(lim, Money(repo.spent_since(
            s, currency=currency, since=since, requester=requester if lim.role is None else None,
            role=lim.role), currency.upper())) for lim in limits]

    def over_limits(self, s: Session, cost: Money, requester: str, roles: Iterable[str], *, now: datetime,
                    lock: bool) -> list[str]:
        """THE daily-limit rule, as a step of the caller's unit of work: why spending ``cost`` more (one order,
        or a batch's total in one currency) must wait for approval, one reason per limit it goes over.
        Raises :class:`OverLimit` instead when the policy refuses such orders.

        ``lock``: take the store's spending lock first (``repo.lock_spending``), held until the caller's
        transaction ends — for the unit of work that also saves the spending, and then before it writes
        anything. Without limits that apply, there is nothing to lock: the spending counts against none.
        """
        held = frozenset(roles)
        if not self.approval_policy.limits_for(cost.currency, held):
            return []
        if lock:
            repo.lock_spending(s)
        reasons = []
        for use in self._limit_uses(s, requester, held, cost.currency, now):
            if use.exceeded_by(cost):
                if self.approval_policy.over_limit == "refuse":
                    raise OverLimit(use, cost)
                reasons.append(use.reason())
        return reasons

    def _approval_reason(self, s: Session, cost: Money, requester: str, roles: Iterable[str], *, now: datetime,
                         lock: bool) -> str | None:
        """Why an order costing ``cost`` must wait for approval (``None``: send it): the threshold, then the
        daily limits (:meth:`over_limits`, which raises :class:`OverLimit` when the policy refuses)."""
        reason = self.approval_policy.threshold_reason(cost)
        reasons = ([reason] if reason else []) + self.over_limits(s, cost, requester, roles, now=now, lock=lock)
        return "; ".join(reasons) or None
