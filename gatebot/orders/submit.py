"""Quote, persist the intent (committed before the first request), submit with the intent's own key.

Must not import Slack or the scheduler.
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from gatebot import gate
from gatebot.logcontext import log_context
from gatebot.orders.balances import Balances
from gatebot.orders.model import OrderDraft, OrderInvalid, Quote, order_id_of
from gatebot.orders.recording import _SUBMITTABLE, Recording
from gatebot.orders.spending import Spending
from gatebot.orders.validation import Validation
from gatebot.store import repo
from gatebot.store.models import Order, OrderStatus

log = logging.getLogger(__name__)


_REF_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U
#: How long a freshly saved intent is left to its own request before recovery may re-drive it.
SUBMIT_GRACE = timedelta(seconds=60)
#: Retry schedule for ``unknown`` orders (attempt n waits BACKOFF[min(n, len-1)]).
BACKOFF = (timedelta(seconds=15), timedelta(seconds=30), timedelta(minutes=1), timedelta(minutes=2),
           timedelta(minutes=5), timedelta(minutes=15))


def new_idempotency_key() -> str:
    return "gbk_" + secrets.token_hex(16)


def new_external_ref(now: datetime) -> str:
    """A readable reference such as ``GB-20261124-7K3Q``."""
    suffix = "".join(secrets.choice(_REF_ALPHABET) for _ in range(4))
    return f"GB-{now:%Y%m%d}-{suffix}"


def _backoff(attempts: int) -> timedelta:
    return BACKOFF[min(max(attempts - 1, 0), len(BACKOFF) - 1)]


class Submitting(Validation, Balances, Spending, Recording):
    """The way in: quote a draft, save its intent, send it."""

    # -- quote and place ------------------------------------------------------------------------------
    async def quote(self, draft: OrderDraft, *, balance_wait: float | None = None) -> Quote:
        """Validate, then check the balance in the order's currency (one ``GET /balance``).

        ``balance_wait`` bounds the wait for Gate (a Slack modal has 3 s): past it, the last known
        balance is used and the quote says so; the order is checked again by Gate itself.
        """
        await self._require_gate()
        product, request, cost = await self.validate(draft)
        snapshot = await self.balances(max_wait=balance_wait)
        available = snapshot.get(cost.currency)
        if available is None:
            raise OrderInvalid({"balance": f"The Gate account has no {cost.currency} balance."})
        if cost > available:
            short = cost - available
            raise OrderInvalid({"balance": (
                f"Not enough {cost.currency}: this order costs {cost} and {available} is available "
                f"(short by {short}). Ask finance for a deposit, then try again.")})
        now = self.clock.now()  # the early check, for the modal's inline error; _save_intent's is the authority
        approval = await self.db.run(lambda s: self._approval_reason(
            s, cost, draft.requester, draft.requester_roles, now=now, lock=False))
        return Quote(product=product, request=request, cost=cost, available=available,
                     balance_cached=snapshot.cached, approval=approval)

    async def place(self, draft: OrderDraft, *, actor: str | None = None) -> Order:
        """Quote, persist the intent, submit. Returns the order as stored after Gate's answer.

        Raises :class:`OrderInvalid` (nothing saved, nothing sent) or :class:`GateDown`. A draft that
        was already placed (``draft_id``) returns that order and sends nothing new.
        """
        order, _ = await self.place_new(draft, actor=actor)
        return order

    async def place_new(self, draft: OrderDraft, *, actor: str | None = None) -> tuple[Order, bool]:
        """:meth:`place`, saying whether this call placed the order.

        ``False``: the draft (``draft_id``) was already placed — by an earlier submit, or by a concurrent
        one that won the insert — and nothing was sent; the one that inserted the intent submits it.
        The store's unique ``draft_id`` is the one de-duplication mechanism, across tasks and processes.
        """
        draft_id = draft.draft_id
        if draft_id:
            existing = await self.db.run(lambda s: repo.order_by_draft(s, draft_id))
            if existing is not None:
                return existing, False
        quote = await self.quote(draft)
        order, created = await self._save_intent(quote, draft)
        if not created or order.status == OrderStatus.AWAITING_APPROVAL:
            return order, created  # an approval request is sent by approve(), never here
        return await self.submit(order_id_of(order), actor=actor or draft.requester), True

    async def save_intent(self, quote: Quote, draft: OrderDraft) -> Order:
        """Commit the order with a new idempotency key and its full body — before anything is sent.

        The approval rule and the daily limits are checked again as part of the save, against the spend
        as it is then (the quote's check may be stale: another order may have been saved since): over a
        limit the policy refuses raises :class:`OrderInvalid` (``limit``) and saves nothing. An order
        that needs approval is saved ``awaiting_approval`` (see ``Approvals``): it is sent only when a
        second person approves it, with this key and body."""
        order, _ = await self._save_intent(quote, draft)
        return order

    def intent_order(self, quote: Quote, draft: OrderDraft, *, external_ref: str, now: datetime,
                     status: OrderStatus, reason: str | None = None, approval_expires_at: datetime | None = None,
                     next_attempt_at: datetime | None = None) -> Order:
        """The row of an intent, not yet inserted: a new idempotency key, the exact request body and the
        customer account (both encrypted). The one place an order is built from a quote (single orders
        here, bulk rows in ``gatebot.bulk``)."""
        product = quote.product
        request = quote.request.model_copy(update={"external_ref": external_ref})
        top = request.topup_request
        order = Order(
            external_ref=external_ref, idempotency_key=new_idempotency_key(), product_id=product.id,
            product_name=product.name, product_type=product.type_code, currency=quote.cost.currency,
            amount=Decimal(top.amount) if top else None, quantity=request.quantity,
            estimated_cost=quote.cost.amount, is_test=request.test, status=status,
            requester=draft.requester, origin_channel=draft.origin_channel, attempts=0,
            draft_id=draft.draft_id, requester_roles=repo.roles_column(set(draft.requester_roles)),
            approval_expires_at=approval_expires_at, status_reason=reason,
            next_attempt_at=next_attempt_at, created_at=now, updated_at=now,
        )
        order.set_secret_fields(self.cipher, body=request.body(), account=dict(top.customer_account) if top else None)
        return order

    async def _save_intent(self, quote: Quote, draft: OrderDraft) -> tuple[Order, bool]:
        """The intent, committed (its own unit of work) when this returns; ``False``: the draft's order.

        The unit of work starts with the approval rule under the spending lock (:meth:`over_limits`), so
        the spend it reads cannot grow before this intent is part of it."""
        now = self.clock.now()
        product = quote.product
        chosen: list[str] = []
        approval: list[str | None] = []

        def insert(s: Session) -> Order:
            reason = self._approval_reason(s, quote.cost, draft.requester, draft.requester_roles, now=now,
                                           lock=True)
            approval.append(reason)
            awaiting = reason is not None
            expires = now + self.approval_policy.ttl if awaiting else None
            for _ in range(5):
                ref = quote.request.external_ref or new_external_ref(now)
                if quote.request.external_ref or not repo.external_ref_exists(s, ref):
                    break
            order = self.intent_order(
                quote, draft, external_ref=ref, now=now,
                status=OrderStatus.AWAITING_APPROVAL if awaiting else OrderStatus.SUBMITTING,
                reason=f"Needs approval: {reason}." if awaiting else None, approval_expires_at=expires,
                next_attempt_at=None if awaiting else now + SUBMIT_GRACE)
            chosen.append(ref)
            if not awaiting:
                return repo.add_order(s, order, actor=draft.requester, note="intent saved")
            repo.add_order(s, order, actor=draft.requester, note=f"approval requested: {reason}")
            repo.audit(s, actor=draft.requester, action="approval.request", target=order.number, allowed=True,
                       detail=f"{quote.cost}: {reason}", now=now)
            return order

        try:
            order = await self.db.run(insert)
        except IntegrityError:  # rolled back; a second unit of work says who holds the draft or the ref
            ref = chosen[-1]

            def holders(s: Session) -> tuple[Order | None, Order | None]:
                existing = repo.order_by_draft(s, draft.draft_id) if draft.draft_id else None
                return existing, None if existing is not None else repo.find_order(s, ref)

            existing, owner = await self.db.run(holders)
            if existing is not None:
                log.info("draft already placed as order #%s; not placing it twice", existing.id)
                return existing, False
            # A race lost to another intent with the same external_ref (checked before, taken since):
            # the same answer as a sequential duplicate, from the same rule.
            errors: dict[str, str] = {}
            self._check_ref(ref, owner, errors)
            if errors:
                raise OrderInvalid(errors) from None
            raise
        reason = approval[-1]
        log.info("order #%s intent saved (%s, ref %s)%s", order.id, product.name, order.external_ref,
                 "; awaiting approval" if reason else "")
        await self._emit("order.created", order)
        if reason:
            await self._emit("approval.requested", order, by=draft.requester, reason=reason)
        return order, True

    async def submit(self, order_id: int, *, actor: str = "system:submit") -> Order:
        """Send (or re-send) an order's create request with its own key and body; record the answer.

        The attempt is counted and committed (its own unit of work) before the request leaves. Every log
        line of the attempt — the Gate client's included — names the order (``order`` in JSON logs).
        """
        with log_context(order=f"#{order_id}"):
            return await self._submit(order_id, actor=actor)

    async def _submit(self, order_id: int, *, actor: str) -> Order:
        now = self.clock.now()

        def count_attempt(s: Session) -> tuple[Order, dict[str, Any] | None]:
            order = repo.get_order(s, order_id)
            if order is None:
                raise LookupError(f"no order #{order_id}")
            if order.status not in _SUBMITTABLE:
                return order, None
            body = order.request_body(self.cipher)
            order.attempts += 1
            order.next_attempt_at = now + _backoff(order.attempts)
            order.updated_at = now
            s.add(order)
            return order, body

        order, body = await self.db.run(count_attempt)
        if body is None:
            return order
        with log_context(external_ref=order.external_ref):
            key = order.idempotency_key
            try:
                result = await self.gate.create_order(body, idempotency_key=key)
            except gate.GateInsufficientBalance as exc:
                reason = (f"Gate says the {order.currency} balance is too low. "
                          + ("It will be retried automatically, with the same key, when a deposit posts."
                             if self.resume_on_deposit else "Place it again after a deposit posts."))
                return await self._transition(order_id, OrderStatus.WAITING_FUNDS, actor=actor, reason=reason,
                                        error_code=exc.code)
            except gate.GateIdempotencyConflict as exc:
                return await self._transition(order_id, OrderStatus.REJECTED, actor=actor, error_code=exc.code,
                                        reason="Gate holds a different order under this key; nothing more will "
                                               "be sent. Ask an admin to check it at Gate.")
            except (gate.GateRejected, gate.GateNotFound, gate.GateUnauthorized) as exc:
                return await self._transition(order_id, OrderStatus.REJECTED, actor=actor, error_code=exc.code,
                                        reason=f"Gate refused the order: {exc.message}")
            except gate.GateError as exc:
                # Timeout, reset, 5xx, 429, unreadable answer: the order may exist. Same key next time.
                log.warning("order #%s outcome unknown (%s); will retry with the same key", order_id,
                            type(exc).__name__)
                wait = exc.retry_after if isinstance(exc, gate.GateRateLimited) else None
                return await self._transition(order_id, OrderStatus.UNKNOWN, actor=actor, error_code=exc.code,
                                        not_before=now + timedelta(seconds=wait) if wait else None,
                                        reason="Gate did not give a clear answer; retrying with the same key "
                                               "(no duplicate can be created).")
            return await self._apply_gate_order(order_id, result.order, actor=actor)

