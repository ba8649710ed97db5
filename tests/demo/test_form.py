"""Modals as forms: rendering (values, hints, inline errors), finding fields, typed text as input values."""

from __future__ import annotations

from typing import Any

import pytest

from gatebot.demo.form import (
    FormError,
    current_value,
    find_input,
    form_inputs,
    input_value,
    options_lines,
    picker,
    render_form,
    split_field_value,
)
from gatebot.demo.render import ActionIndex, BlockRenderer, StaticDirectory
from gatebot.emulator.workspace import View, initial_state

DIRECTORY = StaticDirectory(users={"UALICE": "alice"}, channels={"COPS": "gate-ops"})


def plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text}


def order_view(*, errors: dict[str, str] | None = None) -> View:
    test_option = {"text": plain("Test order"), "description": plain("no real stock"), "value": "test"}
    blocks: list[dict[str, Any]] = [
        {"type": "input", "block_id": "order_product", "dispatch_action": True, "label": plain("Product"),
         "element": {"type": "external_select", "action_id": "order_product", "min_query_length": 0,
                     "placeholder": plain("Search the catalog")}},
        {"type": "input", "block_id": "order_amount", "label": plain("Amount (USD)"),
         "hint": plain("USD 5 to 100, in steps of 1."),
         "element": {"type": "number_input", "action_id": "order_amount", "is_decimal_allowed": False}},
        {"type": "input", "block_id": "order_acct__steam_login", "label": plain("Steam login"),
         "element": {"type": "plain_text_input", "action_id": "order_acct__steam_login"}},
        {"type": "input", "block_id": "order_acct__email", "label": plain("Email for the receipt"), "optional": True,
         "element": {"type": "plain_text_input", "action_id": "order_acct__email"}},
        {"type": "input", "block_id": "order_account_free", "label": plain("Customer account"), "optional": True,
         "element": {"type": "plain_text_input", "action_id": "order_account_free", "multiline": True}},
        {"type": "input", "block_id": "region", "label": plain("Region"), "optional": True,
         "element": {"type": "static_select", "action_id": "region",
                     "options": [{"text": plain("United States"), "value": "US"},
                                 {"text": plain("United Kingdom"), "value": "GB"}]}},
        {"type": "input", "block_id": "order_test", "label": plain("Options"), "optional": True,
         "element": {"type": "checkboxes", "action_id": "order_test", "options": [test_option]}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "Codes arrive by *DM*."}]},
        {"type": "actions", "elements": [{"type": "button", "action_id": "help", "text": plain("Help")}]},
    ]
    view = View(id="V1", user="UALICE", type="modal", hash="h1", blocks=blocks, callback_id="order_modal",
                title=plain("New order"), submit=plain("Review order"), close=plain("Cancel"),
                state=initial_state(blocks))
    view.errors = dict(errors or {})
    return view


def put(view: View, block_id: str, state: dict[str, Any]) -> None:
    view.state[block_id][block_id if block_id != "region" else "region"] = state


def test_the_form_shows_labels_values_hints_and_inline_errors() -> None:
    view = order_view(errors={"order_acct__steam_login": "Steam login is not in the expected format."})
    put(view, "order_amount", {"type": "number_input", "value": "25"})
    put(view, "order_acct__steam_login", {"type": "plain_text_input", "value": "bad login!"})
    put(view, "order_account_free", {"type": "plain_text_input", "value": "a=1\nb=2"})
    lines = render_form(view, BlockRenderer(DIRECTORY, ActionIndex(), viewer="UALICE"), depth=2)
    assert [line.text for line in lines] == [
        "┌ New order  (modal of @alice, view 2 of the stack)",
        "│ Product *: (none) ▾ Search the catalog: :select TEXT",
        "│ Amount (USD) *: 25",
        "│   USD 5 to 100, in steps of 1.",
        "│ Steam login *: bad login!",
        "│   ⚠ Steam login is not in the expected format.",
        "│ Email for the receipt: (empty)",
        "│ Customer account:",
        "│   a=1",
        "│   b=2",
        "│ Region: (none) ▾ (United States / United Kingdom)",
        "│ Options: [ ] Test order — no real stock",
        "│ Codes arrive by *DM*.",
        "│ [1] Help",
        "└ :submit “Review order” · :cancel “Cancel”",
    ]
    error = next(line for line in lines if "⚠" in line.text)
    assert error.style == "error"


def test_selected_options_and_ticked_boxes_show() -> None:
    view = order_view(errors={"nowhere": "an error keyed by a block that is not an input"})
    option = {"text": plain("Steam Wallet Top Up · top-up USD 5–100"), "value": "456"}
    put(view, "order_product", {"type": "external_select", "selected_option": option})
    put(view, "order_test", {"type": "checkboxes", "selected_options": [
        {"text": plain("Test order"), "value": "test"}]})
    text = [line.text for line in render_form(view, BlockRenderer(DIRECTORY))]
    assert "│ Product *: Steam Wallet Top Up · top-up USD 5–100" in text
    assert "│ Options: [x] Test order — no real stock" in text
    assert "│ ⚠ nowhere: an error keyed by a block that is not an input" in text
    fields = {f.block_id: f for f in form_inputs(view, DIRECTORY)}
    assert current_value(view, fields["order_test"], DIRECTORY) == "Test order"


@pytest.mark.parametrize(("name", "block_id"), [
    ("amount", "order_amount"),
    ("Amount (USD)", "order_amount"),
    ("order_amount", "order_amount"),
    ("steam login", "order_acct__steam_login"),
    ("steam_login", "order_acct__steam_login"),
    ("STEAM", "order_acct__steam_login"),
    ("email", "order_acct__email"),
    ("customer", "order_account_free"),
])
def test_fields_are_found_by_label_block_id_or_a_unique_prefix(name: str, block_id: str) -> None:
    found = find_input(order_view(), name, DIRECTORY)
    assert found is not None and found.block_id == block_id


def test_an_ambiguous_or_unknown_field_name_is_explained() -> None:
    view = order_view()
    with pytest.raises(FormError, match="several fields"):
        find_input(view, "order", DIRECTORY)
    assert find_input(view, "colour", DIRECTORY) is None


@pytest.mark.parametrize(("args", "block_id", "value"), [
    ("amount 25", "order_amount", "25"),
    ("steam login player one", "order_acct__steam_login", "player one"),
    ('"Email for the receipt" bob@example.com', "order_acct__email", "bob@example.com"),
    ("email for the receipt", "order_acct__email", ""),  # no value: clear the field
    ("region united kingdom", "region", "united kingdom"),
])
def test_set_arguments_split_into_field_and_value(args: str, block_id: str, value: str) -> None:
    field, raw = split_field_value(order_view(), args, DIRECTORY)
    assert (field.block_id, raw) == (block_id, value)


@pytest.mark.parametrize("args", ["", "colour red", '"unclosed quote red'])
def test_bad_set_arguments_say_what_would_work(args: str) -> None:
    with pytest.raises(FormError):
        split_field_value(order_view(), args, DIRECTORY)


def test_typed_text_becomes_what_the_slack_client_records() -> None:
    view = order_view()
    fields = {f.block_id: f for f in form_inputs(view, DIRECTORY)}
    assert input_value(fields["order_amount"], "25", DIRECTORY) == "25"
    assert input_value(fields["order_account_free"], "a=1\\nb=2", DIRECTORY) == "a=1\nb=2"
    assert input_value(fields["region"], "kingdom", DIRECTORY)["value"] == "GB"
    assert input_value(fields["region"], "US", DIRECTORY)["value"] == "US"
    assert input_value(fields["region"], "2", DIRECTORY)["value"] == "GB"
    assert input_value(fields["order_test"], "yes", DIRECTORY) == [fields["order_test"].element["options"][0]]
    assert input_value(fields["order_test"], "off", DIRECTORY) == []
    with pytest.raises(FormError, match="several options"):
        input_value(fields["region"], "united", DIRECTORY)
    with pytest.raises(FormError, match="no option"):
        input_value(fields["region"], "France", DIRECTORY)
    with pytest.raises(FormError, match=":select"):
        input_value(fields["order_product"], "steam", DIRECTORY)


def test_the_picker_and_its_numbered_options() -> None:
    view = order_view()
    assert picker(view, DIRECTORY).block_id == "order_product"
    assert picker(view, DIRECTORY, "region").block_id == "region"
    with pytest.raises(FormError):
        picker(view, DIRECTORY, "amount")
    options = [{"text": plain("Steam Gift Card 20 USD · voucher USD 20.00"), "value": "101"},
               {"text": plain("Steam Wallet Top Up · top-up USD 5–100"), "value": "456"}]
    assert [line.text for line in options_lines(options, DIRECTORY, query="steam")] == [
        "2 options for “steam” — :pick N",
        "  (1) Steam Gift Card 20 USD · voucher USD 20.00",
        "  (2) Steam Wallet Top Up · top-up USD 5–100",
    ]
    assert [line.text for line in options_lines([], DIRECTORY, query="zzz")] == ["no options match “zzz”"]
