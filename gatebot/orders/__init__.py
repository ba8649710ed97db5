"""The order pipeline: validate → pre-check balance → persist intent → submit → track → recover.

The one rule that keeps money safe: the intent (idempotency key, external_ref, full request body) is
committed to the store **before** the first request leaves, and every later attempt for that intent
sends the same key and the same body. A crash, timeout or 5xx therefore leaves an order in
``submitting``/``unknown`` that :meth:`OrderService.recover` re-drives until Gate gives a definitive
answer; Gate's idempotency turns every repeat into the original order. Never a new key for an intent.

Status machine (ours, see ``store.models.OrderStatus``)::

    submitting ─┬─> pending ──> completed | failed      (Gate's answers; tracked in bulk)
                ├─> unknown ──> (recover: same key) ──> pending | rejected | waiting_funds
                ├─> waiting_funds ──> (deposit posted: same key) ──> pending | ...
                ├─> rejected                             (a definitive 4xx, reason recorded)
                └─> needs_attention                      (Gate's order id is held by another of our
                                                          orders: logged, left to a person)

    awaiting_approval ─┬─> submitting (approved by another person: the same key and body) ─> ...
                       └─> rejected    (rejected by an approver, or expired: nothing sent)

Every transition goes through ``repo.set_status`` (appends history) and publishes an ``order.<status>``
event on the bus; ``order.created`` is published when the intent is saved.

The package, one module per part: ``model`` (drafts, quotes, errors), ``validation_rules`` and
``validation``, ``balances``, ``recording`` (Gate's answers), ``submit`` (quote, intent, submit),
``tracking`` (track, recover, resume), ``policy`` and ``spending`` (approval threshold, daily limits,
checked again under a lock in the unit of work that saves an intent),
``approvals`` (approve, reject, expire), ``drafts`` (a person's reviewed draft between review and
place) and ``service`` (:class:`OrderService`, assembled from those parts). Import from here.

Must not import Slack or the scheduler.
"""

from gatebot.orders.approvals import APPROVAL_EXPIRED, APPROVAL_REJECTED
from gatebot.orders.catalog_search import find_products, match_products
from gatebot.orders.drafts import Drafts, DraftState, OpenedDraft
from gatebot.orders.model import (
    ApprovalRefused,
    BalanceSnapshot,
    GateDown,
    OrderDraft,
    OrderInvalid,
    Quote,
    TrackResult,
)
from gatebot.orders.policy import LIMIT_WINDOW, ApprovalPolicy, LimitUse
from gatebot.orders.service import OrderService
from gatebot.orders.spending import OverLimit
from gatebot.orders.submit import BACKOFF, SUBMIT_GRACE, new_external_ref, new_idempotency_key
from gatebot.orders.tracking import SINGLE_FETCH_LIMIT
from gatebot.orders.validation_rules import account_fields_for, parse_account_lines

__all__ = [
    "APPROVAL_EXPIRED",
    "APPROVAL_REJECTED",
    "BACKOFF",
    "LIMIT_WINDOW",
    "SINGLE_FETCH_LIMIT",
    "SUBMIT_GRACE",
    "ApprovalPolicy",
    "ApprovalRefused",
    "BalanceSnapshot",
    "DraftState",
    "Drafts",
    "GateDown",
    "LimitUse",
    "OpenedDraft",
    "OrderDraft",
    "OrderInvalid",
    "OrderService",
    "OverLimit",
    "Quote",
    "TrackResult",
    "account_fields_for",
    "find_products",
    "match_products",
    "new_external_ref",
    "new_idempotency_key",
    "parse_account_lines",
]
