"""Order lookups: ``/gate order <ref>``, the "View details" / "Refresh" buttons and the message shortcut.

Routing table::

    block_actions  order_view       details of one order, privately (ephemeral, or DM from the Home tab)
    block_actions  order_refresh    ask Gate about a pending order, then re-render the message clicked
    message_action lookup_order     every order referenced in a message (#123, Gate id, external ref, key)

Who sees what: the support role (and admins) may look up any order; anyone may look up their own.
The voucher code is shown only to whom :func:`gatebot.access.may_see_codes` allows (the requester and
``GATEBOT_CODE_ROLES``), and only in replies
nobody else can see (ephemeral or DM). A code shown is audited (``code.view``, allowed); a lookup or
code refused is audited too (allowed=False). Must not import the scheduler.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from gatebot import gate
from gatebot.access import may_see_codes
from gatebot.orders import GateDown
from gatebot.slack import ids
from gatebot.slack.blocks.common import Message, code, truncate
from gatebot.slack.blocks.messages import denied_message, error_message, order_detail, order_message, orders_list
from gatebot.slack.deps import Deps
from gatebot.slack.grammar import ROLE_SUPPORT, find_references
from gatebot.slack.listeners import SLACK_FAILURES, acked_first, error_code, private_reply, with_note
from gatebot.store.models import Order, OrderStatus

__all__ = ["order_detail_for", "order_lookup", "register"]

log = logging.getLogger(__name__)

#: References looked up from one message (the shortcut); more are ignored.
MAX_SHORTCUT_REFS = 10


def register(app: AsyncApp, deps: Deps) -> None:
    app.action(ids.ORDER_VIEW)(_view_button(deps))
    app.action(ids.ORDER_REFRESH)(_refresh_button(deps))
    app.message_shortcut(ids.LOOKUP_ORDER)(_shortcut(deps))


# -- the lookup itself ------------------------------------------------------------------------------------


async def _denied(deps: Deps, viewer: str, target: str | None) -> Message:
    await deps.record_audit(actor=viewer, action="order.view", target=target, allowed=False,
                            detail="not the requester and no support role")
    return denied_message(what="looking up other people's orders", role=ROLE_SUPPORT)


async def order_lookup(deps: Deps, *, viewer: str, ref: str, roles: Iterable[str] | None = None) -> Message:
    """What ``viewer`` gets for ``/gate order <ref>`` (details, a polite refusal, or "not found")."""
    have = frozenset(roles) if roles is not None else await deps.roles.of(viewer)
    matches = await deps.orders.lookup(ref)
    support = ROLE_SUPPORT in have
    if not matches:
        if not support:
            return await _denied(deps, viewer, truncate(ref, 120))
        return error_message(f"No order matches {ref}. Give its #number, Gate order id (or its first 8 "
                             "characters), external ref or idempotency key.", usage=f"{ids.COMMAND} order <ref>")
    visible = matches if support else [o for o in matches if o.requester == viewer]
    if not visible:
        return await _denied(deps, viewer, matches[0].number if len(matches) == 1 else truncate(ref, 120))
    if len(visible) == 1:
        return await order_detail_for(deps, visible[0], viewer=viewer, roles=have)
    return with_note(orders_list(visible, f"Orders matching {truncate(ref, 60)}"),
                     f"{len(visible)} orders match {code(ref, 80)}: pick one with its #number.")


async def order_detail_for(deps: Deps, order: Order, *, viewer: str, roles: Iterable[str]) -> Message:
    """The detail message for ``viewer``: with the code when they may see it (audited either way)."""
    order_id = order.id
    assert order_id is not None
    content: Mapping[str, Any] | None = None
    note: str | None = None
    if order.order_content_enc is not None:
        if may_see_codes(viewer, requester=order.requester, roles=roles, code_roles=deps.roles.code_roles,
                         bulk_row=order.batch_id is not None):
            content = deps.orders.content(order)  # decrypts the row already read: no store access
            await deps.record_audit(actor=viewer, action="code.view", target=order.number, allowed=True,
                                    detail="requester" if viewer == order.requester else "code role")
        else:
            bulk = order.batch_id is not None
            await deps.record_audit(actor=viewer, action="code.view", target=order.number, allowed=False,
                                    detail="a bulk row" if bulk else "not the requester and no code role")
            note = (f":lock: This order is row {order.batch_row:,} of batch B{order.batch_id}: its codes are only "
                    f"in the batch's results file, sent to <@{order.requester}> by DM." if bulk else
                    f":lock: Codes are shown only to the requester (<@{order.requester}>) and to the "
                    f"{', '.join(sorted(deps.roles.code_roles)) or 'admin'} role.")
    history = await deps.orders.history(order_id)
    message = order_detail(order, history, content=content,
                           resume_on_deposit=deps.settings.gatebot_resume_on_deposit)
    return with_note(message, note) if note else message


# -- buttons ---------------------------------------------------------------------------------------------------


def _where(body: Mapping[str, Any]) -> tuple[str | None, Mapping[str, Any]]:
    """(channel id, container) of an interaction."""
    container = body.get("container") or {}
    channel = (body.get("channel") or {}).get("id") or container.get("channel_id")
    return (str(channel) if channel else None), container


def _view_button(deps: Deps) -> Any:
    @acked_first
    async def view_order(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient,
                         respond: AsyncRespond | None) -> None:
        await ack()
        user = str(body["user"]["id"])
        channel, _container = _where(body)
        reply = private_reply(client, user=user, channel=channel, respond=respond)
        await reply(await order_lookup(deps, viewer=user, ref=f"#{action.get('value', '')}"))

    return view_order


def _refresh_button(deps: Deps) -> Any:
    @acked_first
    async def refresh_order(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient,
                            respond: AsyncRespond | None) -> None:
        await ack()
        user = str(body["user"]["id"])
        channel, container = _where(body)
        reply = private_reply(client, user=user, channel=channel, respond=respond)
        roles = await deps.roles.of(user)
        order = await deps.orders.find(f"#{action.get('value', '')}")
        if order is None:
            await reply(error_message("That order no longer exists."))
            return
        if ROLE_SUPPORT not in roles and order.requester != user:
            await reply(await _denied(deps, user, order.number))
            return
        if OrderStatus(order.status) is OrderStatus.PENDING:
            try:
                await deps.orders.track()
            except (gate.GateError, GateDown) as exc:
                log.info("refresh of order #%s: Gate did not answer (%s)", order.id, type(exc).__name__)
            order = await deps.orders.find(f"#{order.id}") or order
        if container.get("is_ephemeral") and respond is not None:
            detail = await order_detail_for(deps, order, viewer=user, roles=roles)
            await respond(replace_original=True, text=detail["text"], blocks=detail["blocks"])
        elif channel and container.get("message_ts") and container.get("type") == "message":
            # Only the order's own status message is edited in place (a code never goes there).
            if container.get("message_ts") != order.message_ts:
                return
            status = order_message(order, resume_on_deposit=deps.settings.gatebot_resume_on_deposit)
            try:
                await client.chat_update(channel=channel, ts=str(container["message_ts"]), **status)
            except SLACK_FAILURES as exc:
                log.info("refresh of order #%s: chat.update failed (%s)", order.id, error_code(exc))

    return refresh_order


# -- the message shortcut -----------------------------------------------------------------------------------------


def _texts(value: Any) -> Iterable[str]:
    """Every ``text`` string in a message (its text, blocks and attachments), for reference search."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if key in ("text", "fallback", "pretext", "title", "value") or isinstance(item, list | Mapping):
                yield from _texts(item)
    elif isinstance(value, list):
        for item in value:
            yield from _texts(item)


def _shortcut(deps: Deps) -> Any:
    @acked_first
    async def lookup_order(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient,
                           respond: AsyncRespond | None) -> None:
        await ack()
        user = str(body["user"]["id"])
        channel = (body.get("channel") or {}).get("id")
        reply = private_reply(client, user=user, channel=channel, respond=respond)
        message = body.get("message") or {}
        text = "\n".join(_texts({"text": message.get("text", ""), "blocks": message.get("blocks") or [],
                                 "attachments": message.get("attachments") or []}))
        await reply(await shortcut_answer(deps, viewer=user, text=text))

    return lookup_order


async def shortcut_answer(deps: Deps, *, viewer: str, text: str) -> Message:
    """What the "Look up order" shortcut shows for a message's ``text``."""
    refs = find_references(text, limit=MAX_SHORTCUT_REFS)
    if not refs:
        return error_message("I found no order reference in that message (an order #number, a Gate order id, "
                             "an external ref like INV-1001 or an idempotency key).")
    roles = await deps.roles.of(viewer)
    support = ROLE_SUPPORT in roles
    found: list[Order] = []
    missing: list[str] = []
    refused: list[str] = []
    for ref in refs:
        order = await deps.orders.find(ref)
        if order is None:
            missing.append(ref)
        elif not support and order.requester != viewer:
            refused.append(ref)
        elif all(o.id != order.id for o in found):
            found.append(order)
    if refused:
        await deps.record_audit(actor=viewer, action="order.view", target=truncate(", ".join(refused), 120),
                                allowed=False, detail="shortcut: not the requester and no support role")
    if not found:
        if refused and not missing:
            return denied_message(what="looking up other people's orders", role=ROLE_SUPPORT)
        return error_message("No gatebot order matches " + ", ".join(refs) + ".")
    if len(found) == 1:
        answer = await order_detail_for(deps, found[0], viewer=viewer, roles=roles)
    else:
        answer = orders_list(found, "Orders in that message")
    notes = []
    if missing:
        notes.append("No order matches " + ", ".join(code(r, 80) for r in missing) + ".")
    if refused:
        notes.append(f"{len(refused)} more need the *support* role to look up.")
    return with_note(answer, " ".join(notes)) if notes else answer
