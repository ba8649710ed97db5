"""Four-eyes decisions on approval requests: approve (then send the saved intent), reject, expire.

An order over the approval threshold (or a daily limit, when the policy routes it to approval) was saved
``awaiting_approval`` with its idempotency key and exact body (``Submitting._save_intent``). Here:

* :meth:`Approvals.approve` — an approver who is not the requester (``access.approval_refusal``), before
  the request expires, while the Gate circuit is closed, moves it ``awaiting_approval → submitting`` by
  compare-and-set (two approvers, a double click or a retry: exactly one wins) and sends the same intent
  through the ordinary submit path (too little balance: ``waiting_funds``, resumed by a deposit).
* :meth:`Approvals.reject` and :meth:`Approvals.expire_approvals` end the request as ``rejected`` with
  ``error_code`` ``approval_rejected`` / ``approval_expired``, without any Gate call.

Each decision is recorded on the order (``decided_by``/``decided_at``/``decision_reason``), in its
history and in the audit log, and published as ``order.<status>`` (the notifier re-renders the order
message) and ``approval.<decision>`` (for the surfaces that tell approvers and requesters).

Must not import Slack or the scheduler.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Final

from sqlmodel import Session

from gatebot.access import approval_refusal
from gatebot.orders.model import ApprovalRefused, order_id_of
from gatebot.orders.submit import SUBMIT_GRACE, Submitting
from gatebot.store import repo
from gatebot.store.models import Batch, Order, OrderStatus

log = logging.getLogger(__name__)

#: Who expires requests nobody decided in time (history and audit actor).
EXPIRY_ACTOR: Final = "system:approvals"
APPROVAL_REJECTED: Final = "approval_rejected"
APPROVAL_EXPIRED: Final = "approval_expired"


class Approvals(Submitting):
    """Decide approval requests; list the open ones."""

    def approver_refusal(self, approver: str, roles: Iterable[str], order: Order | Batch) -> str | None:
        """Why ``approver`` may not decide ``order`` or a bulk batch (``None``: they may); CLI identities listed
        in ``GATEBOT_CLI_APPROVERS`` hold the approver role."""
        held = set(roles)
        if approver in self.approval_policy.cli_approvers:
            held |= self.approval_policy.approver_roles
        return approval_refusal(approver, requester=order.requester, roles=held,
                                approver_roles=self.approval_policy.approver_roles)

    async def decision_refusal(self, order_id: int, approver: str, *, roles: Iterable[str] = ()) -> str | None:
        """Why ``approver`` may not decide ``order_id`` now (recorded in the audit log), or ``None``: asked
        before a surface opens a form to decide (the decision itself checks again)."""
        try:
            await self._decidable(order_id, approver, roles)
        except ApprovalRefused as exc:
            return str(exc)
        return None

    async def open_approvals(self, *, limit: int = 100) -> list[Order]:
        """Requests waiting for a decision, oldest first."""
        return await self.db.run(lambda s: repo.awaiting_approval(s, limit=limit))

    async def approve(self, order_id: int, approver: str, *, roles: Iterable[str] = ()) -> Order:
        """Approve a request and send its saved intent (same key, same body). Returns the order after
        Gate's answer. Raises :class:`ApprovalRefused` (nothing changed) or ``GateDown`` (still open)."""
        await self._decidable(order_id, approver, roles)
        await self._require_gate()  # the circuit: a request approved while Gate is down stays open
        order = await self._decide(order_id, approver, roles, OrderStatus.SUBMITTING, reason=None)
        await self._emit("order.submitting", order)
        await self._emit("approval.approved", order, by=approver)
        return await self.submit(order_id_of(order), actor=approver)

    async def reject(self, order_id: int, approver: str, reason: str, *, roles: Iterable[str] = ()) -> Order:
        """Reject a request with ``reason``: it ends ``rejected``, nothing is sent to Gate."""
        reason = " ".join(reason.split())
        if not reason:
            raise ApprovalRefused("Say why the order is rejected (the requester is told the reason).")
        await self._decidable(order_id, approver, roles)
        order = await self._decide(order_id, approver, roles, OrderStatus.REJECTED, reason=reason)
        await self._emit("order.rejected", order)
        await self._emit("approval.rejected", order, by=approver, reason=reason)
        return order

    async def expire_approvals(self) -> int:
        """End every request whose time ran out (the jobs call it every minute). Returns how many."""
        now = self.clock.now()
        expired: list[Order] = []

        def sweep(s: Session) -> None:
            for order in repo.approvals_expired(s, now):
                note = "The approval request expired before anyone approved it; nothing was sent to Gate."
                self._apply_decision(s, order, EXPIRY_ACTOR, now, OrderStatus.REJECTED, note,
                                     error_code=APPROVAL_EXPIRED, decision="expired")
                expired.append(order)

        try:
            await self.db.run(sweep)
        except repo.StatusConflict:  # someone decided one of them meanwhile: the next sweep does the rest
            log.info("an approval was decided while it expired; the next sweep retries")
            return 0
        for order in expired:
            await self._emit("order.rejected", order)
            await self._emit("approval.expired", order, by=EXPIRY_ACTOR)
        return len(expired)

    # -- the one compare-and-set ---------------------------------------------------------------------------
    async def _decidable(self, order_id: int, approver: str, roles: Iterable[str]) -> None:
        """Refuse (and audit) what cannot be decided, before anything else is asked."""
        now = self.clock.now()
        held = list(roles)

        def check(s: Session) -> str | None:
            order = repo.get_order(s, order_id)
            why = self._refusal(order, order_id, approver, held, now)
            if why is not None:
                repo.audit(s, actor=approver, action="approval.decide", target=f"#{order_id}", allowed=False,
                           detail=why, now=now)
            return why

        why = await self.db.run(check)
        if why is not None:
            raise ApprovalRefused(why)

    def _refusal(self, order: Order | None, order_id: int, approver: str, roles: Iterable[str],
                 now: datetime) -> str | None:
        if order is None:
            return f"There is no order #{order_id}."
        if OrderStatus(order.status) is not OrderStatus.AWAITING_APPROVAL:
            if order.error_code == APPROVAL_EXPIRED:
                return f"The approval request for order #{order_id} has expired; nothing changed."
            if order.decided_by:
                return (f"Order #{order_id} was already {_decision_word(order)} by {order.decided_by}; "
                        "nothing changed.")
            return f"Order #{order_id} is not waiting for approval (it is {order.status})."
        if order.approval_expires_at is not None and now >= order.approval_expires_at:
            return f"The approval request for order #{order_id} has expired; the requester can place it again."
        return self.approver_refusal(approver, roles, order)

    async def _decide(self, order_id: int, approver: str, roles: Iterable[str], to: OrderStatus, *,
                      reason: str | None) -> Order:
        now = self.clock.now()
        held = list(roles)

        def decide(s: Session) -> Order:
            order = repo.get_order(s, order_id)
            why = self._refusal(order, order_id, approver, held, now)
            if why is not None:
                raise ApprovalRefused(why)
            assert order is not None
            if to is OrderStatus.SUBMITTING:
                note = f"Approved by {approver}; sending it to Gate."
                self._apply_decision(s, order, approver, now, to, note, error_code=None, decision="approved")
            else:
                note = f"Rejected by {approver}: {reason}. Nothing was sent to Gate."
                self._apply_decision(s, order, approver, now, to, note, error_code=APPROVAL_REJECTED,
                                     decision="rejected", reason=reason)
            return order

        try:
            return await self.db.run(decide)
        except repo.StatusConflict:  # another approver (or a double click) decided first: theirs stands
            fresh = await self.db.run(lambda s: repo.get_order(s, order_id))
            assert fresh is not None
            raise ApprovalRefused(self._refusal(fresh, order_id, approver, held, now)
                                  or f"Order #{order_id} was decided by someone else just now.") from None

    def _apply_decision(self, s: Session, order: Order, actor: str, now: datetime, to: OrderStatus, note: str,
                        *, error_code: str | None, decision: str, reason: str | None = None) -> None:
        """Record the decision and move the order by compare-and-set (``repo.StatusConflict`` if it moved)."""
        order.decided_by, order.decided_at, order.decision_reason = actor, now, reason
        order.error_code = error_code
        order.status_reason = note
        order.next_attempt_at = now + SUBMIT_GRACE if to is OrderStatus.SUBMITTING else None
        repo.set_status(s, order, to, actor=actor, note=note, now=now)
        repo.audit(s, actor=actor, action=f"approval.{decision}", target=order.number, allowed=True,
                   detail=reason, now=now)


def _decision_word(order: Order) -> str:
    return "rejected" if order.error_code == APPROVAL_REJECTED else "approved"
