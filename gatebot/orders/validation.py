"""Checking a draft against the cached catalog and the store, before anything is sent to Gate.

Must not import Slack or the scheduler.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from sqlmodel import Session

from gatebot import logs
from gatebot.gate.models import (
    CreateOrderRequest,
    ProductKind,
    TopupRequest,
    unorderable_reason,
)
from gatebot.money import Money, MoneyError, parse_decimal
from gatebot.orders.base import ServiceBase
from gatebot.orders.model import OrderDraft, OrderInvalid
from gatebot.orders.validation_rules import _EMAIL_RE, _KEY_RE, _PHONE_RE, _REF_RE, _full_match
from gatebot.store import repo
from gatebot.store.models import CatalogProduct, Order

log = logging.getLogger(__name__)

#: A valid draft: its product, the exact request body and the estimated cost.
Judged = tuple[CatalogProduct, CreateOrderRequest, Money]


#: What validation needs from the store for one draft: the product, the order holding the reference, and
#: whether the catalog was never loaded.
Facts = tuple[CatalogProduct | None, Order | None, bool]


def _facts(s: Session, drafts: Sequence[OrderDraft]) -> list[Facts]:
    """The facts of each draft, loaded once for all of them (a bulk file's 5,000 rows are a few queries).

    Products are looked up once per distinct id or slug (``repo.get_product``). The order holding a
    reference is what ``repo.find_order`` says: the exact ``external_ref`` matches come from one ``IN``
    query per 500 references; only a reference ``find_order`` could also read as our number, a Gate id or
    an idempotency key (digits, 32+ characters, ``gbk_...``) and that no order holds as its external_ref
    is asked of ``find_order`` itself.
    """
    empty = repo.catalog_refreshed_at(s) is None
    products: dict[str, CatalogProduct | None] = {}
    for draft in drafts:
        key = str(draft.product).strip()
        if key and key not in products:
            products[key] = repo.get_product(s, draft.product)
    refs = {draft.external_ref.strip() for draft in drafts if draft.external_ref and draft.external_ref.strip()}
    owners: dict[str, Order | None] = dict(repo.orders_by_external_refs(s, refs))
    for ref in refs - owners.keys():
        if ref.isdigit() or len(ref) >= 32 or ref.startswith("gbk_"):
            owners[ref] = repo.find_order(s, ref)
    return [(products.get(str(draft.product).strip()),
             owners.get(draft.external_ref.strip()) if draft.external_ref else None, empty) for draft in drafts]


class Validation(ServiceBase):
    """Draft validation (store only: instant, and works while Gate is down)."""

    # -- validation ---------------------------------------------------------------------------------
    async def validate(self, draft: OrderDraft) -> Judged:
        """Check a draft against the cached catalog and our store; no request is sent.

        Returns the product, the exact request body and the estimated cost, or raises
        :class:`OrderInvalid` with every problem found.
        """
        (facts,) = await self.db.run(lambda s: _facts(s, [draft]))
        return self._judge(draft, *facts)

    async def validate_many(self, drafts: Sequence[OrderDraft]) -> list[Judged | OrderInvalid]:
        """:meth:`validate` for many drafts at once (a bulk file): the same rules, the store's facts loaded
        once for all of them. Each draft gets its result or the :class:`OrderInvalid` it would raise."""
        facts = await self.db.run(lambda s: _facts(s, drafts))
        results: list[Judged | OrderInvalid] = []
        for draft, (product, owner, empty) in zip(drafts, facts, strict=True):
            try:
                results.append(self._judge(draft, product, owner, empty))
            except OrderInvalid as exc:
                results.append(exc)
        return results

    def _judge(self, draft: OrderDraft, product: CatalogProduct | None, ref_owner: Order | None,
               catalog_empty: bool) -> Judged:
        errors: dict[str, str] = {}
        if product is None:
            if not str(draft.product).strip():
                errors["product"] = "Choose a product."
            elif catalog_empty:
                errors["product"] = "The product catalog is empty: it has not been loaded from Gate yet."
            else:
                errors["product"] = f"There is no product {draft.product!r} in the catalog."
            raise OrderInvalid(errors)
        if not product.is_active:
            errors["product"] = f"{product.name} is not available right now (inactive at Gate)."

        request_ref = self._check_ref(draft.external_ref, ref_owner, errors)
        cost: Money | None = None
        topup: TopupRequest | None = None
        quantity = 1
        if product.kind is ProductKind.UNKNOWN:
            errors["product"] = unorderable_reason(product.name)
        elif product.kind is ProductKind.TOP_UP:
            amount = self._check_amount(product, draft.amount, errors)
            if draft.quantity not in (None, "", 1, "1"):
                errors["quantity"] = "Top-ups are bought one at a time: the quantity must be 1."
            account = self._check_account(product, draft.account, errors)
            if amount is not None:
                margin = product.margin if product.margin is not None else self.default_margin
                cost = amount.times(Decimal(1) + margin)
                topup = TopupRequest(amount=amount.as_api(), customer_account=account)
        else:
            quantity = self._check_quantity(draft.quantity, errors)
            if product.price is None:
                errors["product"] = f"{product.name} has no price in the catalog; refresh the catalog."
            elif quantity:
                cost = Money.rounded(product.price, product.currency).times(quantity)
        if errors or cost is None:
            raise OrderInvalid(errors or {"product": "This product cannot be ordered."})
        request = CreateOrderRequest(
            product_id=product.id, currency_code=product.currency, external_ref=request_ref,
            quantity=quantity, test=draft.test, topup_request=topup,
        )
        return product, request, cost

    @staticmethod
    def _check_ref(ref: str | None, owner: Order | None, errors: dict[str, str]) -> str | None:
        if ref is None or not ref.strip():
            return None
        ref = ref.strip()
        if not _REF_RE.match(ref):
            errors["external_ref"] = ("A reference is 1-64 letters, digits and . _ : / # - "
                                      "(starting with a letter or digit), e.g. INV-1001.")
        elif owner is not None:
            errors["external_ref"] = (f"{ref} is already used by order #{owner.id} ({owner.status}); "
                                      "use another reference, or look that order up.")
        return ref

    @staticmethod
    def _check_amount(product: CatalogProduct, raw: Any, errors: dict[str, str]) -> Money | None:
        cur = product.currency
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            errors["amount"] = f"Enter the amount to top up, in {cur}."
            return None
        try:
            amount = Money.parse(raw, cur)
        except MoneyError as exc:
            errors["amount"] = f"Enter the amount as a number like 25.00 ({exc})."
            return None
        lo = Money.rounded(product.min_amount, cur) if product.min_amount is not None else None
        hi = Money.rounded(product.max_amount, cur) if product.max_amount is not None else None
        if amount.amount <= 0:
            errors["amount"] = "The amount must be more than zero."
        elif (lo and amount < lo) or (hi and amount > hi):
            errors["amount"] = (f"The amount must be between {lo or Money.zero(cur)} and {hi}." if hi
                                else f"The amount must be at least {lo}.")
        elif product.step and product.step > 0 and (amount.amount - (lo.amount if lo else 0)) % product.step:
            step = Money.rounded(product.step, cur)
            base = lo.amount if lo else Decimal(0)
            below = base + ((amount.amount - base) // product.step) * product.step
            errors["amount"] = (f"The amount must go in steps of {step} — e.g. "
                                f"{Money.rounded(below, cur)} or {Money.rounded(below + product.step, cur)}.")
        else:
            return amount
        return None

    @staticmethod
    def _check_quantity(raw: Any, errors: dict[str, str]) -> int:
        if raw is None or raw == "":
            return 1
        try:
            quantity = int(parse_decimal(raw, what="quantity")) if not isinstance(raw, int) else raw
            if Decimal(str(raw).strip()) != quantity:
                raise ValueError
        except (MoneyError, ValueError, ArithmeticError):
            errors["quantity"] = "The quantity must be a whole number from 1 to 100."
            return 0
        if not 1 <= quantity <= 100:
            errors["quantity"] = "The quantity must be a whole number from 1 to 100."
            return 0
        return quantity

    def _check_account(self, product: CatalogProduct, given: Mapping[str, str],
                       errors: dict[str, str]) -> dict[str, str]:
        values = {k.strip(): (v or "").strip() for k, v in given.items()}
        logs.remember_secrets(*values.values())  # before any reply can echo them (Bolt logs replies at DEBUG)
        fields = self.fields_for(product)
        if fields is None:
            present = {k: v for k, v in values.items() if v}
            if not present:
                errors["account"] = ("Enter the customer's account as key=value lines, "
                                     "e.g. player_id=123456 (ask the vendor which fields it needs).")
            for key in present:
                if not _KEY_RE.match(key):
                    errors["account"] = f"{key!r} is not a valid field name (letters, digits, _ . -)."
            return present
        result: dict[str, str] = {}
        known = {f.name for f in fields}
        for f in fields:
            value = values.get(f.name, "")
            label = f.display_label
            if not value:
                if f.required:
                    errors[f"account.{f.name}"] = f"{label} is required for {product.name}."
                continue
            if f.type == "email" and not _EMAIL_RE.match(value):
                errors[f"account.{f.name}"] = f"{label} must be an email address like name@example.com."
            elif f.type == "phone" and not _PHONE_RE.match(value):
                errors[f"account.{f.name}"] = f"{label} must be a phone number like +14155550123."
            elif f.pattern and not _full_match(f.pattern, value):
                errors[f"account.{f.name}"] = f"{label} is not in the expected format ({f.pattern})."
            else:
                result[f.name] = value
        extra = sorted(k for k, v in values.items() if k not in known and v)
        if extra:
            errors["account"] = (f"{product.name} does not take {', '.join(extra)}; "
                                 f"its fields are {', '.join(sorted(known)) or 'none'}.")
        return result

