"""Orders remember the Slack draft they came from, so a double submit finds the first order.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24

``draft_id`` is the nonce a modal carries in its private_metadata; a unique index makes a second
submit of the same draft (a double click, a Slack retry, another instance) fail to insert, and the
pipeline then returns the order that the first submit created. Nullable: CLI orders have none.
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("draft_id", sa.String(64), nullable=True))
        batch.create_index("ix_orders_draft_id", ["draft_id"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.drop_index("ix_orders_draft_id")
        batch.drop_column("draft_id")
