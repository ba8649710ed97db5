"""A product whose Gate type gatebot cannot map is still ordered the way its own shape says, and the
order form, the validation, the product list and the CLI table agree on it (ISSUE 11 defect 7).

The catalog is reloaded with no type map at all, so every product's type is ``unknown``: top-ups keep
their amount range (the form asks for an amount and the account), vouchers keep their price (the form
asks for a quantity). A product with neither cannot be ordered, and every surface says so.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from gatebot.gate.models import Product, ProductKind, product_kind
from gatebot.orders import OrderDraft, OrderInvalid
from gatebot.slack import ids
from gatebot.store import repo
from gatebot.textview import products_table

from .conftest import OPS, Harness

STEAM_20 = 101  # voucher, USD 20
FREE_FIRE = 460  # USD 1-200 step 0.5; no account fields anywhere: free-form key=value
STEAM_TOPUP = 456  # steam_login (required) + email
MYSTERY = 990  # no price, no amount range, no fields


async def _unmapped_catalog(h: Harness) -> None:
    """Reload the catalog as if Gate's product types had codes gatebot does not know."""
    products = [p async for p in h.core.orders.gate.iter_products(page_size=100)]
    mystery = Product(id=MYSTERY, name="Mystery Box", slug="mystery-box", product_type_id=77, currency_code="USD")
    with h.core.db.session() as s:
        repo.replace_catalog(s, [*products, mystery], {}, now=h.clock.now())
        s.commit()


def _block_ids(blocks: list[dict[str, Any]]) -> set[str]:
    return {b.get("block_id", "") for b in blocks}


@pytest.mark.parametrize(("code", "shape", "kind"), [
    ("redeem_card", {}, ProductKind.VOUCHER),
    ("direct_top_up", {}, ProductKind.TOP_UP),
    ("direct_transfer", {}, ProductKind.TOP_UP),
    ("unknown", {"price": Decimal(5)}, ProductKind.VOUCHER),
    ("unknown", {"price": Decimal(5), "min_amount": Decimal(1)}, ProductKind.TOP_UP),
    ("unknown", {"max_amount": Decimal(1)}, ProductKind.TOP_UP),
    ("unknown", {"publishes_account_fields": True}, ProductKind.TOP_UP),
    ("unknown", {}, ProductKind.UNKNOWN),
    (None, {}, ProductKind.UNKNOWN),
])
def test_the_one_rule(code: str | None, shape: dict[str, Any], kind: ProductKind) -> None:
    args = {"price": None, "min_amount": None, "max_amount": None, "publishes_account_fields": False, **shape}
    assert product_kind(code, **args) is kind


async def test_an_unmapped_top_up_is_ordered_with_an_amount_and_an_account(harness: Harness) -> None:
    h = harness
    await _unmapped_catalog(h)
    product = await h.core.orders.product(FREE_FIRE)
    assert product is not None and product.type_code == "unknown" and product.kind is ProductKind.TOP_UP
    view = await h.open_modal(OPS)
    await h.choose_product(OPS, view, FREE_FIRE)
    blocks = _block_ids(view.blocks)
    assert {ids.ORDER_AMOUNT, ids.ORDER_ACCOUNT_FREE} <= blocks and ids.ORDER_QUANTITY not in blocks
    h.driver.set_input(view, ids.ORDER_AMOUNT, ids.ORDER_AMOUNT, "10")
    h.driver.set_input(view, ids.ORDER_ACCOUNT_FREE, ids.ORDER_ACCOUNT_FREE, "player_id=123456")
    reviewed = await h.submit(OPS, view)
    assert reviewed.response_action == "push", reviewed.errors
    assert reviewed.view is not None
    placed = await h.submit(OPS, reviewed.view)
    assert placed.closed
    await h.settle()
    (order,) = h.orders()
    assert order.amount == Decimal("10.00") and order.kind is ProductKind.TOP_UP


async def test_an_unmapped_top_up_with_published_fields_shows_them(harness: Harness) -> None:
    h = harness
    await _unmapped_catalog(h)
    view = await h.open_modal(OPS)
    await h.choose_product(OPS, view, STEAM_TOPUP)
    assert ids.account_block_id("steam_login") in _block_ids(view.blocks)


async def test_an_unmapped_voucher_is_ordered_by_quantity(harness: Harness) -> None:
    h = harness
    await _unmapped_catalog(h)
    view = await h.open_modal(OPS)
    await h.choose_product(OPS, view, STEAM_20)
    blocks = _block_ids(view.blocks)
    assert ids.ORDER_QUANTITY in blocks and ids.ORDER_AMOUNT not in blocks
    h.driver.set_input(view, ids.ORDER_QUANTITY, ids.ORDER_QUANTITY, "2")
    reviewed = await h.submit(OPS, view)
    assert reviewed.response_action == "push", reviewed.errors
    # The core agrees with the form: a quantity, no amount asked for.
    quote = await h.core.orders.quote(OrderDraft(product=STEAM_20, requester=OPS, quantity=2))
    assert quote.cost.amount == Decimal("40.00") and quote.request.topup_request is None


async def test_a_product_of_unknown_kind_is_refused_the_same_way_everywhere(harness: Harness) -> None:
    h = harness
    await _unmapped_catalog(h)
    with pytest.raises(OrderInvalid) as info:
        await h.core.orders.quote(OrderDraft(product=MYSTERY, requester=OPS, quantity=1))
    why = info.value.errors["product"]
    assert why.startswith("Mystery Box can't be ordered")
    view = await h.open_modal(OPS)
    await h.choose_product(OPS, view, MYSTERY, query="mystery")
    blocks = _block_ids(view.blocks)
    assert ids.ORDER_QUANTITY not in blocks and ids.ORDER_AMOUNT not in blocks
    assert why in str(view.blocks)
    result = await h.submit(OPS, view, force=True)
    assert result.errors == {ids.ORDER_PRODUCT: why}
    assert h.gate_creates() == 0 and h.orders() == []
    with h.core.db.session() as s:
        table = products_table(repo.search_products(s, "mystery"))
    assert "unknown" in table
