"""The order modal: product options, the form, its parsing, the confirmation step and private_metadata.

Flow (driven by the listeners): ``/gate buy`` or the Home button opens :func:`order_modal` without a
product; the product ``external_select`` loads :func:`product_options`; choosing one dispatches a
``block_actions`` and the listener ``views.update``\\ s with ``order_modal(product=...)``. Block ids
never change between those versions, so values already typed survive. On submit,
:func:`parse_order_form` turns ``view.state.values`` into draft fields plus per-block errors; the
core's validation errors are mapped onto the form with :func:`modal_errors`; a clean draft is shown
with :func:`confirm_view` ("Place order"). Everything the submissions need that Slack does not send
back (channel, product, draft nonce) travels in ``private_metadata`` (:class:`ModalMetadata`).

Parsing checks syntax only (numbers, required fields, ``key=value`` lines); amount ranges, steps,
account patterns and the balance are the order core's job. Pure functions: must not import
slack_bolt/slack_sdk, the store, or do I/O.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any, TypedDict

from gatebot.gate.models import CustomerAccountField, ProductKind, unorderable_reason
from gatebot.money import Money, MoneyError, minor_units
from gatebot.orders import parse_account_lines
from gatebot.slack import ids
from gatebot.slack.blocks.common import (
    TIMES,
    Block,
    ProductView,
    code,
    context,
    esc,
    field,
    fields_sections,
    format_money,
    format_number,
    line_sections,
    plain,
    price_text,
    section,
    truncate,
)

__all__ = [
    "DraftFields",
    "MetadataError",
    "ModalMetadata",
    "confirm_view",
    "decode_metadata",
    "encode_metadata",
    "form_values",
    "input_block_ids",
    "modal_errors",
    "order_modal",
    "parse_order_form",
    "product_option",
    "product_options",
    "selected_product_id",
]

MAX_OPTIONS = 100
MAX_OPTION_TEXT = 75
MAX_PRIVATE_METADATA = 3000
MAX_EXTERNAL_REF = 64
MAX_QUANTITY = 100
#: Longest value accepted for one customer-account field.
MAX_ACCOUNT_VALUE = 256
_DRAFT_ID_RE = re.compile(r"[A-Za-z0-9_\-]{1,64}")
_SLACK_ID_RE = re.compile(r"[A-Z0-9]{2,32}")
_TS_RE = re.compile(r"\d{1,12}\.\d{1,8}")


# -- private_metadata --------------------------------------------------------------------------------------


class MetadataError(ValueError):
    """``private_metadata`` that gatebot did not write (or an older, incompatible version)."""


@dataclass(frozen=True, slots=True)
class ModalMetadata:
    """What the order views carry in ``private_metadata``.

    ``draft_id`` is a nonce made when the modal opens; the core uses it to recognise a second
    "Place order" for the same draft (a double click, a Slack retry) and answer with the first order.
    """

    draft_id: str
    channel_id: str | None = None
    product_id: int | None = None
    #: Thread of the message the order was started from, when there is one.
    thread_ts: str | None = None

    def __post_init__(self) -> None:
        if not _DRAFT_ID_RE.fullmatch(self.draft_id):
            raise MetadataError("draft_id must be 1-64 letters, digits, _ or -")
        if self.channel_id is not None and not _SLACK_ID_RE.fullmatch(self.channel_id):
            raise MetadataError("channel_id is not a Slack channel id")
        product = self.product_id
        if product is not None and (isinstance(product, bool) or not isinstance(product, int)):
            raise MetadataError("product_id must be an int")
        if self.thread_ts is not None and not _TS_RE.fullmatch(self.thread_ts):
            raise MetadataError("thread_ts is not a Slack timestamp")


_METADATA_VERSION = 1


def encode_metadata(meta: ModalMetadata) -> str:
    """Compact JSON for ``private_metadata`` (well under Slack's 3000 characters: every field is bounded)."""
    data: dict[str, Any] = {"v": _METADATA_VERSION, "d": meta.draft_id}
    if meta.channel_id is not None:
        data["c"] = meta.channel_id
    if meta.product_id is not None:
        data["p"] = meta.product_id
    if meta.thread_ts is not None:
        data["t"] = meta.thread_ts
    text = json.dumps(data, separators=(",", ":"))
    if len(text) > MAX_PRIVATE_METADATA:  # pragma: no cover - every field is bounded above
        raise MetadataError("private_metadata would exceed 3000 characters")
    return text


def decode_metadata(text: str) -> ModalMetadata:
    """Read what :func:`encode_metadata` wrote; anything else raises :class:`MetadataError`."""
    try:
        data = json.loads(text)
    except (TypeError, json.JSONDecodeError):
        raise MetadataError("private_metadata is not gatebot's JSON") from None
    if not isinstance(data, dict) or data.get("v") != _METADATA_VERSION or not isinstance(data.get("d"), str):
        raise MetadataError("private_metadata is not gatebot's JSON")
    channel, product, thread = data.get("c"), data.get("p"), data.get("t")
    if not (channel is None or isinstance(channel, str)) or not (thread is None or isinstance(thread, str)):
        raise MetadataError("private_metadata has a malformed field")
    return ModalMetadata(draft_id=data["d"], channel_id=channel, product_id=product, thread_ts=thread)


# -- product options ----------------------------------------------------------------------------------------


def product_option(product: ProductView) -> dict[str, Any]:
    """``Steam Wallet Top Up · top-up USD 5-100`` (≤ 75 chars; the name is cut first), value = id."""
    name = " ".join(product.name.split())  # one line, whatever the catalog holds
    suffix = f" · {product.kind} {price_text(product)}"
    room = MAX_OPTION_TEXT - len(suffix)
    text = (truncate(name, room) + suffix) if room >= 12 else truncate(name + suffix, MAX_OPTION_TEXT)
    return {"text": plain(text, MAX_OPTION_TEXT), "value": str(product.id)}


def product_options(products: Iterable[ProductView]) -> dict[str, Any]:
    """The options-load answer for the product select: the first 100 of ``products`` (the caller's
    search, :func:`gatebot.orders.find_products`, decides which and in what order)."""
    return {"options": [product_option(p) for p in list(products)[:MAX_OPTIONS]]}


# -- the form ---------------------------------------------------------------------------------------------


def _input(block_id: str, label: str, element: dict[str, Any], *, hint: str | None = None,
           optional: bool = False, dispatch_action: bool = False) -> Block:
    block: Block = {"type": "input", "block_id": block_id, "label": plain(label, 2000), "element": element,
                    "optional": optional}
    if hint:
        block["hint"] = plain(hint, 2000)
    if dispatch_action:
        block["dispatch_action"] = True
    return block


def _text_input(action_id: str, *, initial: str | None, placeholder: str | None = None,
                multiline: bool = False, max_length: int | None = None) -> dict[str, Any]:
    element: dict[str, Any] = {"type": "plain_text_input", "action_id": action_id}
    if multiline:
        element["multiline"] = True
    if max_length:
        element["max_length"] = max_length
    if placeholder:
        element["placeholder"] = plain(placeholder, 150)
    if initial:
        element["initial_value"] = initial[:max_length] if max_length else initial
    return element


def _is_number(text: str | None) -> bool:
    try:
        return text is not None and Decimal(text).is_finite()
    except ArithmeticError:
        return False


def _amount_input(product: ProductView, initial: str | None) -> dict[str, Any]:
    """The amount's ``number_input``: decimals only where the currency and the product's step allow them
    (whole bounds are then rounded inwards so Slack accepts them)."""
    limits = [v for v in (product.step, product.min_amount, product.max_amount) if v is not None]
    whole = product.step is not None and all(v == v.to_integral_value() for v in limits)
    decimal_allowed = minor_units(product.currency) > 0 and not whole
    number: dict[str, Any] = {"type": "number_input", "action_id": ids.ORDER_AMOUNT,
                              "is_decimal_allowed": decimal_allowed}
    if product.min_amount is not None:
        low = product.min_amount if decimal_allowed else product.min_amount.to_integral_value(ROUND_CEILING)
        number["min_value"] = format_number(low)
    if product.max_amount is not None:
        high = product.max_amount if decimal_allowed else product.max_amount.to_integral_value(ROUND_FLOOR)
        number["max_value"] = format_number(high)
    if initial is not None and _is_number(initial) and (decimal_allowed or Decimal(initial) % 1 == 0):
        number["initial_value"] = initial
    return number


def _amount_hint(product: ProductView, margin: Decimal | None) -> str:
    cur = product.currency
    parts = []
    low, high = product.min_amount, product.max_amount
    if low is not None and high is not None:
        parts.append(f"{cur} {format_number(low)} to {format_number(high)}")
    elif low is not None:
        parts.append(f"At least {cur} {format_number(low)}")
    elif high is not None:
        parts.append(f"Up to {cur} {format_number(high)}")
    else:
        parts.append(f"In {cur}")
    if product.step is not None:
        parts[-1] += f", in steps of {format_number(product.step)}"
    text = parts[0] + "."
    if margin is not None and margin > 0:
        example = product.price or low or Decimal(10)
        cost = format_money(example * (1 + margin), cur)
        text += (f" The charge is the amount plus a {format_number(margin * 100)}% margin"
                 f" (e.g. {format_money(example, cur)} costs about {cost}).")
    elif margin is not None:
        text += " No margin: the charge equals the amount."
    return text


_FIELD_HINTS = {
    "email": "An email address, e.g. player@example.com.",
    "phone": "A phone number in international format, e.g. +14155550123.",
}


def _account_blocks(fields: Sequence[CustomerAccountField] | None, values: Mapping[str, str]) -> list[Block]:
    if fields is None:
        return [_input(
            ids.ORDER_ACCOUNT_FREE, "Customer account",
            _text_input(ids.ORDER_ACCOUNT_FREE, initial=values.get(ids.ORDER_ACCOUNT_FREE), multiline=True,
                        max_length=2000, placeholder="steam_login=player123\nemail=player@example.com"),
            hint="This product doesn't publish its account fields: enter one key=value per line, "
                 "with the keys the vendor expects.")]
    blocks = []
    seen: set[str] = set()
    for acct in fields:
        if acct.name in seen:  # a duplicated name would repeat a block id, which Slack refuses
            continue
        seen.add(acct.name)
        block_id = ids.account_block_id(acct.name)
        hint = _FIELD_HINTS.get(acct.type)
        if hint is None and acct.pattern:
            hint = f"Must match the pattern {acct.pattern}"
        blocks.append(_input(
            block_id, truncate(acct.display_label, 2000),
            _text_input(block_id, initial=values.get(block_id), max_length=MAX_ACCOUNT_VALUE),
            hint=hint, optional=not acct.required))
    return blocks


def order_modal(*, metadata: ModalMetadata, product: ProductView | None = None,
                account_fields: Sequence[CustomerAccountField] | None = None,
                values: Mapping[str, str] | None = None, margin: Decimal | None = None) -> dict[str, Any]:
    """The "New order" modal.

    ``account_fields``: the product's own fields, else the configured ones, else ``None`` for a
    free-form ``key=value`` box (the caller resolves which; see ``OrderService.fields_for``). ``values``
    (block id → text, as returned by :func:`form_values`) pre-fills inputs, e.g. when going back from
    the confirmation. ``margin`` is the top-up margin rate for the cost hint (default: the product's).
    Block ids are the same in every version of the view, so ``views.update`` keeps typed values.
    """
    values = values or {}
    select: dict[str, Any] = {"type": "external_select", "action_id": ids.ORDER_PRODUCT,
                              "placeholder": plain("Search the catalog", 150), "min_query_length": 0}
    if product is not None:
        select["initial_option"] = product_option(product)
    blocks: list[Block] = [_input(ids.ORDER_PRODUCT, "Product", select, dispatch_action=True)]
    if product is None:
        blocks.append(context("Pick a product: the form then shows what that product needs."))
    elif product.kind is ProductKind.UNKNOWN:
        blocks.append(section(f":no_entry: {esc(unorderable_reason(truncate(product.name, 150)))}"))
    elif product.kind is ProductKind.TOP_UP:
        number = _amount_input(product, values.get(ids.ORDER_AMOUNT))
        blocks.append(_input(ids.ORDER_AMOUNT, f"Amount ({truncate(product.currency, 10)})", number,
                             hint=_amount_hint(product, margin if margin is not None else product.margin)))
        blocks += _account_blocks(account_fields, values)
    else:
        quantity = values.get(ids.ORDER_QUANTITY)
        blocks.append(_input(ids.ORDER_QUANTITY, "Quantity", {
            "type": "number_input", "action_id": ids.ORDER_QUANTITY, "is_decimal_allowed": False,
            "min_value": "1", "max_value": str(MAX_QUANTITY),
            "initial_value": quantity if quantity and quantity.isdigit() else "1"},
            hint=f"1 to {MAX_QUANTITY} vouchers at {price_text(product)} each; the codes arrive by DM."))
    blocks.append(_input(
        ids.ORDER_EXTERNAL_REF, "External reference",
        _text_input(ids.ORDER_EXTERNAL_REF, initial=values.get(ids.ORDER_EXTERNAL_REF),
                    max_length=MAX_EXTERNAL_REF, placeholder="INV-1001"),
        hint="Your own reference (invoice, ticket), up to 64 characters; lookups find the order by it.",
        optional=True))
    test_option = {"text": plain("Test order", 75),
                   "description": plain("Gate marks it as a test: no real stock is used", 75),
                   "value": ids.TEST_ORDER_VALUE}
    checkboxes: dict[str, Any] = {"type": "checkboxes", "action_id": ids.ORDER_TEST, "options": [test_option]}
    if values.get(ids.ORDER_TEST) == ids.TEST_ORDER_VALUE:
        checkboxes["initial_options"] = [test_option]
    blocks.append(_input(ids.ORDER_TEST, "Options", checkboxes, optional=True))
    return {
        "type": "modal",
        "callback_id": ids.ORDER_MODAL,
        "title": plain("New order", 24),
        "submit": plain("Review order", 24),
        "close": plain("Cancel", 24),
        "private_metadata": encode_metadata(metadata),
        "blocks": blocks,
    }


# -- reading a submission ----------------------------------------------------------------------------------


def form_values(state_values: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """``view.state.values`` flattened to block id → text (select: the option value; checkboxes: the
    selected values joined by commas). Empty inputs are left out."""
    out: dict[str, str] = {}
    for block_id, actions in state_values.items():
        for action in actions.values():
            if not isinstance(action, Mapping):
                continue
            if isinstance(action.get("value"), str):
                text = action["value"]
            elif isinstance(action.get("selected_option"), Mapping):
                text = str(action["selected_option"].get("value", ""))
            elif isinstance(action.get("selected_options"), list):
                selected = [o for o in action["selected_options"] if isinstance(o, Mapping)]
                text = ",".join(str(o.get("value", "")) for o in selected)
            else:
                continue
            if text != "":
                out[block_id] = text
    return out


def selected_product_id(state_values: Mapping[str, Mapping[str, Any]]) -> int | None:
    """The product chosen in the form (``None`` when none, or not an id)."""
    raw = form_values(state_values).get(ids.ORDER_PRODUCT, "")
    return int(raw) if raw.isdigit() else None


class DraftFields(TypedDict):
    """The order as typed, ready for the core's validation (``amount`` is ``None`` for vouchers)."""

    product_id: int | None
    amount: Decimal | None
    quantity: int
    external_ref: str | None
    customer_account: dict[str, str]
    test: bool


def _too_large(text: str) -> bool:
    """Beyond what a Decimal can hold to the cent (``1e40``)."""
    try:
        Decimal(text).quantize(Decimal("0.01"))
    except ArithmeticError:
        return True
    return False


def _parse_amount(text: str | None, currency: str) -> tuple[Decimal | None, str | None]:
    if not text or not text.strip():
        return None, "Enter the amount."
    try:
        amount = Money.parse(text, currency).amount
    except ArithmeticError:  # beyond Decimal's precision, e.g. 1e40
        return None, "That amount is far too large."
    except MoneyError:
        if not _is_number(text.strip()):
            return None, "Enter a number, like 10.00."
        if _too_large(text.strip()):  # Money.parse reports it as a MoneyError too
            return None, "That amount is far too large."
        places = minor_units(currency)
        return None, (f"{currency} amounts have no decimals." if places == 0 else
                      f"{currency} amounts have at most {places} decimals.")
    if amount <= 0:
        return None, "Enter an amount above zero."
    return amount, None


def parse_order_form(
    state_values: Mapping[str, Mapping[str, Any]], product: ProductView | None,
    account_fields: Sequence[CustomerAccountField] | None,
) -> tuple[DraftFields, dict[str, str]]:
    """Read a submitted order form → (draft fields, errors by input block id).

    ``product`` is the catalog product for :func:`selected_product_id`; ``account_fields`` the same list
    the modal was built with (``None`` = free-form). When errors is non-empty, answer the submission
    with ``{"response_action": "errors", "errors": errors}`` and ignore the draft.
    """
    values = form_values(state_values)
    errors: dict[str, str] = {}
    draft = DraftFields(product_id=None, amount=None, quantity=1, external_ref=None, customer_account={},
                        test=values.get(ids.ORDER_TEST, "") == ids.TEST_ORDER_VALUE)
    chosen = selected_product_id(state_values)
    if product is None or chosen is None:
        errors[ids.ORDER_PRODUCT] = "Pick a product."
    elif chosen != product.id:
        errors[ids.ORDER_PRODUCT] = "The form hasn't caught up with this product yet: pick it again."
    else:
        draft["product_id"] = product.id
    if product is not None and product.kind is ProductKind.UNKNOWN:
        errors[ids.ORDER_PRODUCT] = truncate(unorderable_reason(product.name), 300)
    elif product is not None and product.kind is ProductKind.TOP_UP:
        amount, problem = _parse_amount(values.get(ids.ORDER_AMOUNT), product.currency)
        draft["amount"] = amount
        if problem:
            errors[ids.ORDER_AMOUNT] = problem
        if account_fields is None:
            account, problems = parse_account_lines(values.get(ids.ORDER_ACCOUNT_FREE, ""))
            if problems:
                errors[ids.ORDER_ACCOUNT_FREE] = truncate("; ".join(problems), 300)
            elif not account:
                errors[ids.ORDER_ACCOUNT_FREE] = "Enter the customer's account as key=value lines."
            draft["customer_account"] = account
        else:
            for acct in account_fields:
                block_id = ids.account_block_id(acct.name)
                value = values.get(block_id, "").strip()
                if value:
                    draft["customer_account"][acct.name] = value
                elif acct.required:
                    errors[block_id] = f"Enter the {acct.display_label.lower()}."
    elif product is not None:
        raw = values.get(ids.ORDER_QUANTITY, "1").strip()
        if not raw.isdigit() or not 1 <= int(raw) <= MAX_QUANTITY:
            errors[ids.ORDER_QUANTITY] = f"Enter a whole number from 1 to {MAX_QUANTITY}."
        else:
            draft["quantity"] = int(raw)
    ref = values.get(ids.ORDER_EXTERNAL_REF, "").strip()
    if len(ref) > MAX_EXTERNAL_REF:
        errors[ids.ORDER_EXTERNAL_REF] = f"At most {MAX_EXTERNAL_REF} characters."
    elif ref:
        draft["external_ref"] = ref
    return draft, errors


def modal_errors(errors: Mapping[str, str], *, kind: ProductKind | None = None,
                 block_ids: Collection[str] | None = None) -> dict[str, str]:
    """Map the core's validation errors (keys ``product``, ``amount``, ``quantity``, ``external_ref``,
    ``account``, ``account.<name>``, ``balance``, ``limit``) to the form's input block ids.

    ``balance`` and ``limit`` (a daily spending limit) go on the amount block for top-ups and the
    quantity block for vouchers (hence ``kind``, the product's). Slack refuses an ``errors`` answer
    naming a block the view lacks, so when ``block_ids`` (the view's input blocks) is given, an error
    whose block is missing moves to one that exists: ``account.<name>`` to the free-form box, anything
    else to the product block.
    """
    amount_based = kind is ProductKind.TOP_UP
    simple = {"product": ids.ORDER_PRODUCT, "amount": ids.ORDER_AMOUNT, "quantity": ids.ORDER_QUANTITY,
              "external_ref": ids.ORDER_EXTERNAL_REF, "account": ids.ORDER_ACCOUNT_FREE,
              "balance": ids.ORDER_AMOUNT if amount_based else ids.ORDER_QUANTITY,
              "limit": ids.ORDER_AMOUNT if amount_based else ids.ORDER_QUANTITY}
    out: dict[str, str] = {}
    for key, text in errors.items():
        if key.startswith("account."):
            label = key.removeprefix("account.")
            own: str | None = ids.account_block_id(label)
            candidates = [own, ids.ORDER_ACCOUNT_FREE]
        else:
            label, own = key.replace("_", " "), simple.get(key)
            candidates = [own]
        usable = [b for b in candidates if b and (block_ids is None or b in block_ids)]
        target = usable[0] if usable else ids.ORDER_PRODUCT
        message = text if target == own else f"{label}: {text}"  # say which field when it lands elsewhere
        out[target] = truncate(f"{out[target]}; {message}" if target in out else message, 300)
    return out


def input_block_ids(view: Mapping[str, Any]) -> set[str]:
    """The block ids of a view's input blocks (for :func:`modal_errors`)."""
    return {b["block_id"] for b in view.get("blocks", []) if b.get("type") == "input" and "block_id" in b}


# -- confirmation --------------------------------------------------------------------------------------


def confirm_view(*, product: ProductView, draft: DraftFields, metadata: ModalMetadata,
                 estimated_cost: Decimal | None = None, balance: Decimal | None = None,
                 account_fields: Sequence[CustomerAccountField] | None = None,
                 approval: str | None = None) -> dict[str, Any]:
    """The last step before ordering: what will be bought, for whom, what it costs and the balance after.

    Pushed on top of the form (so "Back" returns to it); "Place order" submits ``order_confirm``.
    Account values are shown whole: only the requester sees this view, and they must check them.
    ``approval`` is why the order needs a second person's approval (``Quote.approval``): said before
    the requester submits, with "Request approval" on the submit button.
    """
    cur = product.currency
    fields = [field("Product", f"{esc(truncate(product.name, 150))} ({product.kind})")]
    if product.kind is ProductKind.TOP_UP:
        fields.append(field("Amount", esc(format_money(draft["amount"], cur))))
    else:
        fields.append(field("Quantity", f"{draft['quantity']} {TIMES} {esc(price_text(product))}"))
    fields.append(field("Estimated cost", esc(format_money(estimated_cost, cur, missing="unknown"))))
    after = balance - estimated_cost if balance is not None and estimated_cost is not None else None
    if balance is not None:
        fields.append(field("Balance now → after", f"{esc(format_money(balance, cur))} → "
                                                  f"{esc(format_money(after, cur, missing='?'))}"))
    if draft["external_ref"]:
        fields.append(field("External ref", code(draft["external_ref"], 80)))
    if draft["test"]:
        fields.append(field("Test order", "yes"))
    blocks: list[Block] = [section("Check the order, then place it.")]
    blocks += fields_sections(fields)
    if draft["customer_account"]:
        labels = {f.name: f.display_label for f in account_fields or ()}
        lines = ["*Customer account*"] + [
            f"{esc(truncate(labels.get(k, k), 80))}: {code(v, MAX_ACCOUNT_VALUE)}"
            for k, v in draft["customer_account"].items()]
        blocks += line_sections(lines, max_blocks=10)
    if after is not None and after < 0:
        blocks.append(section(f":warning: This costs more than the available {esc(cur)} balance."))
    if approval:
        blocks.append(section(f":raised_hand: This order needs approval because {esc(truncate(approval, 500))}; "
                              "nothing is sent to Gate until an approver approves it."))
    else:
        blocks.append(context("Placing the order charges the Gate balance at once. "
                              "The cost is an estimate until Gate confirms it."))
    return {
        "type": "modal",
        "callback_id": ids.ORDER_CONFIRM,
        "title": plain("Confirm order", 24),
        "submit": plain("Request approval" if approval else "Place order", 24),
        "close": plain("Back", 24),
        "private_metadata": encode_metadata(metadata),
        "blocks": blocks,
    }
