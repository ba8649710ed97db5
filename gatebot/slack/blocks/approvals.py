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

__all__ = ["ApprovalFacts", "ApprovalView", "approval_buttons", "approval_outcome_dm", "approval_request",
           "approval_rows", "decision_line", "home_approval_blocks", "masked", "reject_modal", "reject_order_id"]

REASON_LIMIT = 500
#: Requests shown per App Home section (two blocks each, with buttons).
MAX_HOME_REQUESTS = 5
#: What a masked account value keeps visible at each end (values shorter than 6 characters show none).
_KEEP = 2


class ApprovalView(OrderView, Protocol):
    """An order with its approval columns (``gatebot.store.models.Order`` has them)."""

    @property
    def approval_expires_at(self) -> datetime | None: ...
    @property
    def decided_by(self) -> str | None: ...
    @property
    def decided_at(self) -> datetime | None: ...
    @property
    def decision_reason(self) -> str | None: ...


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


def decision_line(order: ApprovalView) -> str | None:
    """Who decided the request, when and why (mrkdwn); ``None`` while it is open."""
    if order.decided_by is None:
        return None
    when = slack_date(order.decided_at)
    if order.error_code == "approval_expired":
        return f":hourglass: *Expired* {when}: nobody decided in time. Nothing was sent to Gate."
    why = esc(truncate(order.decision_reason or "", REASON_LIMIT))
    if order.error_code == "approval_rejected":
        return f":x: *Rejected* by {user_mention(order.decided_by)} {when}: {why}. Nothing was sent to Gate."
    return f":white_check_mark: *Approved* by {user_mention(order.decided_by)} {when}; sent to Gate."


def approval_buttons(order: OrderView) -> Block:
    value = str(order.id)
    return actions(button("Approve", action_id=ids.APPROVAL_APPROVE, value=value, style="primary"),
                   button("Reject…", action_id=ids.APPROVAL_REJECT, value=value, style="danger"))


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


def home_approval_blocks(waiting: Sequence[ApprovalView], mine: Sequence[ApprovalView], *,
                         approver: bool) -> list[Block]:
    """App Home's "Waiting for your approval" (approvers: requests they may decide, with buttons) and
    "Your requests" (the viewer's own open requests). At most :data:`MAX_HOME_REQUESTS` rows each."""
    blocks: list[Block] = []
    if approver or waiting:
        blocks += [divider(), section(f"*Waiting for your approval* ({len(waiting)})")]
        blocks += approval_rows(waiting[:MAX_HOME_REQUESTS], may_decide=lambda _o: True) or [context("Nothing.")]
    if mine:
        blocks += [divider(), section(f"*Your requests* ({len(mine)})")]
        blocks += approval_rows(mine[:MAX_HOME_REQUESTS], may_decide=lambda _o: False)
    if len(waiting) > MAX_HOME_REQUESTS or len(mine) > MAX_HOME_REQUESTS:
        blocks.append(context(f"More with `{ids.COMMAND} approvals`."))
    return blocks


# -- the reject modal ------------------------------------------------------------------------------------


def reject_modal(order: OrderView) -> dict[str, Any]:
    """Asks why (required); ``private_metadata`` carries the order id."""
    name = esc(truncate(order.product_name or "?", 150))
    return {
        "type": "modal",
        "callback_id": ids.APPROVAL_REJECT_MODAL,
        "title": plain("Reject order", 24),
        "submit": plain("Reject", 24),
        "close": plain("Cancel", 24),
        "private_metadata": json.dumps({"order": order.id}),
        "blocks": [
            section(f"Reject order *{order_ref(order)}* ({name}, "
                    f"{esc(format_money(order.estimated_cost, order.currency))}) by "
                    f"{user_mention(order.requester)}? Nothing is sent to Gate."),
            {"type": "input", "block_id": ids.APPROVAL_REASON, "label": plain("Reason", 2000),
             "hint": plain("The requester is told this reason by DM.", 2000),
             "element": {"type": "plain_text_input", "action_id": ids.APPROVAL_REASON, "multiline": True,
                         "max_length": REASON_LIMIT}},
        ],
    }


def reject_order_id(view: Mapping[str, Any]) -> int | None:
    """The order id in a reject modal's ``private_metadata``; ``None`` if the view is not ours."""
    try:
        data = json.loads(str(view.get("private_metadata") or ""))
    except ValueError:
        return None
    order = data.get("order") if isinstance(data, dict) else None
    return order if isinstance(order, int) else None
