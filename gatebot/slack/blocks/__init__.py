"""Pure Block Kit builders: every message, modal and Home tab gatebot shows, as plain dicts.

Submodules: ``common`` (text helpers, view protocols), ``messages`` (orders, balances, lists, help,
errors), ``order_modal`` (the order form, its parsing and confirmation), ``home`` (App Home),
``alerts`` (alert messages), ``limits`` (Slack's limits, checked in tests). Listeners call these and
send the result; nothing here talks to Slack. Must not import slack_bolt/slack_sdk, the store, or do I/O.
"""

from gatebot.slack.blocks.alerts import AlertCard, alert_message
from gatebot.slack.blocks.common import HealthCheck, HistoryView, OrderView, ProductView
from gatebot.slack.blocks.home import home_view
from gatebot.slack.blocks.limits import LimitError, check_message, check_options, check_view
from gatebot.slack.blocks.messages import (
    balance_message,
    denied_message,
    deposits_message,
    error_message,
    grammar_error_message,
    health_message,
    help_message,
    order_delivery_dm,
    order_detail,
    order_message,
    order_thread_note,
    orders_list,
    products_message,
)
from gatebot.slack.blocks.order_modal import (
    DraftFields,
    MetadataError,
    ModalMetadata,
    confirm_view,
    decode_metadata,
    encode_metadata,
    form_values,
    input_block_ids,
    modal_errors,
    order_modal,
    parse_order_form,
    product_options,
    selected_product_id,
)

__all__ = [
    "AlertCard",
    "DraftFields",
    "HealthCheck",
    "HistoryView",
    "LimitError",
    "MetadataError",
    "ModalMetadata",
    "OrderView",
    "ProductView",
    "alert_message",
    "balance_message",
    "check_message",
    "check_options",
    "check_view",
    "confirm_view",
    "decode_metadata",
    "denied_message",
    "deposits_message",
    "encode_metadata",
    "error_message",
    "form_values",
    "grammar_error_message",
    "health_message",
    "help_message",
    "home_view",
    "input_block_ids",
    "modal_errors",
    "order_delivery_dm",
    "order_detail",
    "order_message",
    "order_modal",
    "order_thread_note",
    "orders_list",
    "parse_order_form",
    "product_options",
    "products_message",
    "selected_product_id",
]
