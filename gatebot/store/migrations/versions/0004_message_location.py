"""Where an order's Slack status message lives becomes typed columns instead of one packed string.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04

Before: ``orders.origin_ts`` held one of three states in a string — ``claim:<epoch seconds, 12 digits>``
(a process is posting the first message), ``dm:<ts>`` (the message is in the requester's DM) or
``<ts>`` (the message is in ``origin_channel``). After: ``message_ts`` (the message's ts, or NULL),
``message_in_dm`` (whether it is in the requester's DM) and ``message_claimed_at`` (when a process
claimed the first post, or NULL). Existing rows are converted; the downgrade packs them back.

Self-contained on purpose: it must not import the models.
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _sqlite() -> bool:
    return op.get_context().dialect.name == "sqlite"


def upgrade() -> None:
    # Plain ALTER TABLE, not batch mode: SQLite's batch copy would lose the expression index of 0003.
    op.add_column("orders", sa.Column("message_ts", sa.String(32), nullable=True))
    op.add_column("orders", sa.Column("message_in_dm", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column("orders", sa.Column("message_claimed_at", sa.DateTime(timezone=True), nullable=True))
    # Plain SQL, so `--sql` (offline) renders the conversion too. ``claim:`` is 6 characters, ``dm:`` 3.
    op.execute("UPDATE orders SET message_ts = substr(origin_ts, 4), message_in_dm = true "
               "WHERE origin_ts LIKE 'dm:%'")
    op.execute("UPDATE orders SET message_ts = origin_ts "
               "WHERE origin_ts IS NOT NULL AND origin_ts NOT LIKE 'dm:%' AND origin_ts NOT LIKE 'claim:%'")
    if _sqlite():  # UTCDateTime's SQLite format: UTC without an offset
        claimed = "strftime('%Y-%m-%d %H:%M:%S.000000', CAST(substr(origin_ts, 7) AS INTEGER), 'unixepoch')"
    else:
        claimed = "to_timestamp(CAST(substr(origin_ts, 7) AS bigint))"
    op.execute(f"UPDATE orders SET message_claimed_at = {claimed} WHERE origin_ts LIKE 'claim:%'")
    op.drop_column("orders", "origin_ts")  # SQLite >= 3.35 drops a column in place


def downgrade() -> None:
    op.add_column("orders", sa.Column("origin_ts", sa.String(32), nullable=True))
    op.execute("UPDATE orders SET origin_ts = CASE WHEN message_in_dm THEN 'dm:' || message_ts ELSE message_ts END "
               "WHERE message_ts IS NOT NULL")
    if _sqlite():
        epoch = "printf('%012d', CAST(strftime('%s', message_claimed_at) AS INTEGER))"
    else:
        epoch = "lpad(CAST(CAST(extract(epoch FROM message_claimed_at) AS bigint) AS text), 12, '0')"
    op.execute(f"UPDATE orders SET origin_ts = 'claim:' || {epoch} "
               "WHERE message_ts IS NULL AND message_claimed_at IS NOT NULL")
    for name in ("message_claimed_at", "message_in_dm", "message_ts"):
        op.drop_column("orders", name)
