"""Plain-text renderings of orders and products for the command line.

Voucher codes appear only when the caller passes ``content`` explicitly (``gatebot order --show-code``).
Must not import Slack or the scheduler.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from gatebot.gate.models import ProductKind
from gatebot.money import format_amount
from gatebot.store.models import CatalogProduct, Order, OrderHistory

__all__ = ["approvals_table", "order_text", "orders_table", "products_table"]


def _money(value: Decimal | None, currency: str) -> str:
    return format_amount(value, currency, missing="-")


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else "-"


def order_text(order: Order, history: Sequence[OrderHistory], *, content: dict[str, Any] | None) -> str:
    what = (f"top-up {_money(order.amount, order.currency)}" if order.kind is ProductKind.TOP_UP
            else f"{order.quantity} × voucher")
    lines = [
        f"Order #{order.id}  {order.status.upper()}" + ("  (test)" if order.is_test else ""),
        f"  product        {order.product_name} (id {order.product_id}) — {what}",
        f"  external_ref   {order.external_ref}",
        f"  Gate order id  {order.gate_order_id or '-'}",
        f"  idempotency    {order.idempotency_key}",
        f"  requester      {order.requester}",
        f"  estimated      {_money(order.estimated_cost, order.currency)}",
        f"  charged        {_money(order.charged_amount, order.currency)}"
        + (f"  (balance {_money(order.balance_before, order.currency)} → "
           f"{_money(order.balance_after, order.currency)})" if order.balance_after is not None else ""),
        f"  created        {_when(order.created_at)}",
    ]
    if order.completed_at:
        lines.append(f"  completed      {_when(order.completed_at)}")
    if order.failed_at:
        lines.append(f"  failed         {_when(order.failed_at)}")
    if order.status_reason:
        lines.append(f"  why            {order.status_reason}")
    lines.extend(_approval_lines(order))
    if content:
        lines.append("  content        " + ", ".join(f"{k}={v}" for k, v in content.items()))
    if history:
        lines.append("  history")
        for h in history:
            lines.append(f"    {_when(h.at)}  {h.from_status or '-':>13} → {h.to_status:<13} {h.actor}"
                         + (f" — {h.note}" if h.note else ""))
    return "\n".join(lines)


def _approval_lines(order: Order) -> list[str]:
    """The approval trail: open until when, or who decided, when and why."""
    if order.approval_expires_at is None:
        return []
    if order.decided_by is None:
        return [f"  approval       waiting; the request expires {_when(order.approval_expires_at)}"]
    verb = {"approval_rejected": "rejected", "approval_expired": "expired"}.get(order.error_code or "", "approved")
    line = f"  approval       {verb} by {order.decided_by} at {_when(order.decided_at)}"
    return [line + (f" — {order.decision_reason}" if order.decision_reason else "")]


def _age(delta: timedelta) -> str:
    minutes = max(int(delta.total_seconds()) // 60, 0)
    return f"{minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"{minutes}m"


def approvals_table(orders: Iterable[Order], *, now: datetime) -> str:
    """Open approval requests: number, requester, cost, age, expiry, product."""
    rows = [f"{'#':>6}  {'requester':<16} {'cost':>16}  {'age':>7}  {'expires (UTC)':<16}  product"]
    count = 0
    for o in orders:
        count += 1
        expires = f"{o.approval_expires_at:%Y-%m-%d %H:%M}" if o.approval_expires_at else "-"
        rows.append(f"{o.id:>6}  {o.requester:<16} {_money(o.estimated_cost, o.currency):>16}  "
                    f"{_age(now - o.created_at):>7}  {expires:<16}  {o.product_name}")
    return "\n".join(rows) if count else "no approval requests are waiting"


def orders_table(orders: Iterable[Order]) -> str:
    rows = [f"{'#':>6}  {'status':<13} {'created (UTC)':<16}  {'external_ref':<22} {'cost':>16}  product"]
    count = 0
    for o in orders:
        count += 1
        cost = o.charged_amount if o.charged_amount is not None else o.estimated_cost
        rows.append(f"{o.id:>6}  {o.status:<13} {o.created_at:%Y-%m-%d %H:%M}  {o.external_ref:<22} "
                    f"{_money(cost, o.currency):>16}  {o.product_name}")
    return "\n".join(rows) if count else "no orders"


def products_table(products: Iterable[CatalogProduct]) -> str:
    rows = [f"{'id':>6}  {'kind':<13} {'price / limits':<26} product"]
    count = 0
    for p in products:
        count += 1
        if p.kind is ProductKind.TOP_UP:
            price = f"{p.currency} {p.min_amount}–{p.max_amount} step {p.step}"
        else:
            price = _money(p.price, p.currency)
        rows.append(f"{p.id:>6}  {p.kind:<13} {price:<26} {p.name} ({p.slug})"
                    + ("" if p.is_active else "  [inactive]"))
    return "\n".join(rows) if count else "no products match"
