"""Indexes for the lookups people type: ``inv-1001`` for ``INV-1001``, and a Gate order id's first characters.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04

``ix_orders_external_ref_lower`` (an expression index on ``lower(external_ref)``, SQLite and
PostgreSQL) keeps the case-insensitive external_ref match an index search on a million orders.
The Gate-id prefix search uses the existing unique index on ``gate_order_id``: SQLite answers the
range ``gate_order_id >= prefix AND < prefix || U+10FFFF`` from it; PostgreSQL answers
``LIKE 'prefix%'`` from ``ix_orders_gate_order_id_prefix`` (``varchar_pattern_ops``, so whatever
the database's collation). See ``repo.find_orders``.
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_orders_external_ref_lower", "orders", [sa.text("lower(external_ref)")])
    if op.get_bind().dialect.name == "postgresql":
        op.create_index("ix_orders_gate_order_id_prefix", "orders", ["gate_order_id"],
                        postgresql_ops={"gate_order_id": "varchar_pattern_ops"})


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_orders_gate_order_id_prefix", table_name="orders")
    op.drop_index("ix_orders_external_ref_lower", table_name="orders")
