"""Lookups people type (ISSUE 11 defect 9) and hostile text (ISSUE 10 hole 8), on SQLite and PostgreSQL.

``find_orders``: an exact match first (``find_order``'s rules); failing that, the external_ref
without regard to case, and the orders whose Gate id starts with what was typed (a receipt's first
8 characters). Several matches are all returned, never guessed between. LIKE wildcards typed by a
person are literal characters.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from sqlmodel import Session

from gatebot.gate.models import Product
from gatebot.store import repo
from gatebot.store.models import Order
from tests.store.conftest import OrderFactory

GATE_A = "3f2b6c1e-8d4a-4f5e-9b7c-1a2b3c4d5e6f"
GATE_B = "3f2b6c1e-0000-4f5e-9b7c-1a2b3c4d5e6f"  # same first 8 characters as GATE_A
GATE_C = "9a8b7c6d-1111-4f5e-9b7c-1a2b3c4d5e6f"


def _ids(orders: list[Order]) -> list[int]:
    return [o.id or 0 for o in orders]


def test_external_ref_in_another_case(session: Session, make_order: OrderFactory) -> None:
    order = make_order(external_ref="INV-1001")
    assert _ids(repo.find_orders(session, "inv-1001")) == [order.id]
    assert _ids(repo.find_orders(session, "  `Inv-1001` ")) == [order.id]


def test_an_exact_match_wins_over_a_case_insensitive_one(session: Session, make_order: OrderFactory) -> None:
    upper = make_order(external_ref="INV-7")
    lower = make_order(external_ref="inv-7")
    assert _ids(repo.find_orders(session, "inv-7")) == [lower.id]
    assert _ids(repo.find_orders(session, "INV-7")) == [upper.id]
    both = repo.find_orders(session, "Inv-7")
    assert sorted(_ids(both)) == sorted([upper.id or 0, lower.id or 0]), "two matches are listed, not guessed"


def test_gate_id_prefix(session: Session, make_order: OrderFactory) -> None:
    a = make_order(gate_order_id=GATE_A)
    c = make_order(gate_order_id=GATE_C)
    assert _ids(repo.find_orders(session, "9a8b7c6d")) == [c.id]
    assert _ids(repo.find_orders(session, "9A8B7C6D")) == [c.id]
    assert _ids(repo.find_orders(session, GATE_A[:13])) == [a.id]
    b = make_order(gate_order_id=GATE_B)
    assert sorted(_ids(repo.find_orders(session, "3f2b6c1e"))) == sorted([a.id or 0, b.id or 0])
    assert repo.find_orders(session, "3f2b") == [], "too short a prefix matches nothing"


def test_like_wildcards_are_literal(session: Session, make_order: OrderFactory) -> None:
    make_order(gate_order_id=GATE_A, external_ref="INV_1")
    make_order(gate_order_id=GATE_C, external_ref="INVX1")
    assert repo.find_orders(session, "%%%%%%%%") == []
    assert repo.find_orders(session, "________") == []
    assert repo.find_orders(session, "3f2b6c1_") == []
    assert repo.find_orders(session, "3f2b6c%") == []
    (found,) = repo.find_orders(session, "inv_1")
    assert found.external_ref == "INV_1"


def test_the_limit_is_kept(session: Session, make_order: OrderFactory) -> None:
    for n in range(5):
        make_order(gate_order_id=f"abcdef12-{n:04d}-4f5e-9b7c-1a2b3c4d5e6f")
    assert len(repo.find_orders(session, "abcdef12", limit=3)) == 3


def test_nul_and_control_characters_are_no_database_error(session: Session, make_order: OrderFactory) -> None:
    order = make_order(external_ref="INV-1")
    assert repo.find_order(session, "INV-1\x00") == order
    assert _ids(repo.find_orders(session, "inv-1\x00\x07")) == [order.id]
    assert repo.find_orders(session, "\x00") == []
    assert repo.find_orders(session, "\ud800") == []
    assert repo.search_products(session, "steam\x00 \ud800") == []


def test_a_huge_search_is_no_database_error(session: Session) -> None:
    now = datetime(2026, 11, 24, tzinfo=UTC)
    repo.replace_catalog(session, [Product(id=1, name="Steam Gift Card", slug="steam", currency_code="USD",
                                           price=Decimal(20))], {}, now=now)
    session.commit()
    assert [p.id for p in repo.search_products(session, "steam " * 20_000)] == [1]
    assert repo.search_products(session, " ".join(f"w{n}" for n in range(20_000))) == []
