"""Four-eyes approvals in Slack: the request message, the reject modal, the requester's DM, list rows.

The request message (in ``GATEBOT_APPROVAL_CHANNEL``, else the alert channel) shows what an approver
needs to decide: product, customer account (masked: the channel is not the requester's DM), cost,
balance now and after, the requester's spend today against their daily limits, when the request
expires — and Approve / Reject buttons whose ``value`` is the order id. Once decided or expired it is
re-rendered with who decided, when and why, and without buttons.

Pure functions: must not import slack_bolt/slack_sdk, the store, or do I/O.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from dataclasses import field as dc_field
from datetime import datetime
from typing import Any, Protocol

from gatebot.bulk.lifecycle import EXPIRY_ACTOR as BATCH_EXPIRY_ACTOR
from gatebot.money import Money
from gatebot.slack import ids
from gatebot.slack.blocks.common import (
    Block,
    Message,
    OrderView,
    actions,
    button,
    code,
    context,
    divider,
    esc,
    field,
    fields_sections,
    format_money,
    header,
    message,
    order_ref,
    plain,
    section,
    slack_date,
    truncate,
    user_mention,
)

__all__ = ["ApprovalFacts", "ApprovalView", "BatchApprovalView", "BatchFacts", "approval_buttons",
           "approval_outcome_dm", "approval_request", "approval_rows", "batch_approval_request",
           "batch_approval_rows", "batch_outcome_dm", "batch_reject_modal", "decision_line", "home_approval_blocks",
           "masked", "reject_modal", "reject_target"]

REASON_LIMIT = 500
#: Requests shown per App Home section (two blocks each, with buttons).
MAX_HOME_REQUESTS = 5
#: What a masked account value keeps visible at each end (values shorter than 6 characters show none).
_KEEP = 2


class Decision(Protocol):
    """The approval columns an order and a bulk batch share."""

    @property
    def approval_expires_at(self) -> datetime | None: ...
    @property
    def decided_by(self) -> str | None: ...
    @property
    def decided_at(self) -> datetime | None: ...
    @property
    def decision_reason(self) -> str | None: ...


class ApprovalView(OrderView, Decision, Protocol):
    """An order with its approval columns (``gatebot.store.models.Order`` has them)."""


@dataclass(frozen=True, slots=True)
class ApprovalFacts:
    """What the request message shows beyond the order, read once when the request was made (so every
    later edit shows the same figures): the balance then, the customer account and the requester's spend
    today against each daily limit (``"USD 120.00 of USD 500.00 (your daily limit)"``)."""

    balance: Money | None = None
    account: Mapping[str, str] = dc_field(default_factory=dict)
    spend: Sequence[str] = ()


def masked(value: str) -> str:
    """A customer-account value for a channel: its first and last two characters, the rest hidden."""
    text = str(value)
    if len(text) < 3 * _KEEP:
        return "•••"
    return f"{text[:_KEEP]}•••{text[-_KEEP:]}"


def _cost(order: OrderView) -> Money | None:
    if order.estimated_cost is None or not order.currency:
        return None
    return Money(order.estimated_cost, order.currency)


def _what(order: OrderView) -> str:
    if order.amount is not None:
        return f"top-up {esc(format_money(order.amount, order.currency))}"
    return f"voucher × {order.quantity or 1}"


def _decided(outcome: str, by: str | None, at: datetime | None, reason: str | None, *, sent: str) -> str:
    """Who decided a request, when and why (mrkdwn): ``outcome`` is approved, rejected or expired."""
    when = slack_date(at)
    if outcome == "expired":
        return f":hourglass: *Expired* {when}: nobody decided in time. Nothing was sent to Gate."
    if outcome == "rejected":
        why = esc(truncate(reason or "", REASON_LIMIT))
        return f":x: *Rejected* by {user_mention(by)} {when}: {why}. Nothing was sent to Gate."
    return f":white_check_mark: *Approved* by {user_mention(by)} {when}; {sent}"


def _order_outcome(order: ApprovalView) -> str:
    if order.error_code == "approval_expired":
        return "expired"
    return "rejected" if order.error_code == "approval_rejected" else "approved"


def decision_line(order: ApprovalView) -> str | None:
    """Who decided the request, when and why (mrkdwn); ``None`` while it is open."""
    if order.decided_by is None:
        return None
    return _decided(_order_outcome(order), order.decided_by, order.decided_at, order.decision_reason,
                    sent="sent to Gate.")


def _buttons(value: str) -> Block:
    return actions(button("Approve", action_id=ids.APPROVAL_APPROVE, value=value, style="primary"),
                   button("Reject…", action_id=ids.APPROVAL_REJECT, value=value, style="danger"))


def approval_buttons(order: OrderView) -> Block:
    """Approve / Reject… naming the order (``value``: its id; a batch's buttons name ``B12``)."""
    return _buttons(str(order.id))


def approval_request(order: ApprovalView, facts: ApprovalFacts) -> Message:
    """The request message in the approvers' channel: open (with buttons) or decided (without)."""
    ref, name = order_ref(order), esc(truncate(order.product_name or "?", 150))
    why = esc(truncate((order.status_reason or "").removeprefix("Needs approval: ").rstrip("."), REASON_LIMIT))
    blocks: list[Block] = [
        header(f"Approval {'request' if order.decided_by else 'needed'}: order {ref}"),
        section(f"{user_mention(order.requester)} wants to order *{name}* ({_what(order)})"
                + (f" — {why}." if why and order.decided_by is None else ".")),
    ]
    cost = _cost(order)
    fields = [field("Product", name), field("Estimated cost", esc(format_money(order.estimated_cost, order.currency)))]
    if facts.account:
        fields.append(field("Account", "\n".join(f"{esc(truncate(k, 40))}: {code(masked(v))}"
                                                 for k, v in list(facts.account.items())[:5])))
    if facts.balance is not None and cost is not None and facts.balance.currency == cost.currency:
        fields.append(field("Balance now → after", f"{esc(facts.balance)} → {esc(facts.balance - cost)}"))
    fields.append(field("Requester's spend today", "\n".join(esc(s) for s in facts.spend) or "no daily limit"))
    fields.append(field("Expires", slack_date(order.approval_expires_at)))
    if order.is_test:
        fields.append(field("Test order", "yes"))
    blocks += fields_sections(fields)
    decided = decision_line(order)
    if decided is None:
        blocks.append(approval_buttons(order))
        blocks.append(context("Only an approver other than the requester may decide. Nothing is sent to Gate "
                              "until someone approves."))
        text = f"Approval needed: order {ref} ({name}), {format_money(order.estimated_cost, order.currency)}"
    else:
        blocks.append(section(decided))
        text = f"Order {ref} ({name}): approval decided"
    return message(text, blocks)


def approval_outcome_dm(order: ApprovalView) -> Message:
    """The requester's DM when their request was approved, rejected or expired."""
    ref, name = order_ref(order), esc(truncate(order.product_name or "?", 150))
    if order.error_code == "approval_expired":
        title = f"Your order {ref} expired without approval"
        body = (f"Nobody approved *{name}* in time, so nothing was sent to Gate or charged. Place it again with "
                f"`{ids.COMMAND} buy` if it is still needed.")
    elif order.error_code == "approval_rejected":
        why = esc(truncate(order.decision_reason or "", REASON_LIMIT))
        title = f"Your order {ref} was rejected"
        body = (f"{user_mention(order.decided_by)} rejected *{name}*: {why}. Nothing was sent to Gate or "
                "charged.")
    else:
        title = f"Your order {ref} was approved"
        body = (f"{user_mention(order.decided_by)} approved *{name}*; it has been sent to Gate. The order "
                "message follows it from here.")
    return message(f"{title}.", [header(title), section(body)])


def approval_rows(orders: Sequence[ApprovalView], *, may_decide: Callable[[ApprovalView], bool]) -> list[Block]:
    """Open requests as list rows (``/gate approvals``, App Home): one line each, the buttons for those
    the viewer may decide."""
    blocks: list[Block] = []
    for order in orders:
        name = esc(truncate(order.product_name or "?", 80))
        blocks.append(section(
            f":raised_hand: *{order_ref(order)}* · {name} · {_what(order)} · "
            f"{esc(format_money(order.estimated_cost, order.currency))}\n"
            f"by {user_mention(order.requester)} · expires {slack_date(order.approval_expires_at)}"))
        if may_decide(order):
            blocks.append(approval_buttons(order))
    return blocks


def home_approval_blocks(waiting: Sequence[ApprovalView], mine: Sequence[ApprovalView], *, approver: bool,
                         waiting_batches: Sequence[BatchApprovalView] = (),
                         my_batches: Sequence[BatchApprovalView] = ()) -> list[Block]:
    """App Home's "Waiting for your approval" (approvers: orders and bulk batches they may decide, with
    buttons) and "Your requests" (the viewer's own open requests). At most :data:`MAX_HOME_REQUESTS` rows
    each, batches first (one request, many orders)."""
    blocks: list[Block] = []
    to_decide, own = len(waiting) + len(waiting_batches), len(mine) + len(my_batches)
    if approver or to_decide:
        shown_batches = waiting_batches[:MAX_HOME_REQUESTS]
        rows = (batch_approval_rows(shown_batches, may_decide=lambda _b: True)
                + approval_rows(waiting[:MAX_HOME_REQUESTS - len(shown_batches)], may_decide=lambda _o: True))
        blocks += [divider(), section(f"*Waiting for your approval* ({to_decide})")]
        blocks += rows or [context("Nothing.")]
    if own:
        shown_mine = my_batches[:MAX_HOME_REQUESTS]
        blocks += [divider(), section(f"*Your requests* ({own})")]
        blocks += batch_approval_rows(shown_mine, may_decide=lambda _b: False)
        blocks += approval_rows(mine[:MAX_HOME_REQUESTS - len(shown_mine)], may_decide=lambda _o: False)
    if to_decide > MAX_HOME_REQUESTS or own > MAX_HOME_REQUESTS:
        blocks.append(context(f"More with `{ids.COMMAND} approvals`."))
    return blocks


# -- bulk batches ----------------------------------------------------------------------------------------


class BatchApprovalView(Decision, Protocol):
    """A bulk batch with its approval columns (``gatebot.store.models.Batch`` has them)."""

    @property
    def id(self) -> int | None: ...
    @property
    def number(self) -> str: ...
    @property
    def requester(self) -> str: ...
    @property
    def rows(self) -> int: ...
    @property
    def source_name(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def approval_reason(self) -> str | None: ...
    def totals(self) -> dict[str, Money]: ...


@dataclass(frozen=True, slots=True)
class BatchFacts:
    """What a batch's request shows beyond the batch, read once when it was requested: the balance then
    per currency (``None``: unknown) and the rows per product (``(name, rows)``, most rows first)."""

    balances: Mapping[str, Money | None] = dc_field(default_factory=dict)
    products: Sequence[tuple[str, int]] = ()


#: Products a batch's request lists by name (the rest are counted).
MAX_PRODUCTS = 6


def _batch_outcome(batch: BatchApprovalView) -> str:
    if batch.status != "rejected":
        return "approved"
    return "expired" if batch.decided_by == BATCH_EXPIRY_ACTOR else "rejected"


def _totals(batch: BatchApprovalView) -> str:
    return "\n".join(esc(m) for _, m in sorted(batch.totals().items())) or "nothing"


def batch_approval_request(batch: BatchApprovalView, facts: BatchFacts) -> Message:
    """A bulk batch's request message in the approvers' channel: rows, products, the total and the balance
    now → after per currency, why, the expiry — never an account value or a code — with Approve / Reject…
    (``value``: ``B12``) while open, and who decided, when and why once decided."""
    name, decided = code(batch.source_name, 80), batch.decided_by is not None
    why = esc(truncate(batch.approval_reason or "", REASON_LIMIT))
    blocks: list[Block] = [
        header(f"Approval {'request' if decided else 'needed'}: batch {batch.number}"),
        section(f"{user_mention(batch.requester)} wants to place *{batch.rows:,} orders* from {name}"
                + (f" — {why}." if why and not decided else ".")),
    ]
    products = [f"{esc(truncate(p, 60))} × {n:,}" for p, n in facts.products[:MAX_PRODUCTS]]
    if len(facts.products) > MAX_PRODUCTS:
        products.append(f"…and {len(facts.products) - MAX_PRODUCTS} more products")
    after = []
    for cur, total in sorted(batch.totals().items()):
        now = facts.balances.get(cur)
        after.append(f"{esc(now)} → {esc(now - total)}" if now is not None else f"{cur}: unknown")
    fields = [field("Orders", f"{batch.rows:,}"), field("Products", "\n".join(products) or "?"),
              field("Estimated total", _totals(batch)), field("Balance now → after", "\n".join(after)),
              field("Expires", slack_date(batch.approval_expires_at))]
    blocks += fields_sections(fields)
    if not decided:
        blocks.append(_buttons(batch.number))
        blocks.append(context("Only an approver other than the requester may decide. Nothing is sent to Gate "
                              "until someone approves; then the rows are placed one by one."))
        text = f"Approval needed: batch {batch.number} ({batch.rows:,} orders), {_totals(batch)}"
    else:
        blocks.append(section(_decided(_batch_outcome(batch), batch.decided_by, batch.decided_at,
                                       batch.decision_reason, sent="its rows are being placed.")))
        text = f"Batch {batch.number}: approval decided"
    return message(text, blocks)


def batch_outcome_dm(batch: BatchApprovalView) -> Message:
    """The requester's DM when their batch was approved, rejected or expired."""
    outcome, what = _batch_outcome(batch), f"*{batch.rows:,} orders* from {code(batch.source_name, 80)}"
    if outcome == "expired":
        title = f"Your batch {batch.number} expired without approval"
        body = (f"Nobody approved {what} in time, so nothing was sent to Gate or charged. Upload the file again "
                f"with `{ids.COMMAND} bulk` if it is still needed.")
    elif outcome == "rejected":
        why = esc(truncate(batch.decision_reason or "", REASON_LIMIT))
        title = f"Your batch {batch.number} was rejected"
        body = f"{user_mention(batch.decided_by)} rejected {what}: {why}. Nothing was sent to Gate or charged."
    else:
        title = f"Your batch {batch.number} was approved"
        body = (f"{user_mention(batch.decided_by)} approved {what}; its rows are being placed. The batch's "
                "progress message follows it, and the results come to you here when it ends.")
    return message(f"{title}.", [header(title), section(body)])


def batch_approval_rows(batches: Sequence[BatchApprovalView], *,
                        may_decide: Callable[[BatchApprovalView], bool]) -> list[Block]:
    """Open batch requests as list rows (``/gate approvals``, App Home), with buttons where allowed."""
    blocks: list[Block] = []
    for batch in batches:
        blocks.append(section(
            f":raised_hand: *Batch {batch.number}* · {batch.rows:,} orders from {code(batch.source_name, 60)} · "
            f"{_totals(batch).replace(chr(10), ', ')}\n"
            f"by {user_mention(batch.requester)} · expires {slack_date(batch.approval_expires_at)}"))
        if may_decide(batch):
            blocks.append(_buttons(batch.number))
    return blocks


# -- the reject modal ------------------------------------------------------------------------------------


def _reject_view(title: str, summary: str, target: dict[str, int]) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": ids.APPROVAL_REJECT_MODAL,
        "title": plain(title, 24),
        "submit": plain("Reject", 24),
        "close": plain("Cancel", 24),
        "private_metadata": json.dumps(target),
        "blocks": [
            section(summary),
            {"type": "input", "block_id": ids.APPROVAL_REASON, "label": plain("Reason", 2000),
             "hint": plain("The requester is told this reason by DM.", 2000),
             "element": {"type": "plain_text_input", "action_id": ids.APPROVAL_REASON, "multiline": True,
                         "max_length": REASON_LIMIT}},
        ],
    }


def reject_modal(order: OrderView) -> dict[str, Any]:
    """Asks why (required); ``private_metadata`` carries the order id."""
    name = esc(truncate(order.product_name or "?", 150))
    return _reject_view("Reject order", f"Reject order *{order_ref(order)}* ({name}, "
                                        f"{esc(format_money(order.estimated_cost, order.currency))}) by "
                                        f"{user_mention(order.requester)}? Nothing is sent to Gate.",
                        {"order": order.id or 0})


def batch_reject_modal(batch: BatchApprovalView) -> dict[str, Any]:
    """The same form for a bulk batch; ``private_metadata`` carries the batch number."""
    return _reject_view("Reject batch", f"Reject batch *{batch.number}* ({batch.rows:,} orders from "
                                        f"{code(batch.source_name, 80)}, {_totals(batch).replace(chr(10), ', ')}) "
                                        f"by {user_mention(batch.requester)}? Nothing is sent to Gate.",
                        {"batch": batch.id or 0})


def reject_target(view: Mapping[str, Any]) -> tuple[str, int] | None:
    """``("order", 7)`` or ``("batch", 12)`` from a reject modal's ``private_metadata``; ``None`` if the
    view is not ours."""
    try:
        data = json.loads(str(view.get("private_metadata") or ""))
    except ValueError:
        return None
    for kind in ("order", "batch"):
        value = data.get(kind) if isinstance(data, dict) else None
        if type(value) is int:
            return kind, value
    return None
