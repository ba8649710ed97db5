"""Bulk orders: the ``batches`` table, and ``orders.batch_id``/``batch_row`` for the orders that are its rows.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04

A batch is one CSV file of orders (``gatebot bulk``, ``/gate bulk``); each row is an ordinary order with
its own idempotency key, body and status, pointing back at its batch and row number. The new order status
``queued`` (a row saved but not sent yet) fits the 32 characters 0005 made room for. No foreign key from
``orders.batch_id``: SQLite cannot add one to an existing table without a batch copy, which would lose
0003's expression index; the unique ``(batch_id, batch_row)`` index keeps one order per row.

Self-contained on purpose: it must not import the models.
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "batches",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("requester", sa.String(64), nullable=False),
        sa.Column("requester_roles", sa.String(64), nullable=True),
        sa.Column("origin_channel", sa.String(32), nullable=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("source_name", sa.String(255), nullable=False),
        sa.Column("source_digest", sa.String(64), nullable=False),
        sa.Column("source_enc", sa.Text(), nullable=True),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("totals_json", sa.Text(), nullable=False),
        sa.Column("approval_reason", sa.Text(), nullable=True),
        sa.Column("approval_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.String(64), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=True),
        sa.Column("message_channel", sa.String(32), nullable=True),
        sa.Column("message_ts", sa.String(32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("results_expire_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_batches"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_batches_status_updated_at", "batches", ["status", "updated_at"])
    # Plain ALTER TABLE, not batch mode: SQLite's batch copy would lose the expression index of 0003.
    op.add_column("orders", sa.Column("batch_id", sa.Integer(), nullable=True))
    op.add_column("orders", sa.Column("batch_row", sa.Integer(), nullable=True))
    op.create_index("ix_orders_batch_id_batch_row", "orders", ["batch_id", "batch_row"], unique=True)


def downgrade() -> None:
    # Rows never sent cannot be represented before 0006: they end as rejected, like a cancelled batch.
    op.execute("UPDATE orders SET status = 'rejected', status_reason = 'bulk row dropped by a downgrade' "
               "WHERE status = 'queued'")
    op.execute("UPDATE order_history SET to_status = 'rejected' WHERE to_status = 'queued'")
    op.execute("UPDATE order_history SET from_status = 'rejected' WHERE from_status = 'queued'")
    op.drop_index("ix_orders_batch_id_batch_row", table_name="orders")
    op.drop_column("orders", "batch_row")
    op.drop_column("orders", "batch_id")
    op.drop_index("ix_batches_status_updated_at", table_name="batches")
    op.drop_table("batches")
