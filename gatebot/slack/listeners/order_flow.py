"""The order modal: open it, load product options, reshape it per product, review, place.

Routing table::

    /gate buy [search] (commands) and   open_order_modal: views.open at once (trigger_id first), then
      block_actions home_new_order        refresh an empty catalog / preselect a single match (views.update)
    block_suggestion order_product      options from the cached catalog (no Gate call: answers in ms)
    block_actions   order_product       product chosen: views.update with its amount/account/quantity inputs
    view_submission order_modal         parse → validate (store only) → quote (balance, ≤ balance_wait s)
                                        → errors inline, or push the confirmation view
    view_submission order_confirm       ack (clear), then place the draft in the background
    view_closed     order_modal/confirm forget the stored draft

The reviewed draft is kept between the two submissions by the core (:class:`gatebot.orders.Drafts`:
encrypted, with its owner); the confirmation view only carries the draft id in ``private_metadata``.
A double click or a Slack retry of "Place order" finds the order by its ``draft_id`` and never places
a second one (the order store's unique ``draft_id``, across tasks and processes). Both submissions
check the ops role again: showing the form is not a permission. The store is read only through the
core's async calls (``db.run``), never with a session on the event loop. While the Gate circuit is
open (the health alert says Gate is down), both refuse up front with a clear message instead of
waiting for Gate to time out.

Must not import the scheduler.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.exc import SQLAlchemyError

from gatebot import gate
from gatebot.gate.models import ProductKind
from gatebot.orders import DraftState, GateDown, OrderDraft, OrderInvalid, find_products
from gatebot.orders.drafts import DRAFT_PREFIX, draft_key, new_draft_id
from gatebot.slack import ids
from gatebot.slack.blocks.common import context, truncate
from gatebot.slack.blocks.messages import denied_message, error_message
from gatebot.slack.blocks.order_modal import (
    DraftFields,
    MetadataError,
    ModalMetadata,
    confirm_view,
    decode_metadata,
    form_values,
    input_block_ids,
    modal_errors,
    order_modal,
    parse_order_form,
    product_options,
)
from gatebot.slack.deps import Deps
from gatebot.slack.grammar import ROLE_OPS
from gatebot.slack.listeners import SLACK_FAILURES, Reply, acked_first, dm, error_code, private_reply
from gatebot.store.models import CatalogProduct
from gatebot.textinput import MAX_QUERY, clean_text

__all__ = ["DRAFT_PREFIX", "draft_key", "open_order_modal", "register", "search_catalog"]

log = logging.getLogger(__name__)

def register(app: AsyncApp, deps: Deps) -> None:
    app.options(ids.ORDER_PRODUCT)(_options(deps))
    app.action(ids.ORDER_PRODUCT)(_product_chosen(deps))
    app.action(ids.HOME_NEW_ORDER)(_new_order_button(deps))
    app.view(ids.ORDER_MODAL)(_review(deps))
    app.view(ids.ORDER_CONFIRM)(_place(deps))
    app.view_closed(ids.ORDER_MODAL)(_closed(deps))
    app.view_closed(ids.ORDER_CONFIRM)(_closed(deps))


# -- catalog ------------------------------------------------------------------------------------------------


async def search_catalog(deps: Deps, query: str, *, active_only: bool) -> list[CatalogProduct]:
    """The cached products ``query`` finds, in order (the one rule: :func:`gatebot.orders.find_products`)."""
    return await deps.db.run(lambda s: find_products(s, query, active_only=active_only))


async def _single_match(deps: Deps, query: str) -> CatalogProduct | None:
    """The one active product ``query`` names (id, slug, or the only search match), else ``None``."""
    if not query.strip():
        return None
    exact = await deps.orders.product(query.strip())
    if exact is not None and exact.is_active:
        return exact
    matches = await search_catalog(deps, query, active_only=True)
    return matches[0] if len(matches) == 1 else None


GATE_DOWN = (f"The Gate API is down right now (its circuit is open), so no order was sent. Try again when it "
             f"has recovered — see {ids.COMMAND} health.")


async def _circuit_open(deps: Deps) -> bool:
    """Whether the health alert has opened the Gate circuit: orders are refused up front meanwhile."""
    try:
        return await deps.db.run(deps.status.gate_down)
    except SQLAlchemyError:
        return False  # the order pipeline reports a database problem itself


def _modal(deps: Deps, meta: ModalMetadata, product: CatalogProduct | None,
           values: dict[str, str] | None = None) -> dict[str, Any]:
    """The order modal for ``product`` (its inputs: amount + account fields, or quantity)."""
    if product is None:
        view = order_modal(metadata=dataclasses.replace(meta, product_id=None), values=values)
    else:
        fields = deps.orders.fields_for(product) if product.kind is ProductKind.TOP_UP else None
        margin = product.margin if product.margin is not None else deps.settings.gatebot_topup_margin
        view = order_modal(metadata=dataclasses.replace(meta, product_id=product.id), product=product,
                           account_fields=fields, values=values, margin=margin)
    view["notify_on_close"] = True  # so an abandoned draft is forgotten
    return view


def _with_context(view: dict[str, Any], text: str, *, position: int = 1) -> dict[str, Any]:
    blocks = list(view["blocks"])
    blocks.insert(position, context(text))
    return {**view, "blocks": blocks}


# -- opening ------------------------------------------------------------------------------------------------


async def open_order_modal(deps: Deps, client: AsyncWebClient, *, trigger_id: str, user: str,
                           channel: str | None, query: str, reply: Reply) -> None:
    """Open the order modal for ``user`` (the caller checked the ops role).

    The trigger expires in 3 s, so nothing but the cached catalog (a local query) is consulted before
    ``views.open``: a search naming one product preselects it — in the opened view itself, because Slack
    keeps an input's state across ``views.update`` and would ignore a later ``initial_option``. Gate is
    asked only afterwards, when the catalog has never been loaded.
    """
    try:
        meta = ModalMetadata(draft_id=new_draft_id(), channel_id=channel)
    except MetadataError:
        meta = ModalMetadata(draft_id=new_draft_id())
    product = await _single_match(deps, query)
    first = _modal(deps, meta, product)
    if product is None and query.strip():
        first = _with_context(first, f"No single product matches “{truncate(query.strip(), 60)}”: "
                                     "search in the list.")
    try:
        opened = await client.views_open(trigger_id=trigger_id, view=first)
    except SLACK_FAILURES as exc:
        log.info("could not open the order modal (%s)", error_code(exc))
        await reply(error_message(f"I couldn't open the order form (Slack said {error_code(exc)}). "
                                  f"Try `{ids.COMMAND} buy` again."))
        return
    if await deps.orders.catalog_loaded():
        return
    try:
        count = await deps.orders.refresh_catalog()
        note = f"Loaded {count} products from Gate: search in the list." if count else "Gate's catalog is empty."
    except gate.GateError as exc:
        note = f":warning: The catalog could not be loaded from Gate ({type(exc).__name__}); try again soon."
    view = opened["view"]
    try:
        await client.views_update(view_id=view["id"], hash=view["hash"],
                                  view=_with_context(_modal(deps, meta, None), note))
    except SLACK_FAILURES as exc:  # the user already picked something: their choice wins
        log.info("could not update the order modal after loading the catalog (%s)", error_code(exc))


def _new_order_button(deps: Deps) -> Any:
    @acked_first
    async def new_order(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        user = str(body["user"]["id"])
        reply = private_reply(client, user=user)
        if not await deps.roles.has(user, ROLE_OPS):
            await deps.record_audit(actor=user, action="order.create", target=None, allowed=False,
                                    detail="needs the ops role")
            await reply(denied_message(what="placing orders", role=ROLE_OPS))
            return
        await open_order_modal(deps, client, trigger_id=str(body["trigger_id"]), user=user, channel=None,
                               query="", reply=reply)

    return new_order


# -- the form -------------------------------------------------------------------------------------------------


def _options(deps: Deps) -> Any:
    async def product_options_load(ack: AsyncAck, payload: dict[str, Any]) -> None:
        # An options load cannot show an error: a long or hostile query is cleaned and cut instead.
        query = clean_text(str(payload.get("value") or ""), limit=MAX_QUERY, clip=True)
        await ack(options=product_options(await search_catalog(deps, query, active_only=True))["options"])

    return product_options_load


def _product_chosen(deps: Deps) -> Any:
    @acked_first
    async def product_chosen(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any],
                             client: AsyncWebClient) -> None:
        await ack()
        view = body.get("view")
        if not view:
            return
        try:
            meta = decode_metadata(view.get("private_metadata", ""))
        except MetadataError:
            log.info("product chosen in a view gatebot did not write; ignored")
            return
        raw = str((action.get("selected_option") or {}).get("value", ""))
        product = await deps.orders.product(int(raw)) if raw.isdigit() else None
        values = form_values(view.get("state", {}).get("values", {}))
        try:
            await client.views_update(view_id=view["id"], hash=view.get("hash"),
                                      view=_modal(deps, meta, product, values))
        except SLACK_FAILURES as exc:  # hash_conflict: a newer choice already reshaped the form
            log.info("could not reshape the order modal (%s)", error_code(exc))

    return product_chosen


def _draft(fields: DraftFields, product: CatalogProduct, *, user: str, roles: frozenset[str],
           meta: ModalMetadata) -> OrderDraft:
    """The core's draft; ``roles`` (the requester's, now) count the order against role daily limits."""
    return OrderDraft(product=product.id, requester=user, amount=fields["amount"], quantity=fields["quantity"],
                      account=dict(fields["customer_account"]), external_ref=fields["external_ref"],
                      test=fields["test"], origin_channel=meta.channel_id, draft_id=meta.draft_id,
                      requester_roles=roles)


def _review(deps: Deps) -> Any:
    async def review(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        user = str(body["user"]["id"])
        try:
            meta = decode_metadata(view.get("private_metadata", ""))
        except MetadataError:
            await ack(response_action="errors", errors={
                ids.ORDER_PRODUCT: f"This form is out of date: close it and run {ids.COMMAND} buy again."})
            return
        roles = await deps.roles.of(user)
        if ROLE_OPS not in roles:  # an admin holds every role
            await deps.record_audit(actor=user, action="order.create", target=None, allowed=False,
                                    detail="needs the ops role")
            await ack(response_action="errors", errors={
                ids.ORDER_PRODUCT: "Only people with the ops role can place orders; ask a gatebot admin."})
            return
        product = await deps.orders.product(meta.product_id) if meta.product_id is not None else None
        fields = (deps.orders.fields_for(product)
                  if product is not None and product.kind is ProductKind.TOP_UP else None)
        state = view.get("state", {}).get("values", {})
        parsed, errors = parse_order_form(state, product, fields)
        if errors or product is None:
            await ack(response_action="errors", errors=errors or {ids.ORDER_PRODUCT: "Pick a product."})
            return
        draft = _draft(parsed, product, user=user, roles=roles, meta=meta)
        blocks = input_block_ids(view)
        try:
            await deps.orders.validate(draft)  # the store only: instant, and works while Gate is down
            if await _circuit_open(deps):
                raise GateDown(GATE_DOWN)
            quote = await deps.orders.quote(draft, balance_wait=deps.balance_wait)
        except OrderInvalid as exc:
            await ack(response_action="errors",
                      errors=modal_errors(exc.errors, kind=product.kind, block_ids=blocks))
            return
        except GateDown as exc:
            await ack(response_action="errors", errors={ids.ORDER_PRODUCT: truncate(str(exc), 300)})
            return
        await deps.orders.drafts.save(meta.draft_id, user=user, draft=draft)
        confirm = confirm_view(product=product, draft=parsed, metadata=meta, estimated_cost=quote.cost.amount,
                               balance=quote.available.amount if quote.available is not None else None,
                               account_fields=fields, approval=quote.approval)
        if quote.balance_cached:
            confirm = _with_context(confirm, ":hourglass: Gate was slow to answer: the balance is the last one "
                                             "gatebot read. Gate checks it again when the order is placed.",
                                    position=len(confirm["blocks"]) - 1)
        confirm["notify_on_close"] = True
        await ack(response_action="push", view=confirm)

    return review


# -- placing ------------------------------------------------------------------------------------------------------


def _place(deps: Deps) -> Any:
    @acked_first
    async def place_order(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any],
                          client: AsyncWebClient) -> None:
        user = str(body["user"]["id"])
        await ack(response_action="clear")
        try:
            meta = decode_metadata(view.get("private_metadata", ""))
        except MetadataError:
            await dm(client, user, error_message("That order form was out of date, so nothing was ordered. "
                                                 f"Run {ids.COMMAND} buy again."))
            return
        reply = private_reply(client, user=user, channel=meta.channel_id)
        if not await deps.roles.has(user, ROLE_OPS):
            await deps.record_audit(actor=user, action="order.create", target=None, allowed=False,
                                    detail="needs the ops role")
            await reply(denied_message(what="placing orders", role=ROLE_OPS))
            return
        await _place_draft(deps, meta, user=user, reply=reply)

    return place_order


async def _place_draft(deps: Deps, meta: ModalMetadata, *, user: str, reply: Reply) -> None:
    drafts = deps.orders.drafts
    opened = await drafts.open(meta.draft_id, user=user)
    if opened.state is DraftState.FOREIGN:
        await deps.record_audit(actor=user, action="order.create", target=meta.draft_id, allowed=False,
                                detail="someone else's draft")
        await reply(error_message("That order form belongs to someone else; nothing was ordered."))
        return
    if opened.state is DraftState.PLACED:
        log.info("draft %s was already placed as order #%s; not placing it twice", meta.draft_id, opened.order_id)
        return
    if opened.state is DraftState.EXPIRED:
        await reply(error_message("That order form expired before it was placed, so nothing was sent to "
                                  f"Gate. Run {ids.COMMAND} buy again."))
        return
    if opened.draft is None:  # DraftState.UNREADABLE (already forgotten)
        await reply(error_message(f"That order form could not be read back, so nothing was ordered. "
                                  f"Run {ids.COMMAND} buy again."))
        return
    try:
        if await _circuit_open(deps):
            raise GateDown(GATE_DOWN)
        order, placed = await deps.orders.place_new(opened.draft, actor=user)
    except OrderInvalid as exc:
        await drafts.forget(meta.draft_id)
        problems = " ".join(exc.errors.values())
        await reply(error_message(f"The order was not placed: {problems} Nothing was sent to Gate. "
                                  f"Run {ids.COMMAND} buy to try again."))
        return
    except GateDown as exc:
        await drafts.forget(meta.draft_id)
        await reply(error_message(f"The order was not placed: {exc}"))
        return
    await drafts.forget(meta.draft_id)
    if not placed:  # a concurrent "Place order" of the same draft inserted it first
        log.info("draft %s was already placed as order #%s; not placing it twice", meta.draft_id, order.id)
        return
    await deps.record_audit(actor=user, action="order.create", target=order.number, allowed=True,
                            detail=f"{truncate(order.product_name, 80)}, placed from a Slack order form")


def _closed(deps: Deps) -> Any:
    @acked_first
    async def view_closed(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        try:
            meta = decode_metadata(view.get("private_metadata", ""))
        except MetadataError:
            return
        await deps.orders.drafts.abandon(meta.draft_id)

    return view_closed
