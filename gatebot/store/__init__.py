"""Persistence for gatebot: the order store.

``models`` (SQLModel tables and column types), ``repo`` (every query, as functions taking a session),
``db`` (engines, sessions, Alembic migrations), ``crypto`` (encryption at rest for account fields,
voucher codes and request bodies). Import those modules directly; this package module imports
nothing so that importing one of them never drags in the others.

Must not import Slack or the scheduler.
"""
