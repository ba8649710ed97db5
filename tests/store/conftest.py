"""Fixtures for the order-store tests: fixed Fernet keys, a manual clock, and an order factory.

The database fixtures (``db_url``, ``database``, ``session``) come from ``tests/conftest.py`` and run
every test on SQLite and PostgreSQL.
"""

from __future__ import annotations

import base64
import itertools
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlmodel import Session

from gatebot.clock import ManualClock
from gatebot.store import repo
from gatebot.store.crypto import FernetCipher
from gatebot.store.models import Order

KEY_A = base64.urlsafe_b64encode(b"A" * 32).decode()
KEY_B = base64.urlsafe_b64encode(b"B" * 32).decode()
T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)

OrderFactory = Callable[..., Order]


@pytest.fixture
def cipher() -> FernetCipher:
    return FernetCipher([KEY_A])


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


def build_order(cipher: FernetCipher, n: int, *, now: datetime = T0, **overrides: Any) -> Order:
    """An unsaved voucher order with distinct refs; ``overrides`` replace any field."""
    body = {"product_id": 1, "currency_code": "USD", "external_ref": f"INV-{n}", "quantity": 1, "test": False}
    fields: dict[str, Any] = {
        "external_ref": f"INV-{n}",
        "idempotency_key": f"key-{n:04d}",
        "product_id": 1,
        "product_name": "Steam Gift Card 10 USD",
        "product_type": "redeem_card",
        "currency": "USD",
        "quantity": 1,
        "estimated_cost": Decimal("10.00"),
        "requester": "U123",
        "created_at": now,
        "updated_at": now,
    }
    fields.update(overrides)
    order = Order(**fields)
    order.set_secret_fields(cipher, body=body)
    return order


@pytest.fixture
def make_order(session: Session, cipher: FernetCipher) -> OrderFactory:
    """``make_order(**fields)`` inserts an order (via ``repo.add_order``) and returns it, flushed."""
    counter = itertools.count(1)

    def factory(**overrides: Any) -> Order:
        return repo.add_order(session, build_order(cipher, next(counter), **overrides))

    return factory
