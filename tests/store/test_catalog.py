"""Catalog cache: replace (upsert + deactivate), lookups by id/slug, substring search, refresh time."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlmodel import Session

from gatebot.gate.models import CustomerAccountField, Product
from gatebot.money import Money
from gatebot.store import repo
from tests.store.conftest import T0

TYPES = {1: "redeem_card", 2: "direct_transfer", 3: "direct_top_up"}


def product(pid: int, name: str, slug: str, **extra: Any) -> Product:
    fields: dict[str, Any] = {
        "id": pid,
        "name": name,
        "slug": slug,
        "currency_code": "usd",
        "product_type_id": 1,
    }
    fields.update(extra)
    return Product.model_validate(fields)


STEAM = product(
    456,
    "Steam Wallet Top Up",
    "steam-wallet-top-up",
    product_type_id=3,
    category_id=7,
    region_code="US",
    price=10,
    min_amount=5,
    max_amount="100.00",
    step=1,
    margin="0.25",
    description="Adds funds",
    customer_account_fields=[{"name": "steam_login", "label": "Steam login", "required": True, "pattern": "^\\w+$"}],
)
XBOX = product(457, "Xbox Gift Card 25%_off", "xbox-25", price="25.00")
PSN = product(458, "PlayStation Network Card", "PSN-card", product_type_id=99)


def test_replace_catalog_inserts_everything(session: Session) -> None:
    changes = repo.replace_catalog(session, [STEAM, XBOX, PSN], TYPES, T0)
    assert changes == repo.CatalogChanges(added=[456, 457, 458], deactivated=[], reactivated=[], active=3)
    steam = repo.get_product(session, 456)
    assert steam is not None
    assert (
        steam.name,
        steam.slug,
        steam.type_code,
        steam.currency,
        steam.category_id,
        steam.region_code,
    ) == ("Steam Wallet Top Up", "steam-wallet-top-up", "direct_top_up", "USD", 7, "US")
    assert steam.money("price") == Money(Decimal("10"), "USD")
    assert (steam.min_amount, steam.max_amount, steam.step, steam.margin) == (
        Decimal(5),
        Decimal("100.00"),
        Decimal(1),
        Decimal("0.25"),
    )
    assert steam.refreshed_at == T0 and steam.is_active and steam.description == "Adds funds"
    assert steam.account_fields() == [
        CustomerAccountField(name="steam_login", label="Steam login", required=True, pattern="^\\w+$")
    ]
    unknown_type = repo.get_product(session, 458)
    assert unknown_type is not None and unknown_type.type_code == "unknown"
    xbox = repo.get_product(session, 457)
    assert xbox is not None and xbox.account_fields() is None


def test_replace_catalog_updates_deactivates_and_reactivates(session: Session) -> None:
    repo.replace_catalog(session, [STEAM, XBOX, PSN], TYPES, T0)
    renamed = product(457, "Xbox Gift Card", "xbox-25", price="30.00")
    t1 = T0 + timedelta(hours=1)
    changes = repo.replace_catalog(session, [STEAM, renamed], TYPES, t1)
    assert changes == repo.CatalogChanges(added=[], deactivated=[458], reactivated=[], active=2)
    xbox = repo.get_product(session, 457)
    assert xbox is not None and xbox.name == "Xbox Gift Card" and xbox.price == Decimal("30.00")
    gone = repo.get_product(session, 458)
    assert gone is not None and not gone.is_active and gone.refreshed_at == t1  # kept for old orders
    changes = repo.replace_catalog(session, [STEAM, renamed, PSN], TYPES, t1 + timedelta(hours=1))
    assert changes.reactivated == [458] and changes.active == 3


def test_inactive_products_from_gate_stay_inactive(session: Session) -> None:
    repo.replace_catalog(session, [product(1, "Old Card", "old", is_active=False)], TYPES, T0)
    old = repo.get_product(session, 1)
    assert old is not None and not old.is_active
    assert repo.search_products(session, "old") == []
    assert [p.id for p in repo.search_products(session, "old", active_only=False)] == [1]


def test_get_product_by_id_or_slug(session: Session) -> None:
    repo.replace_catalog(session, [STEAM, XBOX, PSN], TYPES, T0)
    for key in (456, "456", " steam-wallet-top-up ", "STEAM-wallet-top-up"):
        found = repo.get_product(session, key)
        assert found is not None and found.id == 456, key
    psn = repo.get_product(session, "PSN-card")
    assert psn is not None and psn.id == 458
    assert repo.get_product(session, "psn-card") == psn
    assert repo.get_product(session, "nope") is None
    assert repo.get_product(session, "") is None
    assert repo.get_product(session, 1) is None


def test_search_products_is_case_insensitive_substring(session: Session) -> None:
    repo.replace_catalog(session, [STEAM, XBOX, PSN], TYPES, T0)

    def ids(query: str, **kwargs: Any) -> list[int]:
        return [p.id for p in repo.search_products(session, query, **kwargs)]

    assert ids("STEAM") == [456]
    assert ids("wallet top") == [456]  # every word must match, in any order
    assert ids("top wallet") == [456]
    assert ids("card") == [458, 457]  # sorted by name
    assert ids("psn") == [458]  # slug matches too
    assert ids("25%_") == [457]  # LIKE wildcards are literal characters
    assert ids("%") == [457]
    assert ids("st%m") == [] and ids("st_am") == []  # would match "steam" if they were wildcards
    assert ids("") == [458, 456, 457]
    assert ids("card", limit=1) == [458]
    assert ids("457") == [457]  # a number also matches the id
    assert ids("nothing like it") == []


def test_catalog_refreshed_at(session: Session) -> None:
    assert repo.catalog_refreshed_at(session) is None
    repo.replace_catalog(session, [STEAM], TYPES, T0)
    assert repo.catalog_refreshed_at(session) == T0
    repo.replace_catalog(session, [], TYPES, T0 + timedelta(hours=1))  # an empty catalog is still a refresh
    assert repo.catalog_refreshed_at(session) == T0 + timedelta(hours=1)


def test_find_products_is_the_one_search_rule(session: Session) -> None:
    """The search every surface uses (modal type-ahead, /gate products, /gate buy, gatebot products)."""
    from gatebot.orders import find_products

    old = product(459, "Another Steam Card", "old-steam", is_active=False)
    repo.replace_catalog(session, [STEAM, XBOX, PSN, old], TYPES, T0)

    def ids(query: str, *, active_only: bool = True) -> list[int]:
        return [p.id for p in find_products(session, query, active_only=active_only)]

    assert ids("STEAM") == [456]
    assert ids("steam", active_only=False) == [456, 459]  # active first, then by name
    assert ids("", active_only=False) == [458, 456, 457, 459]
    assert ids("top-up us") == [456]  # kind and region match too (the store's name query finds nothing)
    assert ids("voucher USD") == [457]  # PSN's type is unknown to us, so it is no voucher
    assert ids("457") == [457]
    assert ids("nothing like it") == []
