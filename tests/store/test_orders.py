"""Order queries: add, find by any reference, lists, due/open orders, compare-and-set status changes."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from gatebot.store import repo
from gatebot.store.crypto import FernetCipher
from gatebot.store.db import Database, make_engine, upgrade
from gatebot.store.models import OPEN_STATUSES, Order, OrderStatus
from tests.store.conftest import KEY_A, KEY_B, T0, OrderFactory, build_order

GATE_ID = "3f2b6c1e-8d4a-4f5e-9b7c-1a2b3c4d5e6f"


# -- add -------------------------------------------------------------------------------------------


def test_add_order_numbers_it_and_records_creation(session: Session, make_order: OrderFactory) -> None:
    first = make_order()
    second = make_order(requester="U999")
    assert first.id is not None and second.id == first.id + 1
    assert first.number == f"#{first.id}"
    rows = repo.history(session, second.id)
    assert [(h.from_status, h.to_status, h.actor, h.note) for h in rows] == [
        (None, OrderStatus.SUBMITTING, "U999", "created")
    ]
    assert rows[0].at == T0


def test_add_order_custom_actor_and_note(session: Session, cipher: FernetCipher) -> None:
    order = repo.add_order(session, build_order(cipher, 1), actor="cli:alice", note="from the console")
    (row,) = repo.history(session, order.id or 0)
    assert (row.actor, row.note) == ("cli:alice", "from the console")


def test_add_order_needs_a_body_and_timestamps(session: Session, cipher: FernetCipher) -> None:
    order = build_order(cipher, 1)
    order.request_body_enc = ""
    with pytest.raises(ValueError, match="request body"):
        repo.add_order(session, order)
    with pytest.raises(ValueError, match="created_at"):
        repo.add_order(session, build_order(cipher, 2, created_at=None))


def test_add_order_refuses_long_refs_and_existing_orders(
    session: Session, cipher: FernetCipher, make_order: OrderFactory
) -> None:
    with pytest.raises(ValueError, match="external_ref must be 1-64"):
        repo.add_order(session, build_order(cipher, 1, external_ref="x" * 65))
    existing = make_order()
    with pytest.raises(ValueError, match="already has a number"):
        repo.add_order(session, existing)


@pytest.mark.parametrize("column", ["external_ref", "idempotency_key", "gate_order_id"])
def test_references_are_unique(session: Session, make_order: OrderFactory, column: str) -> None:
    make_order(**{column: "SAME-REF"})
    with pytest.raises(IntegrityError):
        make_order(**{column: "SAME-REF"})


def test_many_orders_may_lack_a_gate_id(session: Session, make_order: OrderFactory) -> None:
    make_order()
    make_order()
    session.commit()
    assert len(repo.list_orders(session)) == 2


# -- find ------------------------------------------------------------------------------------------


@pytest.fixture
def target(session: Session, make_order: OrderFactory) -> Order:
    make_order()  # a neighbour that must not be found
    order = make_order(external_ref="INV-1001", idempotency_key="idem-7f3a", gate_order_id=GATE_ID)
    make_order()
    session.commit()
    return order


@pytest.mark.parametrize(
    "ref",
    [
        "#{id}",
        "{id}",
        "  #{id}\n",
        "<#{id}>",
        "`#{id}`",
        "```{id}```",
        "`<{id}>`",
        "# {id}",
        GATE_ID,
        GATE_ID.upper(),
        f"<{GATE_ID}>",
        "INV-1001",
        " `INV-1001` ",
        "idem-7f3a",
    ],
)
def test_find_order_by_any_reference(session: Session, target: Order, ref: str) -> None:
    found = repo.find_order(session, ref.format(id=target.id))
    assert found is not None and found.id == target.id


@pytest.mark.parametrize(
    "ref",
    [
        "inv-1001",
        "INV-100",
        "IDEM-7F3A",
        "#999999",
        "0",
        "#0",
        "99999999999999999999",
        "",
        "  ",
        "<>",
        "``",
        "x" * 65,
        "#",
        "# ",
        str(uuid.UUID(int=1)),
    ],
)
def test_find_order_misses(session: Session, target: Order, ref: str) -> None:
    assert repo.find_order(session, ref) is None


def test_find_order_precedence_number_first(session: Session, make_order: OrderFactory) -> None:
    first = make_order()
    numbered_ref = make_order(external_ref=str(first.id))
    assert repo.find_order(session, str(first.id)) == first
    assert repo.find_order(session, f"#{first.id}") == first
    # a ref that is not an existing number still finds the order carrying it
    assert numbered_ref.id is not None
    stray = make_order(external_ref="424242")
    assert repo.find_order(session, "424242") == stray


def test_find_order_precedence_gate_id_before_external_ref(session: Session, make_order: OrderFactory) -> None:
    by_ref = make_order(external_ref=GATE_ID)
    by_gate = make_order(gate_order_id=GATE_ID)
    assert by_ref != by_gate
    assert repo.find_order(session, GATE_ID) == by_gate


def test_normalize_ref() -> None:
    assert repo.normalize_ref("  `<#12>`  ") == "#12"
    assert repo.normalize_ref("<INV-1>") == "INV-1"
    assert repo.normalize_ref("<") == "<"


def test_find_order_uses_indexes_only(tmp_path: Path, cipher: FernetCipher) -> None:
    """On SQLite, the single lookup query must not scan the orders table."""
    db = Database(make_engine(f"sqlite:///{tmp_path / 'plan.db'}"))
    upgrade(db.engine)
    statements: list[tuple[str, Sequence[Any]]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT") and "FROM orders" in statement:
            statements.append((statement, parameters))

    try:
        with db.session() as s:
            repo.add_order(s, build_order(cipher, 1, gate_order_id=GATE_ID))
        event.listen(db.engine, "before_cursor_execute", capture)
        with db.session() as s:
            for ref in ("#1", GATE_ID.upper(), "INV-1", "key-0001"):
                assert repo.find_order(s, ref) is not None
        event.remove(db.engine, "before_cursor_execute", capture)
        assert len(statements) == 4  # one query per lookup
        with db.engine.connect() as conn:
            for statement, parameters in statements:
                plan = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters).all()
                details = " | ".join(str(row[-1]) for row in plan)
                assert "SCAN orders" not in details, details
                assert "USING" in details
    finally:
        db.dispose()


def test_external_ref_exists(session: Session, make_order: OrderFactory) -> None:
    make_order(external_ref="INV-1")
    assert repo.external_ref_exists(session, "INV-1")
    assert not repo.external_ref_exists(session, "inv-1")


# -- lists -----------------------------------------------------------------------------------------


def test_list_orders_newest_first_with_filters_and_paging(session: Session, make_order: OrderFactory) -> None:
    orders = [
        make_order(requester="U1", created_at=T0, updated_at=T0),
        make_order(requester="U2", created_at=T0 + timedelta(hours=1), updated_at=T0, status="pending"),
        make_order(requester="U1", created_at=T0 + timedelta(hours=2), updated_at=T0, status="failed"),
        make_order(requester="U1", created_at=T0 + timedelta(hours=3), updated_at=T0, status="pending"),
    ]
    ids = [o.id for o in orders]
    assert [o.id for o in repo.list_orders(session)] == ids[::-1]
    assert [o.id for o in repo.list_orders(session, requester="U1")] == [ids[3], ids[2], ids[0]]
    assert [o.id for o in repo.list_orders(session, status="pending")] == [ids[3], ids[1]]
    assert [o.id for o in repo.list_orders(session, status=[OrderStatus.FAILED, "submitting"])] == [
        ids[2],
        ids[0],
    ]
    assert [o.id for o in repo.list_orders(session, requester="U1", status="pending")] == [ids[3]]
    window = repo.list_orders(session, since=T0 + timedelta(hours=1), until=T0 + timedelta(hours=3))
    assert [o.id for o in window] == [ids[2], ids[1]]
    page1 = repo.list_orders(session, limit=2)
    page2 = repo.list_orders(session, limit=2, before_id=page1[-1].id)
    assert [o.id for o in page1 + page2] == ids[::-1]
    assert repo.list_orders(session, limit=2, before_id=page2[-1].id) == []
    with pytest.raises(ValueError, match="limit"):
        repo.list_orders(session, limit=0)


def test_orders_due(session: Session, make_order: OrderFactory) -> None:
    now = T0 + timedelta(minutes=10)
    never_scheduled = make_order(status="unknown")
    overdue = make_order(status="pending", next_attempt_at=now - timedelta(minutes=5))
    exactly_now = make_order(status="submitting", next_attempt_at=now)
    make_order(status="pending", next_attempt_at=now + timedelta(seconds=1))  # not yet
    make_order(status="completed")  # final: never due
    waiting = make_order(status="waiting_funds")
    due = repo.orders_due(session, OPEN_STATUSES, now)
    assert [o.id for o in due] == [never_scheduled.id, waiting.id, overdue.id, exactly_now.id]
    assert [o.id for o in repo.orders_due(session, ["pending"], now)] == [overdue.id]
    assert len(repo.orders_due(session, OPEN_STATUSES, now, limit=1)) == 1
    assert repo.orders_due(session, [], now) == []
    later = repo.orders_due(session, {OrderStatus.PENDING}, now + timedelta(hours=1))
    assert len(later) == 2


def test_open_orders_and_by_gate_ids(session: Session, make_order: OrderFactory) -> None:
    a = make_order(status="pending", gate_order_id="g-a")
    b = make_order(status="waiting_funds")
    c = make_order(status="completed", gate_order_id="g-c")
    assert [o.id for o in repo.open_orders(session)] == [a.id, b.id]
    assert [o.id for o in repo.open_orders(session, ["completed"])] == [c.id]
    assert repo.open_orders(session, []) == []
    found = repo.orders_by_gate_ids(session, ["g-a", "g-c", "g-missing", ""])
    assert {k: v.id for k, v in found.items()} == {"g-a": a.id, "g-c": c.id}
    many = [f"g-{i}" for i in range(1200)] + ["g-a"]
    assert set(repo.orders_by_gate_ids(session, many)) == {"g-a"}


def test_orders_by_ids_and_orders_at_gate(session: Session, make_order: OrderFactory, cipher: FernetCipher) -> None:
    a = make_order(status="pending", gate_order_id="g-a")
    make_order(status="pending")  # not at Gate yet
    c = make_order(status="pending", gate_order_id="g-c")
    c.set_secret_fields(cipher, content={"vendor_id": "V-1"})
    d = make_order(status="completed", gate_order_id="g-d")
    session.flush()
    assert {k: v.id for k, v in repo.orders_by_ids(session, [d.id or 0, a.id or 0, 999_999]).items()} == {
        a.id: a.id, d.id: d.id}
    assert repo.orders_at_gate(session, ["pending"]) == [
        repo.TrackedOrder(a.id or 0, "g-a", T0, False), repo.TrackedOrder(c.id or 0, "g-c", T0, True)]
    assert repo.orders_at_gate(session, []) == []


def test_order_counts(session: Session, make_order: OrderFactory) -> None:
    make_order(status="pending")
    make_order(status="pending", created_at=T0 + timedelta(days=1), updated_at=T0)
    make_order(status="completed")
    counts = repo.order_counts(session)
    assert counts[OrderStatus.PENDING] == 2 and counts[OrderStatus.COMPLETED] == 1
    assert counts[OrderStatus.REJECTED] == 0 and set(counts) == set(OrderStatus)
    assert repo.order_counts(session, since=T0 + timedelta(hours=1))[OrderStatus.PENDING] == 1
    assert repo.order_counts(session, until=T0 + timedelta(hours=1))[OrderStatus.PENDING] == 1


# -- status changes --------------------------------------------------------------------------------


def test_set_status_updates_and_appends_history(database: Database, session: Session, make_order: OrderFactory) -> None:
    order = make_order()
    t1, t2 = T0 + timedelta(seconds=5), T0 + timedelta(seconds=95)
    entry = repo.set_status(session, order, OrderStatus.PENDING, actor="system:submit", note="accepted", now=t1)
    assert (entry.from_status, entry.to_status, entry.at) == (OrderStatus.SUBMITTING, OrderStatus.PENDING, t1)
    repo.set_status(session, order, "completed", actor="system:tracker", now=t2)
    session.commit()
    with database.session() as s:
        loaded = repo.get_order(s, order.id or 0)
        assert loaded is not None
        assert loaded.status is OrderStatus.COMPLETED
        assert loaded.updated_at == t2 and loaded.completed_at == t2 and loaded.failed_at is None
        steps = [(h.from_status, h.to_status, h.actor) for h in repo.history(s, loaded.id or 0)]
    assert steps == [
        (None, OrderStatus.SUBMITTING, "U123"),
        (OrderStatus.SUBMITTING, OrderStatus.PENDING, "system:submit"),
        (OrderStatus.PENDING, OrderStatus.COMPLETED, "system:tracker"),
    ]
    assert order.status is OrderStatus.COMPLETED  # the caller's object is up to date too


def test_set_status_keeps_gate_timestamps_and_sets_failed_at(session: Session, make_order: OrderFactory) -> None:
    done = make_order(status="pending")
    gate_time = T0 + timedelta(seconds=90)
    done.completed_at = gate_time
    repo.set_status(session, done, "completed", actor="system:tracker", now=T0 + timedelta(minutes=5))
    assert done.completed_at == gate_time
    rejected = make_order()
    repo.set_status(session, rejected, "rejected", actor="system:submit", note="invalid_amount", now=T0)
    assert rejected.failed_at == T0


def test_set_status_to_the_same_status_records_a_note(session: Session, make_order: OrderFactory) -> None:
    order = make_order(status="unknown")
    repo.set_status(session, order, "unknown", actor="system:recovery", note="retry 2", now=T0)
    assert [h.note for h in repo.history(session, order.id or 0)] == ["created", "retry 2"]


def test_set_status_flushes_other_changes(database: Database, session: Session, make_order: OrderFactory) -> None:
    order = make_order()
    order.gate_order_id = GATE_ID
    order.status_reason = "accepted by Gate"
    repo.set_status(session, order, "pending", actor="system:submit", now=T0)
    session.commit()
    with database.session() as s:
        loaded = repo.find_order(s, GATE_ID)
        assert loaded is not None and loaded.status_reason == "accepted by Gate"


def test_direct_status_assignment_is_refused(session: Session, make_order: OrderFactory) -> None:
    order = make_order()
    order.status = OrderStatus.PENDING
    with pytest.raises(RuntimeError, match="use set_status"):
        repo.set_status(session, order, "completed", actor="U1", now=T0)


def test_set_status_needs_a_saved_order(session: Session, cipher: FernetCipher) -> None:
    with pytest.raises(ValueError, match="add_order"):
        repo.set_status(session, build_order(cipher, 1), "pending", actor="U1", now=T0)


def test_concurrent_status_change_is_detected(database: Database, session: Session, make_order: OrderFactory) -> None:
    order = make_order(status="pending")
    session.commit()
    with database.session() as other:
        theirs = repo.get_order(other, order.id or 0)
        assert theirs is not None
        repo.set_status(other, theirs, "completed", actor="system:tracker", now=T0)
    # our copy still says pending: completing it again must fail, not double-complete
    with pytest.raises(repo.StatusConflict) as info:
        repo.set_status(session, order, "failed", actor="system:recovery", now=T0)
    assert (info.value.expected, info.value.actual) == (OrderStatus.PENDING, OrderStatus.COMPLETED)
    session.rollback()
    assert [h.to_status for h in repo.history(session, order.id or 0)][-1] is OrderStatus.COMPLETED
    assert len(repo.history(session, order.id or 0)) == 2


def test_set_statuses_moves_many_orders_from_their_own_statuses(
        database: Database, session: Session, make_order: OrderFactory) -> None:
    gate_time = T0 + timedelta(seconds=90)
    pending, unknown, early = make_order(status="pending"), make_order(status="unknown"), make_order(status="pending")
    early.completed_at = gate_time  # Gate's completion time, set before the move
    later = T0 + timedelta(minutes=5)
    repo.set_statuses(session, [pending, unknown, early], "completed", actor="system:tracker",
                      note="Gate delivered the order.", now=later)
    session.commit()
    with database.session() as s:
        assert [[(h.from_status, h.to_status, h.actor, h.note, h.at) for h in repo.history(s, o.id or 0)][1:]
                for o in (pending, unknown, early)] == [
            [(OrderStatus.PENDING, OrderStatus.COMPLETED, "system:tracker", "Gate delivered the order.", later)],
            [(OrderStatus.UNKNOWN, OrderStatus.COMPLETED, "system:tracker", "Gate delivered the order.", later)],
            [(OrderStatus.PENDING, OrderStatus.COMPLETED, "system:tracker", "Gate delivered the order.", later)],
        ]
        loaded = repo.orders_by_ids(s, [pending.id or 0, unknown.id or 0, early.id or 0])
        assert {o.status for o in loaded.values()} == {OrderStatus.COMPLETED}
        assert [loaded[o.id or 0].completed_at for o in (pending, unknown, early)] == [later, later, gate_time]
        assert all(o.updated_at == later for o in loaded.values())
    assert early.status is OrderStatus.COMPLETED and early.completed_at == gate_time


def test_set_statuses_names_the_order_moved_meanwhile(
        database: Database, session: Session, make_order: OrderFactory) -> None:
    first, moved, third = (make_order(status="pending") for _ in range(3))
    session.commit()
    with database.session() as other:
        theirs = repo.get_order(other, moved.id or 0)
        assert theirs is not None
        repo.set_status(other, theirs, "failed", actor="other", now=T0)
    with pytest.raises(repo.StatusConflict) as info:
        repo.set_statuses(session, [first, moved, third], "completed", actor="system:tracker", now=T0)
    assert (info.value.order_id, info.value.actual) == (moved.id, OrderStatus.FAILED)
    session.rollback()
    assert [o.status for o in repo.orders_by_ids(session, [first.id or 0, third.id or 0]).values()] == [
        OrderStatus.PENDING, OrderStatus.PENDING]  # all or nothing


def test_set_status_on_an_order_from_an_earlier_session(database: Database, cipher: FernetCipher) -> None:
    with database.session() as s:
        order = repo.add_order(s, build_order(cipher, 1))
    with database.session() as s:  # the order object is detached now
        repo.set_status(s, order, "pending", actor="system:submit", now=T0)
    with database.session() as s:
        assert [h.to_status for h in repo.history(s, order.id or 0)] == [
            OrderStatus.SUBMITTING,
            OrderStatus.PENDING,
        ]


# -- key rotation ----------------------------------------------------------------------------------


def test_reencrypt_secrets_after_key_rotation(database: Database, session: Session, make_order: OrderFactory) -> None:
    old = FernetCipher([KEY_A])
    orders = [make_order() for _ in range(5)]
    orders[0].set_secret_fields(old, content={"voucher_code": "CODE-0"}, account={"email": "a@example.com"})
    session.commit()
    orders[1].status_reason = "changed just before the rotation"  # pending, not flushed
    rotating = FernetCipher([KEY_B, KEY_A])
    assert repo.reencrypt_secrets(session, rotating, batch_size=2) == 5
    session.commit()
    assert orders[1].status_reason == "changed just before the rotation"
    assert orders[0].content(FernetCipher([KEY_B])) == {"voucher_code": "CODE-0"}  # reloaded
    new_only = FernetCipher([KEY_B])
    with database.session() as s:
        for order in repo.list_orders(s):
            assert order.request_body(new_only)["product_id"] == 1
        first = repo.get_order(s, orders[0].id or 0)
        assert first is not None
        assert first.content(new_only) == {"voucher_code": "CODE-0"}
        assert first.account(new_only) == {"email": "a@example.com"}
        raw = (
            s.connection()
            .execute(text("SELECT order_content_enc FROM orders WHERE id = :id"), {"id": first.id})
            .scalar_one()
        )
        assert "CODE-0" not in raw
