"""Every Slack identifier gatebot uses: command, callback ids, block ids, action ids, scopes.

Builders, listeners, tests and ``manifest.yml`` all refer to these constants, so a rename happens in
one place (``tests/slack/test_manifest.py`` checks the manifest against them). Plain strings only:
this module must not import anything from gatebot or Slack.

Input blocks use the same string for ``block_id`` and ``action_id`` — a submitted value is read as
``state["values"][X][X]`` — and both names are kept stable across ``views.update`` so values the
user already typed survive a product change.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

# -- slash command, shortcut, events -----------------------------------------------------------------
COMMAND: Final = "/gate"
#: Message shortcut ("Look up order") callback id.
LOOKUP_ORDER: Final = "lookup_order"
#: The one bot event the app subscribes to.
APP_HOME_OPENED: Final = "app_home_opened"

#: Bot token scopes, exactly what ``manifest.yml`` requests (see the manifest for why each is needed).
BOT_SCOPES: Final = ("commands", "chat:write", "im:write", "users:read", "usergroups:read", "files:write",
                     "files:read")
BOT_EVENTS: Final = (APP_HOME_OPENED,)

# -- the order modal (callback ``order_modal``) and its confirmation step (``order_confirm``) ---------
ORDER_MODAL: Final = "order_modal"
ORDER_CONFIRM: Final = "order_confirm"

#: Product picker: an ``external_select`` inside an input block with ``dispatch_action: true``.
#: Its ``block_actions`` (product chosen) and ``block_suggestion`` (options load) use this action id.
ORDER_PRODUCT: Final = "order_product"
ORDER_AMOUNT: Final = "order_amount"
ORDER_QUANTITY: Final = "order_quantity"
ORDER_EXTERNAL_REF: Final = "order_external_ref"
ORDER_TEST: Final = "order_test"
#: Free-form ``key=value`` customer account (products with no known field list).
ORDER_ACCOUNT_FREE: Final = "order_account_free"
#: One input block per known customer-account field: ``order_acct__<field name>``.
ORDER_ACCOUNT_PREFIX: Final = "order_acct__"

#: Value of the test-order checkbox option.
TEST_ORDER_VALUE: Final = "test"


def account_block_id(field_name: str) -> str:
    """Block (and action) id of the input for customer-account field ``field_name``."""
    return ORDER_ACCOUNT_PREFIX + field_name


def account_field_name(block_id: str) -> str | None:
    """The field name encoded in an ``order_acct__<name>`` block id, else ``None``."""
    if block_id.startswith(ORDER_ACCOUNT_PREFIX) and len(block_id) > len(ORDER_ACCOUNT_PREFIX):
        return block_id[len(ORDER_ACCOUNT_PREFIX):]
    return None


# -- App Home --------------------------------------------------------------------------------------
HOME_NEW_ORDER: Final = "home_new_order"
HOME_BULK_ORDER: Final = "home_bulk_order"

# -- bulk orders: the upload modal (``bulk_modal``), its summary (``bulk_confirm``), the batch message ------
BULK_MODAL: Final = "bulk_modal"
BULK_CONFIRM: Final = "bulk_confirm"
#: The ``file_input`` (block and action id) of the upload modal.
BULK_FILE: Final = "bulk_file"
#: Buttons on a batch's progress message (value: the batch number, ``12`` for B12).
BULK_PAUSE: Final = "bulk_pause"
BULK_RESUME: Final = "bulk_resume"
BULK_CANCEL: Final = "bulk_cancel"
BULK_RESULTS: Final = "bulk_results"

# -- order status messages (value: our order id as a string) ---------------------------------------
ORDER_REFRESH: Final = "order_refresh"
ORDER_VIEW: Final = "order_view"

# -- alert messages (value: the alert key) ---------------------------------------------------------
ALERT_ACK: Final = "alert_ack"
ALERT_SNOOZE_1H: Final = "alert_snooze_1h"
ALERT_SNOOZE_4H: Final = "alert_snooze_4h"
ALERT_SNOOZE_24H: Final = "alert_snooze_24h"
#: The alert's link button (a URL button; Slack still sends ``block_actions``: ack and ignore it).
ALERT_LINK: Final = "alert_link"
#: Snooze action id → snooze length in seconds.
ALERT_SNOOZE_SECONDS: Final[Mapping[str, int]] = MappingProxyType(
    {ALERT_SNOOZE_1H: 3600, ALERT_SNOOZE_4H: 4 * 3600, ALERT_SNOOZE_24H: 24 * 3600})

# -- approval requests (value: our order id as a string) -------------------------------------------
APPROVAL_APPROVE: Final = "approval_approve"
APPROVAL_REJECT: Final = "approval_reject"
#: The modal asking why an order is rejected, and its one input (block and action id).
APPROVAL_REJECT_MODAL: Final = "approval_reject_modal"
APPROVAL_REASON: Final = "approval_reason"
