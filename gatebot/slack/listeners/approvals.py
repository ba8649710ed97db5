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

:func:`requests_for` is what ``/gate approvals`` and App Home list. Must not import the scheduler.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from gatebot.orders import ApprovalRefused, GateDown
from gatebot.slack import ids
from gatebot.slack.approval_notices import APPROVAL_MESSAGE_PREFIX
from gatebot.slack.blocks.approvals import approval_rows, reject_modal, reject_order_id
from gatebot.slack.blocks.common import Message, context, header, message, section
from gatebot.slack.blocks.messages import error_message
from gatebot.slack.deps import Deps
from gatebot.slack.listeners import SLACK_FAILURES, Reply, acked_first, error_code, private_reply
from gatebot.store import repo
from gatebot.store.models import Order

__all__ = ["approvals_message", "register", "requests_for"]

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


async def requests_for(deps: Deps, user: str, roles: frozenset[str]) -> tuple[list[Order], list[Order]]:
    """``(waiting for user's decision, user's own open requests)``, oldest first."""
    waiting: list[Order] = []
    mine: list[Order] = []
    for order in await deps.orders.open_approvals(limit=OPEN_SCAN):
        if order.requester == user:
            mine.append(order)
        elif deps.orders.approver_refusal(user, roles, order) is None:
            waiting.append(order)
    return waiting, mine


async def approvals_message(deps: Deps, user: str, roles: frozenset[str]) -> Message:
    """``/gate approvals``: the requests the person may decide (with buttons) and their own."""
    waiting, mine = await requests_for(deps, user, roles)
    shown = (waiting + mine)[:MAX_LISTED]
    blocks = [header("Approval requests")]
    if not shown:
        blocks.append(section("No approval requests are waiting for you."))
        return message("No approval requests are waiting for you.", blocks)
    own = {o.id for o in mine}
    blocks += approval_rows(shown, may_decide=lambda o: o.id not in own)
    if len(waiting) + len(mine) > len(shown):
        blocks.append(context(f"Showing {len(shown)} of {len(waiting) + len(mine)}; the oldest first."))
    return message(f"{len(waiting)} approval request(s) waiting for you, {len(mine)} of your own", blocks)


# -- buttons --------------------------------------------------------------------------------------------------


def _order_id(action: dict[str, Any]) -> int | None:
    value = str(action.get("value") or "")
    return int(value) if value.isdigit() and len(value) < 12 else None


async def _belongs(deps: Deps, body: dict[str, Any], order_id: int) -> bool:
    """A button on a channel message must be on that order's request message (App Home, an ephemeral list
    and modals carry no such tie: the core's checks decide there)."""
    container = body.get("container") or {}
    if container.get("type") != "message" or container.get("is_ephemeral"):
        return True
    key = f"{APPROVAL_MESSAGE_PREFIX}{order_id}"
    stored = await deps.db.run(lambda s: repo.kv_get(s, key))
    return (isinstance(stored, dict) and stored.get("ts") == container.get("message_ts")
            and stored.get("channel") == container.get("channel_id"))


async def _checked(deps: Deps, body: dict[str, Any], action: dict[str, Any], user: str, reply: Reply) -> int | None:
    """The order id the button names, when it may be acted on; else the clicker was told why."""
    order_id = _order_id(action)
    if order_id is None or not await _belongs(deps, body, order_id):
        await deps.record_audit(actor=user, action="approval.decide", target=f"#{order_id}" if order_id else None,
                                allowed=False, detail="a button that does not belong to the request message")
        await reply(error_message(NOT_THIS_REQUEST))
        return None
    return order_id


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
        order_id = await _checked(deps, body, action, user, reply)
        if order_id is None:
            return
        try:
            await deps.orders.approve(order_id, user, roles=await deps.roles.of(user))
        except ApprovalRefused as exc:
            await reply(error_message(str(exc)))
        except GateDown as exc:
            await reply(error_message(f"Order #{order_id} was not approved: {exc} The request stays open; "
                                      "approve it again once Gate is back."))

    return approve


def _reject_clicked(deps: Deps) -> Any:
    @acked_first
    async def reject_clicked(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient,
                             respond: AsyncRespond) -> None:
        await ack()
        user, channel = str(body["user"]["id"]), _channel(body)
        reply = private_reply(client, user=user, channel=channel, respond=respond)
        order_id = await _checked(deps, body, action, user, reply)
        if order_id is None:
            return
        refusal = await deps.orders.decision_refusal(order_id, user, roles=await deps.roles.of(user))
        order = await deps.db.run(lambda s: repo.get_order(s, order_id)) if refusal is None else None
        if order is None:
            await reply(error_message(refusal or f"There is no order #{order_id}."))
            return
        try:
            await client.views_open(trigger_id=str(body["trigger_id"]), view=reject_modal(order))
        except SLACK_FAILURES as exc:
            log.info("could not open the reject modal (%s)", error_code(exc))
            await reply(error_message(f"I couldn't open the form to reject order #{order_id} (Slack said "
                                      f"{error_code(exc)}). Try the button again."))

    return reject_clicked


def _reject_submitted(deps: Deps) -> Any:
    async def reject_submitted(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        user = str(body["user"]["id"])
        target = reject_order_id(view)
        if target is None:
            await ack(response_action="errors", errors={ids.APPROVAL_REASON: "This form is out of date: close it."})
            return
        state = (view.get("state") or {}).get("values") or {}
        reason = str(((state.get(ids.APPROVAL_REASON) or {}).get(ids.APPROVAL_REASON) or {}).get("value") or "")
        try:  # the store only (no Gate call): well within Slack's 3 s, so a refusal can stay in the form
            await deps.orders.reject(target, user, reason, roles=await deps.roles.of(user))
        except ApprovalRefused as exc:
            await ack(response_action="errors", errors={ids.APPROVAL_REASON: str(exc)[:300]})
            return
        await ack()

    return reject_submitted
