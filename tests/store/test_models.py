"""Column types and Order helpers: aware UTC timestamps, lossless Decimals, statuses, secrets, Money."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import text
from sqlalchemy.exc import StatementError
from sqlmodel import Session

from gatebot.money import Money
from gatebot.store import repo
from gatebot.store.crypto import FernetCipher, PlainCipher
from gatebot.store.db import Database
from gatebot.store.models import FINAL_STATUSES, OPEN_STATUSES, Order, OrderStatus
from tests.store.conftest import KEY_A, T0, OrderFactory, build_order

VOUCHER = "ABCD-EFGH-IJKL"
ACCOUNT = {"steam_login": "player123", "email": "user@example.com"}


def _reload(database: Database, order_id: int) -> Order:
    with database.session() as s:
        order = repo.get_order(s, order_id)
    assert order is not None
    return order


def test_status_sets_partition_the_statuses() -> None:
    assert set(OrderStatus) == OPEN_STATUSES | FINAL_STATUSES
    assert not OPEN_STATUSES & FINAL_STATUSES
    assert OrderStatus("waiting_funds") is OrderStatus.WAITING_FUNDS


def test_timestamps_come_back_aware_utc(database: Database, session: Session, make_order: OrderFactory) -> None:
    india = timezone(timedelta(hours=5, minutes=30))
    local = datetime(2026, 11, 24, 14, 30, 0, 123456, tzinfo=india)
    order = make_order(created_at=local, updated_at=local, next_attempt_at=T0)
    session.commit()
    loaded = _reload(database, order.id or 0)
    assert loaded.created_at == local
    assert loaded.created_at.tzinfo is UTC
    assert loaded.created_at == datetime(2026, 11, 24, 9, 0, 0, 123456, tzinfo=UTC)
    assert loaded.next_attempt_at is not None and loaded.next_attempt_at.tzinfo is UTC
    assert loaded.submitted_at is None


def test_comparisons_work_across_offsets(session: Session, make_order: OrderFactory) -> None:
    """A query bound in another offset must compare as the same instant (SQLite stores UTC text)."""
    make_order(created_at=T0, updated_at=T0)
    session.commit()
    same_instant_elsewhere = T0.astimezone(timezone(timedelta(hours=-7)))
    assert len(repo.list_orders(session, since=same_instant_elsewhere)) == 1
    assert repo.list_orders(session, since=same_instant_elsewhere + timedelta(microseconds=1)) == []


def test_naive_timestamps_are_refused(session: Session, make_order: OrderFactory) -> None:
    with pytest.raises(StatementError, match="naive datetime"):
        make_order(created_at=datetime(2026, 11, 24, 9, 0))


@pytest.mark.parametrize(
    "amount",
    ["12.50", "0.000000000000000001", "123456789012345678901234567890.123456789", "1E+3", "-0.00", "10"],
)
def test_decimals_survive_exactly(database: Database, session: Session, make_order: OrderFactory, amount: str) -> None:
    order = make_order(amount=Decimal(amount), charged_amount=Decimal(amount))
    session.commit()
    loaded = _reload(database, order.id or 0)
    assert isinstance(loaded.amount, Decimal)
    # same value AND same representation (digits and exponent): "12.50" stays "12.50", not "12.5"
    assert loaded.amount.as_tuple() == Decimal(amount).as_tuple()
    assert loaded.charged_amount is not None
    assert loaded.charged_amount.as_tuple() == Decimal(amount).as_tuple()


def test_amounts_are_stored_as_text(session: Session, make_order: OrderFactory) -> None:
    order = make_order(charged_amount=Decimal("12.50"))
    session.commit()
    raw = session.connection().execute(text("SELECT charged_amount FROM orders WHERE id = :id"), {"id": order.id})
    assert raw.scalar_one() == "12.50"


def test_float_amounts_are_refused(session: Session, make_order: OrderFactory) -> None:
    with pytest.raises(StatementError, match="float"):
        make_order(amount=12.5)


def test_status_column_rejects_unknown_values(session: Session, make_order: OrderFactory) -> None:
    with pytest.raises(ValueError, match="'shipped' is not a valid OrderStatus"):
        make_order(status="shipped")


def test_status_reads_back_as_the_enum(database: Database, session: Session, make_order: OrderFactory) -> None:
    order = make_order(status="pending")
    session.commit()
    assert _reload(database, order.id or 0).status is OrderStatus.PENDING


def test_number_and_money_accessors(session: Session, make_order: OrderFactory) -> None:
    order = make_order(currency="EUR", amount=Decimal("10.00"), charged_amount=Decimal("12.50"))
    assert order.number == f"#{order.id}"
    assert order.money("charged_amount") == Money(Decimal("12.50"), "EUR")
    assert order.money("amount") == Money(Decimal("10.00"), "EUR")
    assert order.money("balance_after") is None
    with pytest.raises(ValueError, match="not an amount field"):
        order.money("quantity")  # type: ignore[arg-type]
    assert order.is_open and not order.is_final
    assert build_order(FernetCipher([KEY_A]), 99).number == "#?"


def test_secret_fields_are_encrypted_in_the_row(
    database: Database, session: Session, cipher: FernetCipher, make_order: OrderFactory
) -> None:
    order = make_order()
    order.set_secret_fields(cipher, account=ACCOUNT, content={"voucher_code": VOUCHER})
    session.commit()
    raw = (
        session.connection()
        .execute(
            text("SELECT request_body_enc, customer_account_enc, order_content_enc FROM orders WHERE id = :id"),
            {"id": order.id},
        )
        .one()
    )
    for value in raw:
        assert value.startswith("f1:")
    joined = " ".join(raw)
    for plaintext in (VOUCHER, "player123", "user@example.com", "INV-"):
        assert plaintext not in joined
    loaded = _reload(database, order.id or 0)
    assert loaded.content(cipher) == {"voucher_code": VOUCHER}
    assert loaded.account(cipher) == ACCOUNT
    assert loaded.request_body(cipher)["product_id"] == 1


def test_secret_fields_can_be_cleared_but_not_the_body(cipher: FernetCipher) -> None:
    order = build_order(cipher, 1)
    order.set_secret_fields(cipher, content={"vendor_order_id": "LC-1"})
    order.set_secret_fields(cipher, account=ACCOUNT)  # leaves content alone
    assert order.content(cipher) == {"vendor_order_id": "LC-1"}
    order.set_secret_fields(cipher, content=None)
    assert order.content(cipher) is None
    assert order.account(cipher) == ACCOUNT
    with pytest.raises(ValueError, match="cannot be cleared"):
        order.set_secret_fields(cipher, body=None)


def test_request_body_is_kept_exactly_for_retries(cipher: FernetCipher) -> None:
    body = {
        "product_id": 456,
        "currency_code": "USD",
        "external_ref": "INV-1001",
        "quantity": 1,
        "test": False,
        "topup_request": {"amount": "10.00", "customer_account": ACCOUNT},
    }
    order = build_order(cipher, 1)
    order.set_secret_fields(cipher, body=body)
    assert order.request_body(cipher) == body
    assert list(order.request_body(cipher)) == list(body)  # key order too: same bytes on the wire


def test_plain_cipher_writes_readable_p1_values(cipher: FernetCipher) -> None:
    order = build_order(cipher, 1)
    order.set_secret_fields(PlainCipher(), content={"voucher_code": VOUCHER})
    assert order.order_content_enc is not None and order.order_content_enc.startswith("p1:")
    # a key added later still reads what was written without one
    assert order.content(FernetCipher([KEY_A])) == {"voucher_code": VOUCHER}


def test_order_without_body_has_no_request_body(cipher: FernetCipher) -> None:
    order = build_order(cipher, 1)
    order.request_body_enc = ""
    with pytest.raises(ValueError, match="no stored request body"):
        order.request_body(cipher)
