"""The seeded catalog covers what the contract needs, and refuses inconsistent data."""

from __future__ import annotations

from decimal import Decimal

import pytest

from gatebot.sandbox.catalog import (
    ALWAYS_FAILS_PRODUCT_ID,
    DIRECT_TOP_UP,
    REDEEM_CARD,
    Catalog,
    ProductSpec,
    default_catalog,
)


def test_references_are_consistent() -> None:
    catalog = default_catalog()
    type_ids = {t.id for t in catalog.product_types}
    category_ids = {c.id for c in catalog.categories}
    assert type_ids == {1, 2, 3}
    assert {t.code for t in catalog.product_types} == {"redeem_card", "direct_transfer", "direct_top_up"}
    assert all(c.parent_id is None or c.parent_id in category_ids for c in catalog.categories)
    assert {c.parent_id is None for c in catalog.categories} == {True, False}
    for product in catalog.products:
        assert product.product_type_id in type_ids
        assert product.category_id in category_ids
        assert catalog.product(product.id) is product
    assert catalog.product(999_999) is None


def test_covers_the_cases_the_contract_needs() -> None:
    catalog = default_catalog()
    vouchers = [p for p in catalog.products if p.product_type_id == REDEEM_CARD]
    topups = [p for p in catalog.products if p.product_type_id == DIRECT_TOP_UP]
    assert vouchers and topups
    assert {p.currency_code for p in catalog.products} >= {"USD", "EUR", "GBP"}
    assert any(not p.is_active for p in vouchers) and any(not p.is_active for p in topups)
    assert any(p.account_fields for p in topups) and any(p.account_fields is None for p in topups)
    assert any(p.price != p.price.to_integral_value() for p in vouchers)  # 9.99
    assert any(p.step is not None and p.step != p.step.to_integral_value() for p in topups)  # 0.5
    assert all(p.margin > 0 for p in topups) and all(p.margin == 0 for p in vouchers)
    assert catalog.product(ALWAYS_FAILS_PRODUCT_ID) is not None
    assert set(catalog.balances) == {"USD", "EUR", "GBP"}
    assert {d.status for d in catalog.deposits} == {"posted", "pending", "rejected"}
    assert [d.status for d in catalog.deposits].count("pending") == 1
    assert [d.status for d in catalog.deposits].count("rejected") == 1


def test_product_456_is_the_documented_example() -> None:
    steam = default_catalog().product(456)
    assert steam is not None
    assert (steam.name, steam.product_type_id, steam.currency_code) == ("Steam Wallet Top Up", 3, "USD")
    assert [steam.price, steam.min_amount, steam.max_amount, steam.step] == [10, 5, 100, 1]
    assert steam.margin == Decimal("0.25")  # the docs' 10.00 top-up charged 12.50


def test_to_api_writes_whole_numbers_as_integers_and_the_margin_as_text() -> None:
    catalog = default_catalog()
    orange = catalog.product(459)
    assert orange is not None
    data = orange.to_api()
    assert data["step"] == Decimal("0.5") and str(data["step"]) == "0.5"
    assert str(data["max_amount"]) == "60" and str(data["price"]) == "10"
    assert data["margin"] == "0.08"
    assert "customer_account_fields" not in data
    steam = catalog.product(456)
    assert steam is not None
    fields = steam.to_api()["customer_account_fields"]
    assert fields[0] == {"name": "steam_login", "label": "Steam login", "type": "text", "required": True,
                         "pattern": "[A-Za-z0-9_]{3,32}"}
    assert fields[1] == {"name": "email", "label": "Email for the receipt", "type": "email",
                         "required": False}
    card = catalog.product(101)
    assert card is not None
    card_data = card.to_api()
    assert "margin" not in card_data and card_data["min_amount"] is None and card_data["step"] is None


def test_inconsistent_catalogs_are_refused() -> None:
    base = default_catalog()
    with pytest.raises(ValueError, match="unique"):
        Catalog(base.product_types, base.categories, base.products + base.products[:1], base.balances)
    with pytest.raises(ValueError, match="min_amount"):
        ProductSpec(1, "x", "x", 1, DIRECT_TOP_UP, "US", "USD", Decimal(1), "x")
    with pytest.raises(ValueError, match="positive step"):
        ProductSpec(1, "x", "x", 1, DIRECT_TOP_UP, "US", "USD", Decimal(1), "x", min_amount=Decimal(1),
                    max_amount=Decimal(2), step=Decimal(0))
