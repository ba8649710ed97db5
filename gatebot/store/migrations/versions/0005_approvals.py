"""Four-eyes approvals: the request's expiry and decision on the order, and status columns wide enough.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04

Adds ``orders.requester_roles`` (the roles role spending limits count), ``approval_expires_at``,
``decided_by``, ``decided_at`` and ``decision_reason``. The new status ``awaiting_approval`` is 17
characters, so ``orders.status`` and ``order_history.from_status``/``to_status`` widen from 16 to 32
(PostgreSQL enforces the length; SQLite does not, and its batch copy would lose 0003's expression
index, so SQLite keeps the declared width).

Self-contained on purpose: it must not import the models.
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STATUS_COLUMNS = (("orders", "status", False), ("order_history", "from_status", True),
                   ("order_history", "to_status", False))


def _postgres() -> bool:
    return op.get_context().dialect.name == "postgresql"


def upgrade() -> None:
    op.add_column("orders", sa.Column("requester_roles", sa.String(64), nullable=True))
    op.add_column("orders", sa.Column("approval_expires_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("orders", sa.Column("decided_by", sa.String(64), nullable=True))
    op.add_column("orders", sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("orders", sa.Column("decision_reason", sa.Text(), nullable=True))
    if _postgres():
        for table, name, nullable in _STATUS_COLUMNS:
            op.alter_column(table, name, type_=sa.String(32), existing_type=sa.String(16),
                            existing_nullable=nullable)


def downgrade() -> None:
    # Requests still open cannot be represented before 0005: they end as rejected.
    op.execute("UPDATE orders SET status = 'rejected', status_reason = 'approval request dropped by a downgrade' "
               "WHERE status = 'awaiting_approval'")
    op.execute("UPDATE order_history SET to_status = 'rejected' WHERE to_status = 'awaiting_approval'")
    op.execute("UPDATE order_history SET from_status = 'rejected' WHERE from_status = 'awaiting_approval'")
    if _postgres():
        for table, name, nullable in _STATUS_COLUMNS:
            op.alter_column(table, name, type_=sa.String(16), existing_type=sa.String(32),
                            existing_nullable=nullable)
    for name in ("decision_reason", "decided_at", "decided_by", "approval_expires_at", "requester_roles"):
        op.drop_column("orders", name)
