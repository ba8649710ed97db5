"""Every query the store runs: plain functions that take a ``Session`` first and options by keyword.

One module per meaning: :mod:`.orders` (insert, read, lists, :func:`set_status` — the only way an
order's status changes — and its history), :mod:`.batches` (bulk batches and the queries over their
rows), :mod:`.lookups` (the order a person means), :mod:`.audit`,
:mod:`.catalog` (the cached catalog and its search), :mod:`.deposits`, :mod:`.kv` (the key-value
store), :mod:`.leases`, :mod:`.messages` (where an order's Slack message lives), :mod:`.reports`
(read-only queries for metrics and exports) and :mod:`.spending` (daily limits, open approval
requests). This package re-exports them all, so
``from gatebot.store import repo; repo.find_order(s, ref)`` is the way to call them.

Transactions belong to the caller: nothing here commits. Functions flush when the caller needs a
generated id at once (``add_order``). Writes that other processes race for are single atomic statements
(``try_acquire_lease``, ``kv_set``) or compare-and-set (``set_status``, ``kv_update``), so they stay
correct with several processes on PostgreSQL and with several connections on SQLite.

Never log or put into an exception message a customer account, a voucher code or a request body.

Must not import Slack, the scheduler, the Gate client or ``db`` (no engines here).
"""

from __future__ import annotations

from gatebot.store.repo.audit import audit, recent_audit
from gatebot.store.repo.batches import (
    BatchConflict,
    BatchRowCounts,
    add_batch,
    add_batch_rows,
    batch_orders,
    batch_product_counts,
    batch_row_counts,
    batch_rows_in,
    batches_in,
    count_rows,
    get_batch,
    orders_by_external_refs,
    set_batch_status,
)
from gatebot.store.repo.catalog import (
    CATALOG_REFRESHED_KEY,
    CatalogChanges,
    catalog_refreshed_at,
    get_product,
    replace_catalog,
    search_products,
)
from gatebot.store.repo.deposits import mark_announced, record_deposits, unannounced_deposits
from gatebot.store.repo.kv import KVConflict, kv_delete, kv_get, kv_set, kv_update
from gatebot.store.repo.leases import lease_holder, release_lease, try_acquire_lease
from gatebot.store.repo.lookups import (
    MAX_LOOKUP_MATCHES,
    MIN_GATE_PREFIX,
    external_ref_exists,
    find_order,
    find_orders,
    normalize_ref,
)
from gatebot.store.repo.messages import (
    claim_message,
    release_message,
    save_message,
    set_dm_sent,
    take_over_message,
)
from gatebot.store.repo.orders import (
    MAX_ORDER_NUMBER,
    MAX_REF_LENGTH,
    StatusConflict,
    TrackedOrder,
    add_order,
    get_order,
    history,
    list_orders,
    open_orders,
    order_by_draft,
    order_counts,
    orders_at_gate,
    orders_by_gate_ids,
    orders_by_ids,
    orders_due,
    reencrypt_secrets,
    set_status,
    set_statuses,
)
from gatebot.store.repo.reports import deposits_between, order_counts_by_kind, orders_between
from gatebot.store.repo.spending import (
    NOT_SPENT,
    approvals_expired,
    awaiting_approval,
    lock_spending,
    roles_column,
    roles_of,
    spent_since,
)

__all__ = [
    "CATALOG_REFRESHED_KEY",
    "MAX_LOOKUP_MATCHES",
    "MAX_ORDER_NUMBER",
    "MAX_REF_LENGTH",
    "MIN_GATE_PREFIX",
    "NOT_SPENT",
    "BatchConflict",
    "BatchRowCounts",
    "CatalogChanges",
    "KVConflict",
    "StatusConflict",
    "TrackedOrder",
    "add_batch",
    "add_batch_rows",
    "add_order",
    "approvals_expired",
    "audit",
    "awaiting_approval",
    "batch_orders",
    "batch_product_counts",
    "batch_row_counts",
    "batch_rows_in",
    "batches_in",
    "catalog_refreshed_at",
    "claim_message",
    "count_rows",
    "deposits_between",
    "external_ref_exists",
    "find_order",
    "find_orders",
    "get_batch",
    "get_order",
    "get_product",
    "history",
    "kv_delete",
    "kv_get",
    "kv_set",
    "kv_update",
    "lease_holder",
    "list_orders",
    "lock_spending",
    "mark_announced",
    "normalize_ref",
    "open_orders",
    "order_by_draft",
    "order_counts",
    "order_counts_by_kind",
    "orders_at_gate",
    "orders_between",
    "orders_by_external_refs",
    "orders_by_gate_ids",
    "orders_by_ids",
    "orders_due",
    "recent_audit",
    "record_deposits",
    "reencrypt_secrets",
    "release_lease",
    "release_message",
    "replace_catalog",
    "roles_column",
    "roles_of",
    "save_message",
    "search_products",
    "set_batch_status",
    "set_dm_sent",
    "set_status",
    "set_statuses",
    "spent_since",
    "take_over_message",
    "try_acquire_lease",
    "unannounced_deposits",
]
