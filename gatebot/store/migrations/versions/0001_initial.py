"""Initial schema: orders, order history, audit log, catalog cache, seen deposits, key-value state, leases.

Revision ID: 0001
Revises:
Create Date: 2026-11-24

Written by hand to match gatebot/store/models.py exactly (tests/store/test_migrations.py compares the
migrated schema with the models on SQLite and PostgreSQL). Amounts are Decimal-as-text, timestamps
are timezone-aware (timestamptz on PostgreSQL, UTC text on SQLite). Self-contained on purpose: it must
not import the models, which will keep changing after this revision is frozen.
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts(name: str, *, nullable: bool) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _amount(name: str, *, nullable: bool = True) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.Text(), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "orders",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("external_ref", sa.String(64), nullable=False),
        sa.Column("idempotency_key", sa.String(64), nullable=False),
        sa.Column("gate_order_id", sa.String(64), nullable=True),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("product_name", sa.Text(), nullable=False),
        sa.Column("product_type", sa.String(32), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        _amount("amount"),
        sa.Column("quantity", sa.Integer(), nullable=False),
        _amount("estimated_cost"),
        _amount("charged_amount"),
        _amount("balance_before"),
        _amount("balance_after"),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("error_code", sa.String(64), nullable=True),
        sa.Column("is_test", sa.Boolean(), nullable=False),
        sa.Column("request_body_enc", sa.Text(), nullable=False),
        sa.Column("customer_account_enc", sa.Text(), nullable=True),
        sa.Column("order_content_enc", sa.Text(), nullable=True),
        sa.Column("requester", sa.String(64), nullable=False),
        sa.Column("origin_channel", sa.String(32), nullable=True),
        sa.Column("origin_ts", sa.String(32), nullable=True),
        sa.Column("dm_sent", sa.Boolean(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _ts("next_attempt_at", nullable=True),
        _ts("created_at", nullable=False),
        _ts("updated_at", nullable=False),
        _ts("submitted_at", nullable=True),
        _ts("completed_at", nullable=True),
        _ts("failed_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_orders"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_orders_external_ref", "orders", ["external_ref"], unique=True)
    op.create_index("ix_orders_idempotency_key", "orders", ["idempotency_key"], unique=True)
    op.create_index("ix_orders_gate_order_id", "orders", ["gate_order_id"], unique=True)
    op.create_index("ix_orders_created_at", "orders", ["created_at"])
    op.create_index("ix_orders_requester_created_at", "orders", ["requester", "created_at"])
    op.create_index("ix_orders_status_next_attempt_at", "orders", ["status", "next_attempt_at"])

    op.create_table(
        "order_history",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("order_id", sa.Integer(), nullable=False),
        _ts("at", nullable=False),
        sa.Column("from_status", sa.String(16), nullable=True),
        sa.Column("to_status", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_order_history"),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name="fk_order_history_order_id_orders"),
    )
    op.create_index("ix_order_history_order_id", "order_history", ["order_id"])

    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        _ts("at", nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(128), nullable=True),
        sa.Column("allowed", sa.Boolean(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_index("ix_audit_log_target", "audit_log", ["target"])

    op.create_table(
        "catalog_products",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("slug", sa.String(128), nullable=False),
        sa.Column("type_code", sa.String(32), nullable=False),
        sa.Column("category_id", sa.Integer(), nullable=True),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("region_code", sa.String(16), nullable=True),
        _amount("price"),
        _amount("min_amount"),
        _amount("max_amount"),
        _amount("step"),
        _amount("margin"),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("account_fields_json", sa.Text(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("search_name", sa.Text(), nullable=False),
        _ts("refreshed_at", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_catalog_products"),
    )
    op.create_index("ix_catalog_products_slug", "catalog_products", ["slug"])
    op.create_index("ix_catalog_products_search_name", "catalog_products", ["search_name"])

    op.create_table(
        "deposits_seen",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("currency", sa.String(3), nullable=False),
        _amount("amount", nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("method", sa.String(32), nullable=True),
        sa.Column("external_ref", sa.String(128), nullable=True),
        _ts("created_at", nullable=True),
        _ts("posted_at", nullable=True),
        _ts("first_seen_at", nullable=False),
        _ts("announced_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_deposits_seen"),
    )
    op.create_index("ix_deposits_seen_status_announced_at", "deposits_seen", ["status", "announced_at"])

    op.create_table(
        "kv",
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        _ts("updated_at", nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_kv"),
    )

    op.create_table(
        "leases",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("owner", sa.String(128), nullable=False),
        _ts("expires_at", nullable=False),
        _ts("acquired_at", nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_leases"),
    )


def downgrade() -> None:
    op.drop_table("leases")
    op.drop_table("kv")
    op.drop_index("ix_deposits_seen_status_announced_at", table_name="deposits_seen")
    op.drop_table("deposits_seen")
    op.drop_index("ix_catalog_products_search_name", table_name="catalog_products")
    op.drop_index("ix_catalog_products_slug", table_name="catalog_products")
    op.drop_table("catalog_products")
    op.drop_index("ix_audit_log_target", table_name="audit_log")
    op.drop_index("ix_audit_log_at", table_name="audit_log")
    op.drop_table("audit_log")
    op.drop_index("ix_order_history_order_id", table_name="order_history")
    op.drop_table("order_history")
    for name in (
        "ix_orders_status_next_attempt_at",
        "ix_orders_requester_created_at",
        "ix_orders_created_at",
        "ix_orders_gate_order_id",
        "ix_orders_idempotency_key",
        "ix_orders_external_ref",
    ):
        op.drop_index(name, table_name="orders")
    op.drop_table("orders")
