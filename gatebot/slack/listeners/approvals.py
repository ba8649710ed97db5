"""Approve / Reject buttons on approval requests, the reject modal, and the open requests a person sees.

Routing table::

    block_actions   approval_approve        ack, then the core's approve (the clicker's id and roles)
    block_actions   approval_reject         ack, ask the core whether the clicker may decide, open the modal
    view_submission approval_reject_modal   the core's reject with the reason; a refusal (or no reason)
                                            is an inline error in the modal

Who may decide is the core's rule (:func:`gatebot.access.approval_refusal`, via ``OrderService``): never
the requester, only an approver role; the core's compare-and-set makes a double click, a Slack retry or
two approvers at once one decision and one Gate order. A refusal is answered privately and politely and
changes nothing. A button on a request message must carry that request's order id (the message's ``ts``
is stored with it): a crafted ``block_actions`` naming another order is refused before the core is asked.
While Gate is down an approval is refused up front and the request stays open.

A bulk batch's request uses the same buttons, whose ``value`` is the batch's number (``B12``), and the same
modal: the decisions go to ``BulkService.approve/reject`` (the same four-eyes rule in the core), with the same
tie to the batch's own request message.

:func:`requests_for` is what ``/gate approvals`` and App Home list. Must not import the scheduler.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Literal

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from gatebot.bulk import BatchRefused, parse_batch_ref
from gatebot.orders import ApprovalRefused, GateDown
from gatebot.slack import ids
from gatebot.slack.approval_notices import request_key
from gatebot.slack.blocks.approvals import (
    approval_rows,
    batch_approval_rows,
    batch_reject_modal,
    reject_modal,
    reject_target,
)
from gatebot.slack.blocks.common import Message, context, header, message, section
from gatebot.slack.blocks.messages import error_message
from gatebot.slack.deps import Deps
from gatebot.slack.listeners import SLACK_FAILURES, Reply, acked_first, error_code, private_reply
from gatebot.store import repo
from gatebot.store.models import Batch, Order

__all__ = ["OpenRequests", "approvals_message", "register", "requests_for"]

log = logging.getLogger(__name__)

#: Open requests read for a list (``/gate approvals`` shows at most :data:`MAX_LISTED`).
OPEN_SCAN = 200
MAX_LISTED = 20
NOT_THIS_REQUEST = "That button does not belong to this approval request, so nothing changed."


def register(app: AsyncApp, deps: Deps) -> None:
    app.action(ids.APPROVAL_APPROVE)(_approve(deps))
    app.action(ids.APPROVAL_REJECT)(_reject_clicked(deps))
    app.view(ids.APPROVAL_REJECT_MODAL)(_reject_submitted(deps))


# -- what a person sees ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OpenRequests:
    """The open requests a person sees: those waiting for their decision and their own, orders and batches."""

    waiting: list[Order] = field(default_factory=list)
    mine: list[Order] = field(default_factory=list)
    waiting_batches: list[Batch] = field(default_factory=list)
    my_batches: list[Batch] = field(default_factory=list)

    @property
    def to_decide(self) -> int:
        return len(self.waiting) + len(self.waiting_batches)

    @property
    def own(self) -> int:
        return len(self.mine) + len(self.my_batches)


async def requests_for(deps: Deps, user: str, roles: frozenset[str]) -> OpenRequests:
    """What waits for ``user``'s decision (the core's rule: an approver, not the requester) and ``user``'s
    own open requests, oldest first."""
    found = OpenRequests()
    for order in await deps.orders.open_approvals(limit=OPEN_SCAN):
        if order.requester == user:
            found.mine.append(order)
        elif deps.orders.approver_refusal(user, roles, order) is None:
            found.waiting.append(order)
    for batch in await deps.bulk.open_approvals(limit=OPEN_SCAN):
        if batch.requester == user:
            found.my_batches.append(batch)
        elif deps.orders.approver_refusal(user, roles, batch) is None:
            found.waiting_batches.append(batch)
    return found


async def approvals_message(deps: Deps, user: str, roles: frozenset[str]) -> Message:
    """``/gate approvals``: the requests the person may decide (with buttons) and their own; batches first."""
    found = await requests_for(deps, user, roles)
    batches = (found.waiting_batches + found.my_batches)[:MAX_LISTED]
    orders = (found.waiting + found.mine)[:MAX_LISTED - len(batches)]
    blocks = [header("Approval requests")]
    if not batches and not orders:
        blocks.append(section("No approval requests are waiting for you."))
        return message("No approval requests are waiting for you.", blocks)
    own = {o.id for o in found.mine}
    blocks += batch_approval_rows(batches, may_decide=lambda b: b.requester != user)
    blocks += approval_rows(orders, may_decide=lambda o: o.id not in own)
    total, shown = found.to_decide + found.own, len(batches) + len(orders)
    if total > shown:
        blocks.append(context(f"Showing {shown} of {total}; the oldest first."))
    return message(f"{found.to_decide} approval request(s) waiting for you, {found.own} of your own", blocks)


# -- buttons --------------------------------------------------------------------------------------------------


Kind = Literal["order", "batch"]


def _target(action: dict[str, Any]) -> tuple[Kind, int] | None:
    """What a button names: ``("order", 12)`` for ``12``, ``("batch", 3)`` for ``B3``."""
    value = str(action.get("value") or "")
    if value.isdigit() and len(value) < 12:
        return "order", int(value)
    batch = parse_batch_ref(value) if value.startswith("B") else None
    return ("batch", batch) if batch is not None else None


def _label(target: tuple[Kind, int]) -> str:
    return f"order #{target[1]}" if target[0] == "order" else f"batch B{target[1]}"


async def _belongs(deps: Deps, body: dict[str, Any], target: tuple[Kind, int]) -> bool:
    """A button on a channel message must be on that request's own message (App Home, an ephemeral list
    and modals carry no such tie: the core's checks decide there)."""
    container = body.get("container") or {}
    if container.get("type") != "message" or container.get("is_ephemeral"):
        return True
    key = request_key(target[1] if target[0] == "order" else f"B{target[1]}")
    stored = await deps.db.run(lambda s: repo.kv_get(s, key))
    return (isinstance(stored, dict) and stored.get("ts") == container.get("message_ts")
            and stored.get("channel") == container.get("channel_id"))


async def _checked(deps: Deps, body: dict[str, Any], action: dict[str, Any], user: str,
                   reply: Reply) -> tuple[Kind, int] | None:
    """What the button names, when it may be acted on; else the clicker was told why."""
    target = _target(action)
    if target is None or not await _belongs(deps, body, target):
        named = None if target is None else (f"#{target[1]}" if target[0] == "order" else f"B{target[1]}")
        await deps.record_audit(actor=user, action="approval.decide", target=named, allowed=False,
                                detail="a button that does not belong to the request message")
        await reply(error_message(NOT_THIS_REQUEST))
        return None
    return target


def _channel(body: dict[str, Any]) -> str | None:
    channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
    return str(channel) if channel else None


def _approve(deps: Deps) -> Any:
    @acked_first
    async def approve(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient,
                      respond: AsyncRespond) -> None:
        await ack()
        user = str(body["user"]["id"])
        reply = private_reply(client, user=user, channel=_channel(body), respond=respond)
        target = await _checked(deps, body, action, user, reply)
        if target is None:
            return
        kind, number = target
        try:
            if kind == "batch":
                await deps.bulk.approve(number, user, roles=await deps.roles.of(user))
            else:
                await deps.orders.approve(number, user, roles=await deps.roles.of(user))
        except (ApprovalRefused, BatchRefused) as exc:
            await reply(error_message(str(exc)))
        except GateDown as exc:
            label = _label(target)
            await reply(error_message(f"{label[0].upper()}{label[1:]} was not approved: {exc} The request stays "
                                      "open; approve it again once Gate is back."))

    return approve


async def _reject_form(deps: Deps, target: tuple[Kind, int], user: str) -> dict[str, Any] | str:
    """The reject modal for ``target``, or why ``user`` may not decide it (the core's answer)."""
    kind, number = target
    roles = await deps.roles.of(user)
    if kind == "batch":
        refusal = await deps.bulk.decision_refusal(number, user, roles=roles)
        batch = await deps.bulk.get(number) if refusal is None else None
        return batch_reject_modal(batch) if batch is not None else refusal or f"There is no batch B{number}."
    refusal = await deps.orders.decision_refusal(number, user, roles=roles)
    order = await deps.db.run(lambda s: repo.get_order(s, number)) if refusal is None else None
    return reject_modal(order) if order is not None else refusal or f"There is no order #{number}."


def _reject_clicked(deps: Deps) -> Any:
    @acked_first
    async def reject_clicked(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient,
                             respond: AsyncRespond) -> None:
        await ack()
        user, channel = str(body["user"]["id"]), _channel(body)
        reply = private_reply(client, user=user, channel=channel, respond=respond)
        target = await _checked(deps, body, action, user, reply)
        if target is None:
            return
        form = await _reject_form(deps, target, user)
        if isinstance(form, str):
            await reply(error_message(form))
            return
        try:
            await client.views_open(trigger_id=str(body["trigger_id"]), view=form)
        except SLACK_FAILURES as exc:
            log.info("could not open the reject modal (%s)", error_code(exc))
            await reply(error_message(f"I couldn't open the form to reject {_label(target)} (Slack said "
                                      f"{error_code(exc)}). Try the button again."))

    return reject_clicked


def _reject_submitted(deps: Deps) -> Any:
    @acked_first
    async def reject_submitted(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any],
                               client: AsyncWebClient) -> None:
        user = str(body["user"]["id"])
        target = reject_target(view)
        if target is None:
            await ack(response_action="errors", errors={ids.APPROVAL_REASON: "This form is out of date: close it."})
            return
        state = (view.get("state") or {}).get("values") or {}
        reason = str(((state.get(ids.APPROVAL_REASON) or {}).get(ids.APPROVAL_REASON) or {}).get("value") or "")
        roles = await deps.roles.of(user)
        if target[0] == "order":
            try:  # the store only (no Gate call): well within Slack's 3 s, so a refusal can stay in the form
                await deps.orders.reject(target[1], user, reason, roles=roles)
            except ApprovalRefused as exc:
                await ack(response_action="errors", errors={ids.APPROVAL_REASON: str(exc)[:300]})
                return
            await ack()
            return
        # A batch ends every row: thousands of rows may take longer than Slack's 3 s, so what can be refused
        # is asked first (in the form), and a decision someone else made meanwhile is told privately.
        refusal = ("Say why the batch is rejected (the requester is told the reason)." if not reason.strip()
                   else await deps.bulk.decision_refusal(target[1], user, roles=roles))
        if refusal is not None:
            await ack(response_action="errors", errors={ids.APPROVAL_REASON: refusal[:300]})
            return
        await ack()
        try:
            await deps.bulk.reject(target[1], user, reason, roles=roles)
        except BatchRefused as exc:
            await private_reply(client, user=user)(error_message(str(exc)))

    return reject_submitted
