"""Quote, persist the intent (committed before the first request), submit with the intent's own key.

Must not import Slack or the scheduler.
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy.exc import IntegrityError

from gatebot import gate
from gatebot.orders.balances import Balances
from gatebot.orders.model import OrderDraft, OrderInvalid, Quote, order_id_of
from gatebot.orders.recording import _SUBMITTABLE, Recording
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


class Submitting(Validation, Balances, Recording):
    """The way in: quote a draft, save its intent, send it."""

    # -- quote and place ------------------------------------------------------------------------------
    async def quote(self, draft: OrderDraft, *, balance_wait: float | None = None) -> Quote:
        """Validate, then check the balance in the order's currency (one ``GET /balance``).

        ``balance_wait`` bounds the wait for Gate (a Slack modal has 3 s): past it, the last known
        balance is used and the quote says so; the order is checked again by Gate itself.
        """
        self._require_gate()
        product, request, cost = self.validate(draft)
        snapshot = await self.balances(max_wait=balance_wait)
        available = snapshot.get(cost.currency)
        if available is None:
            raise OrderInvalid({"balance": f"The Gate account has no {cost.currency} balance."})
        if cost > available:
            short = cost - available
            raise OrderInvalid({"balance": (
                f"Not enough {cost.currency}: this order costs {cost} and {available} is available "
                f"(short by {short}). Ask finance for a deposit, then try again.")})
        return Quote(product=product, request=request, cost=cost, available=available,
                     balance_cached=snapshot.cached)

    async def place(self, draft: OrderDraft, *, actor: str | None = None) -> Order:
        """Quote, persist the intent, submit. Returns the order as stored after Gate's answer.

        Raises :class:`OrderInvalid` (nothing saved, nothing sent) or :class:`GateDown`. A draft that
        was already placed (``draft_id``) returns that order and sends nothing new.
        """
        if draft.draft_id:
            with self.db.session() as s:
                existing = repo.order_by_draft(s, draft.draft_id)
            if existing is not None:
                return existing
        quote = await self.quote(draft)
        order = await self.save_intent(quote, draft)
        return await self.submit(order_id_of(order), actor=actor or draft.requester)

    async def save_intent(self, quote: Quote, draft: OrderDraft) -> Order:
        """Commit the order with a new idempotency key and its full body — before anything is sent."""
        now = self.clock.now()
        product = quote.product
        with self.db.session() as s:
            for _ in range(5):
                ref = quote.request.external_ref or new_external_ref(now)
                if quote.request.external_ref or not repo.external_ref_exists(s, ref):
                    break
            request = quote.request.model_copy(update={"external_ref": ref})
            top = request.topup_request
            order = Order(
                external_ref=ref, idempotency_key=new_idempotency_key(), product_id=product.id,
                product_name=product.name, product_type=product.type_code, currency=quote.cost.currency,
                amount=Decimal(top.amount) if top else None, quantity=request.quantity,
                estimated_cost=quote.cost.amount, status=OrderStatus.SUBMITTING, is_test=request.test,
                requester=draft.requester, origin_channel=draft.origin_channel, attempts=0,
                draft_id=draft.draft_id,
                next_attempt_at=now + SUBMIT_GRACE, created_at=now, updated_at=now,
            )
            order.set_secret_fields(self.cipher, body=request.body(),
                                    account=dict(top.customer_account) if top else None)
            try:
                repo.add_order(s, order, actor=draft.requester, note="intent saved")
                s.commit()
            except IntegrityError:
                s.rollback()
                existing = repo.order_by_draft(s, draft.draft_id) if draft.draft_id else None
                if existing is not None:
                    log.info("draft already placed as order #%s; not placing it twice", existing.id)
                    return existing
                # A race lost to another intent with the same external_ref (checked before, taken since):
                # the same answer as a sequential duplicate, from the same rule.
                errors: dict[str, str] = {}
                self._check_ref(ref, repo.find_order(s, ref), errors)
                if errors:
                    raise OrderInvalid(errors) from None
                raise
        log.info("order #%s intent saved (%s, ref %s)", order.id, product.name, ref)
        await self._emit("order.created", order)
        return order

    async def submit(self, order_id: int, *, actor: str = "system:submit") -> Order:
        """Send (or re-send) an order's create request with its own key and body; record the answer."""
        with self.db.session() as s:
            order = repo.get_order(s, order_id)
            if order is None:
                raise LookupError(f"no order #{order_id}")
            if order.status not in _SUBMITTABLE:
                return order
            body = order.request_body(self.cipher)
            key = order.idempotency_key
            order.attempts += 1
            order.next_attempt_at = self.clock.now() + _backoff(order.attempts)
            order.updated_at = self.clock.now()
            s.add(order)
            s.commit()
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
            return await self._transition(order_id, OrderStatus.UNKNOWN, actor=actor, error_code=exc.code,
                                    reason="Gate did not give a clear answer; retrying with the same key "
                                           "(no duplicate can be created).")
        return await self._apply_gate_order(order_id, result.order, actor=actor)

