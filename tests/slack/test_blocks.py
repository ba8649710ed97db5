"""Block Kit builders: every builder's output passes limits.py with normal and adversarial data, codes
appear only where they may, the order form keeps its block ids, parses submissions, and maps errors."""

import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

import pytest
from slack_sdk.models.blocks import Block as SdkBlock
from slack_sdk.models.views import View as SdkView

from gatebot.config import Thresholds
from gatebot.finance.levels import balance_level
from gatebot.gate.models import Balance, CustomerAccountField, Deposit, ProductKind, product_kind
from gatebot.money import Money
from gatebot.orders import match_products, parse_account_lines
from gatebot.slack import ids
from gatebot.slack.blocks import (
    AlertCard,
    HealthCheck,
    LimitError,
    MetadataError,
    ModalMetadata,
    alert_message,
    balance_message,
    check_message,
    check_options,
    check_view,
    confirm_view,
    decode_metadata,
    denied_message,
    deposits_message,
    encode_metadata,
    error_message,
    form_values,
    grammar_error_message,
    health_message,
    help_message,
    home_view,
    input_block_ids,
    modal_errors,
    order_delivery_dm,
    order_detail,
    order_message,
    order_modal,
    order_thread_note,
    orders_list,
    parse_order_form,
    product_options,
    products_message,
    selected_product_id,
)
from gatebot.slack.blocks.common import EN_DASH, TIMES, format_money, slack_date, truncate, truncate_mrkdwn
from gatebot.slack.grammar import GrammarError, allowed_usage, parse

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
CODE = "ZQ7X-SECRET-CODE-4242"
PIN = "PIN-88123977"
HUGE = "<!channel> & *bold* `tick` " * 400  # ~11k chars of hostile text
STATUSES = ("submitting", "unknown", "pending", "waiting_funds", "completed", "failed", "rejected")


class Status(StrEnum):  # the store's OrderStatus is a StrEnum like this one
    PENDING = "pending"
    COMPLETED = "completed"


@dataclass
class FakeOrder:
    id: int | None = 42
    external_ref: str | None = "INV-1001"
    idempotency_key: str | None = "gbk_" + "ab" * 16
    gate_order_id: str | None = "3f2b8c1e-7d4a-4b9e-8f00-1234567890ab"
    product_id: int | None = 456
    product_name: str | None = "Steam Wallet Top Up"
    product_type: str | None = "direct_top_up"
    currency: str | None = "USD"
    amount: Decimal | None = Decimal("10.00")
    quantity: int | None = 1
    estimated_cost: Decimal | None = Decimal("12.50")
    charged_amount: Decimal | None = None
    balance_before: Decimal | None = None
    balance_after: Decimal | None = None
    status: str = "pending"
    status_reason: str | None = None
    error_code: str | None = None
    is_test: bool = False
    requester: str | None = "U0123ABCD"
    origin_channel: str | None = "C0123ABCD"
    message_ts: str | None = "1732438800.000100"
    created_at: datetime | None = NOW
    updated_at: datetime | None = NOW + timedelta(seconds=90)
    submitted_at: datetime | None = NOW + timedelta(seconds=1)
    completed_at: datetime | None = None
    failed_at: datetime | None = None


@dataclass
class FakeHistory:
    at: datetime | None = NOW
    from_status: str | None = "pending"
    to_status: str = "completed"
    actor: str | None = "gatebot"
    note: str | None = "Gate reported completion"


@dataclass
class FakeProduct:
    id: int = 456
    name: str = "Steam Wallet Top Up"
    slug: str | None = "steam-wallet-top-up"
    type_code: str | None = "direct_top_up"
    currency: str = "USD"
    region_code: str | None = "US"
    price: Decimal | None = Decimal("10")
    min_amount: Decimal | None = Decimal("5")
    max_amount: Decimal | None = Decimal("100")
    step: Decimal | None = Decimal("1")
    margin: Decimal | None = Decimal("0.25")
    is_active: bool = True
    account_fields_json: Any = None

    @property
    def kind(self) -> ProductKind:  # the store's CatalogProduct.kind, with the same core rule
        return product_kind(self.type_code, price=self.price, min_amount=self.min_amount,
                            max_amount=self.max_amount, publishes_account_fields=bool(self.account_fields_json))


TOPUP = FakeProduct()
VOUCHER = FakeProduct(
    id=789,
    name="Google Play 25",
    slug="google-play-25",
    type_code="redeem_card",
    price=Decimal("25"),
    min_amount=None,
    max_amount=None,
    step=None,
    margin=None,
)
FIELDS = [
    CustomerAccountField(name="steam_login", label="Steam login"),
    CustomerAccountField(name="email", type="email", required=False),
    CustomerAccountField(name="phone", type="phone", required=False),
    CustomerAccountField(name="player_id", pattern="^[0-9]{6,}$"),
]
META = ModalMetadata(draft_id="d_0123456789abcdef", channel_id="C0123ABCD")


def completed_order(**changes) -> FakeOrder:
    base = FakeOrder(
        status="completed",
        charged_amount=Decimal("12.50"),
        balance_before=Decimal("100.00"),
        balance_after=Decimal("87.50"),
        completed_at=NOW + timedelta(seconds=90),
    )
    return replace(base, **changes)


def hostile_order(status: str = "failed", **changes) -> FakeOrder:
    return replace(
        FakeOrder(
            id=2**40,
            product_name=HUGE,
            status=status,
            status_reason=HUGE,
            error_code="x" * 500,
            external_ref="R" * 64,
            idempotency_key="k" * 300,
            gate_order_id="g" * 300,
            requester="not a slack id <@U1>",
            origin_channel="#<bad>",
            currency="XYZQ",
            amount=Decimal("99999999999999.999"),
            quantity=100,
            estimated_cost=Decimal("1E+30"),
            is_test=True,
        ),
        **changes,
    )


def dumps(payload: Any) -> str:
    return json.dumps(payload, ensure_ascii=False)


def mrkdwn_texts(payload: Any) -> list[str]:
    """Every string Slack parses as mrkdwn: mrkdwn text objects and the message fallback ``text``."""
    found: list[str] = []
    if isinstance(payload, dict):
        if payload.get("type") == "mrkdwn" or ("blocks" in payload and isinstance(payload.get("text"), str)):
            found.append(payload["text"])
        for value in payload.values():
            found += mrkdwn_texts(value)
    elif isinstance(payload, list):
        for item in payload:
            found += mrkdwn_texts(item)
    return found


def assert_no_ping(payload: Any) -> None:
    """Hostile ``<!channel>`` in user data must reach mrkdwn only escaped (plain_text is never parsed)."""
    texts = mrkdwn_texts(payload)
    assert texts and not any("<!channel>" in t for t in texts)


def sdk_validate_blocks(blocks: list[dict[str, Any]]) -> None:
    """Second opinion: slack-sdk's own models parse and validate the same blocks."""
    for block in blocks:
        parsed = SdkBlock.parse(block)
        assert parsed is not None
        parsed.to_dict()  # runs slack-sdk's validators (raises SlackObjectFormationError)


# -- order messages --------------------------------------------------------------------------------


@pytest.mark.parametrize("status", STATUSES)
def test_order_message_within_limits_for_every_status_and_never_shows_a_code(status):
    order = FakeOrder(
        status=status, status_reason="Not enough balance" if status == "waiting_funds" else None
    )
    msg = order_message(order, history_tail=[FakeHistory()] * 8)
    check_message(msg)
    sdk_validate_blocks(msg["blocks"])
    assert CODE not in dumps(msg)
    assert msg["text"].startswith("Order #42 (Steam Wallet Top Up): ")
    action_ids = [e["action_id"] for b in msg["blocks"] if b["type"] == "actions" for e in b["elements"]]
    final = status in ("completed", "failed", "rejected")
    assert action_ids == ([ids.ORDER_VIEW] if final else [ids.ORDER_REFRESH, ids.ORDER_VIEW])


def _text_of(msg: dict[str, Any]) -> str:
    return dumps(msg["blocks"])


def test_order_message_explains_each_outcome_and_what_happens_next():
    done = order_message(completed_order())
    assert "Delivered to <@U0123ABCD> by DM." in _text_of(done)
    failed = order_message(
        FakeOrder(status="failed", status_reason="Vendor refused", error_code="vendor_error")
    )
    assert "failed: Vendor refused (`vendor_error`)" in _text_of(failed)
    assert "returned to the balance" in _text_of(failed)
    waiting = order_message(FakeOrder(status="waiting_funds", status_reason="insufficient balance"))
    assert "Not enough USD balance" in _text_of(waiting) and "resubmitted automatically" in _text_of(waiting)
    manual = order_message(FakeOrder(status="waiting_funds"), resume_on_deposit=False)
    assert "until someone resumes it" in _text_of(manual)
    rejected = order_message(FakeOrder(status="rejected", status_reason="Amount must be a multiple of 5"))
    assert "Nothing was charged" in _text_of(rejected)
    unknown = order_message(FakeOrder(status="unknown"))
    assert "cannot be charged twice" in _text_of(unknown)
    odd = order_message(FakeOrder(status="on_hold_by_vendor"))
    assert "on_hold_by_vendor" in _text_of(odd)
    check_message(odd)


def test_order_message_accepts_a_strenum_status_and_shows_voucher_quantity():
    msg = order_message(FakeOrder(status=Status.PENDING, product_type="redeem_card", amount=None, quantity=3))
    assert f"voucher {TIMES} 3" in _text_of(msg) and ids.ORDER_REFRESH in _text_of(msg)


@pytest.mark.parametrize("status", STATUSES)
def test_order_message_with_hostile_data_stays_within_limits_and_escaped(status):
    msg = order_message(hostile_order(status), history_tail=[FakeHistory(note=HUGE, actor=HUGE)] * 50)
    check_message(msg)
    sdk_validate_blocks(msg["blocks"])
    assert_no_ping(msg)  # escaped, so nobody gets pinged
    assert "&lt;!channel&gt;" in msg["blocks"][0]["text"]["text"]


def test_order_thread_note():
    msg = order_thread_note(FakeHistory(actor="U0AAAAAAA", note="retry after deposit"))
    check_message(msg)
    assert "`pending` → `completed`" in msg["text"] and "<@U0AAAAAAA>" in msg["text"]
    assert "<!date^" in msg["text"]
    check_message(order_thread_note(FakeHistory(from_status=None, actor=None, note=HUGE, at=None)))


def test_delivery_dm_is_the_one_message_with_the_code_but_its_fallback_has_none():
    msg = order_delivery_dm(
        completed_order(),
        {
            "voucher_code": CODE,
            "pin": PIN,
            "vendor_order_id": "LC-1",
            "redeem_url": "https://example.com/redeem?a=1&b=2",
        },
    )
    check_message(msg)
    sdk_validate_blocks(msg["blocks"])
    body = _text_of(msg)
    assert f"`{CODE}`" in body and f"`{PIN}`" in body and "LC-1" in body
    assert "<https://example.com/redeem?a=1&amp;b=2>" in body
    assert CODE not in msg["text"] and PIN not in msg["text"]  # notifications show the fallback


def test_delivery_dm_lists_many_vouchers_and_survives_huge_content():
    vouchers = [{"code": f"{CODE}-{n}", "pin": f"{n:04d}"} for n in range(100)]
    order = completed_order(quantity=100, product_type="redeem_card", amount=None)
    msg = order_delivery_dm(order, {"vouchers": vouchers})
    check_message(msg)
    body = _text_of(msg)
    assert all(f"{CODE}-{n}" in body for n in range(100))
    huge = {f"k{n}": HUGE for n in range(200)} | {"nested": {"deep": {"pin": PIN}}, "list": [1, None, "x"]}
    hostile_dm = order_delivery_dm(hostile_order("completed"), huge)
    check_message(hostile_dm)
    assert_no_ping(hostile_dm)
    empty = order_delivery_dm(completed_order(), {})
    check_message(empty)
    assert "sent no code" in _text_of(empty)


def test_order_detail_shows_everything_but_the_code_unless_content_is_passed():
    history = [
        FakeHistory(from_status=None, to_status="submitting"),
        FakeHistory(to_status="pending"),
        FakeHistory(),
    ]
    plain_detail = order_detail(completed_order(), history)
    check_message(plain_detail)
    sdk_validate_blocks(plain_detail["blocks"])
    body = _text_of(plain_detail)
    assert CODE not in body
    for expected in (
        "Order #42 · Completed",
        "USD 12.50",
        "USD 100.00 → USD 87.50",
        "<@U0123ABCD>",
        "<#C0123ABCD>",
        "3f2b8c1e-7d4a-4b9e-8f00-1234567890ab",
        "INV-1001",
        "gbk_" + "ab" * 16,
        "*History*",
        f"<!date^{int(NOW.timestamp())}^",
    ):
        assert expected in body, expected
    with_code = order_detail(completed_order(), history, content={"voucher_code": CODE})
    check_message(with_code)
    assert CODE in _text_of(with_code) and CODE not in with_code["text"]


def test_order_detail_with_long_history_and_content_stays_within_50_blocks():
    history = [FakeHistory(note=HUGE)] * 500
    content = {"vouchers": [{"code": HUGE} for _ in range(100)]}
    msg = order_detail(hostile_order("completed"), history, content=content)
    check_message(msg)
    assert_no_ping(msg)
    assert "earlier entries" in _text_of(msg)
    check_message(order_detail(hostile_order("pending"), history))


def test_orders_list_caps_rows_and_says_how_to_narrow():
    orders = [FakeOrder(id=n, status=STATUSES[n % len(STATUSES)]) for n in range(500)]
    msg = orders_list(orders, "Recent orders")
    check_message(msg)
    sdk_validate_blocks(msg["blocks"])
    assert "Showing 20 of 500" in _text_of(msg)
    buttons = [b["accessory"] for b in msg["blocks"] if "accessory" in b]
    assert len(buttons) == 20 and {b["action_id"] for b in buttons} == {ids.ORDER_VIEW}
    assert buttons[0]["value"] == "0"
    paged = orders_list(orders[:5], "Pending", total=37)
    assert "Showing 5 of 37" in _text_of(paged)
    empty = orders_list([], "Failed orders")
    check_message(empty)
    assert "No orders" in _text_of(empty)
    hostile = orders_list([hostile_order()] * 60, HUGE)
    check_message(hostile)
    assert_no_ping(hostile)


# -- balances, deposits, products, health, help, errors --------------------------------------------


def _thresholds(warn: str, crit: str, cur: str = "USD") -> Thresholds:
    return Thresholds(Money.parse(warn, cur), Money.parse(crit, cur))


@pytest.mark.parametrize(
    ("available", "level"),
    [("1000", "ok"), ("500", "warning"), ("300", "warning"), ("100", "critical"), ("0", "critical")],
)
def test_balance_level(available, level):
    assert balance_level(Money.parse(available, "USD"), _thresholds("500", "100")) == level
    assert balance_level(Money.parse(available, "USD"), None) == "unset"


def test_balance_message_shows_each_currency_with_its_threshold_status():
    balances = [
        Balance(currency_code="USD", available="1234.50", updated_at=NOW),
        Balance(currency_code="EUR", available="50.00"),
        Balance(currency_code="GBP", available="300"),
    ]
    thresholds = {
        "USD": _thresholds("500", "100"),
        "EUR": _thresholds("500", "100", "EUR"),
        "GBP": _thresholds("500", "100", "GBP"),
        "JPY": _thresholds("1000", "0", "JPY"),
    }
    msg = balance_message(balances, thresholds, {"eur": "acked"})
    check_message(msg)
    sdk_validate_blocks(msg["blocks"])
    body = _text_of(msg)
    assert ":large_green_circle: *USD 1,234.50* — ok" in body
    assert ":red_circle: *EUR 50.00* — critical" in body and "alert acknowledged" in body
    assert ":large_yellow_circle: *GBP 300.00* — warning" in body
    assert "JPY* — Gate reported no balance" in body
    assert msg["text"] == "Gate balance: EUR 50.00 (critical), GBP 300.00 (warning), USD 1,234.50 (ok)"
    assert "as of" not in body and "Read from Gate" not in body  # no read time given: none claimed
    read = balance_message(balances, thresholds, read_at=NOW + timedelta(days=20))
    assert f"Read from Gate <!date^{int((NOW + timedelta(days=20)).timestamp())}^" in _text_of(read)
    assert f"last changed <!date^{int(NOW.timestamp())}^" in _text_of(read)  # Gate's own date, labelled


def test_balance_message_with_20_currencies_and_nothing():
    codes = [f"X{chr(65 + i)}{chr(65 + i)}" for i in range(20)]
    balances = [Balance(currency_code=c, available="12345678901234.56") for c in codes]
    msg = balance_message(
        balances, {c: _thresholds("10", "5", c) for c in codes}, dict.fromkeys(codes, "firing")
    )
    check_message(msg)
    assert _text_of(msg).count("alert firing") == 20
    empty = balance_message([], {})
    check_message(empty)
    assert "no balances" in _text_of(empty)


def test_deposits_message():
    deposits = [
        Deposit(
            id=n,
            currency_code="USD",
            amount="1000.00",
            method="bank_wire",
            status=("posted", "pending", "rejected", "weird")[n % 4],
            external_ref=f"DEP-{n}",
            created_at=NOW,
            posted_at=NOW if n % 4 == 0 else None,
        )
        for n in range(500)
    ]
    msg = deposits_message(deposits)
    check_message(msg)
    sdk_validate_blocks(msg["blocks"])
    body = _text_of(msg)
    assert "USD 1,000.00* · bank wire · posted · ref `DEP-0`" in body
    assert "DEP-49`" in body and "DEP-50`" not in body and "…and 450 older ones." in body
    check_message(deposits_message([]))
    hostile = deposits_message(
        [Deposit(id=1, currency_code="USD", amount="1", status=HUGE, method=HUGE, external_ref=HUGE)]
    )
    check_message(hostile)
    assert_no_ping(hostile)


def _catalog(n: int) -> list[FakeProduct]:
    return [
        replace(
            TOPUP if i % 2 else VOUCHER,
            id=i,
            name=f"Product {i:03d} " + ("long name " * 20 if i % 7 == 0 else ""),
            is_active=i % 10 != 0,
        )
        for i in range(n)
    ]


def _products_found(products, query):
    """What ``/gate products <query>`` renders: the core's search, then the message."""
    return products_message(match_products(products, query), query)


def _options_found(products, query):
    """What the product select's type-ahead answers: the core's search of active products, rendered."""
    return product_options(match_products(products, query, active_only=True))


def test_products_message_filters_and_caps():
    catalog = [TOPUP, VOUCHER, *_catalog(150)]
    found = _products_found(catalog, "google")
    check_message(found)
    assert "Google Play 25* · voucher USD 25.00" in _text_of(found) and "Steam" not in _text_of(found)
    everything = _products_found(catalog, "")
    check_message(everything)
    sdk_validate_blocks(everything["blocks"])
    assert "more: search with more words" in _text_of(everything)
    assert "_inactive_" not in _text_of(everything)  # inactive products sort last, beyond the first 100
    narrowed = _text_of(_products_found(catalog, "product 01"))
    assert narrowed.count("Product 01") == 10 and narrowed.count("_inactive_") == 1
    assert narrowed.index("Product 011") < narrowed.index("Product 010")
    none = _products_found(catalog, "zzz <!channel>")
    check_message(none)
    assert "No products match" in _text_of(none)
    assert_no_ping(none)
    hostile = _products_found([replace(TOPUP, name=HUGE, currency="<&>")] * 200, HUGE)
    check_message(hostile)
    assert_no_ping(hostile)


def test_health_message_lists_problems_first():
    checks = [
        HealthCheck("Database", True, "ok", NOW),
        HealthCheck("Gate API", False, "HTTP 503 degraded", NOW),
    ]
    msg = health_message(checks, now=NOW)
    check_message(msg)
    body = _text_of(msg)
    assert "1 of 2 checks failing" in body and body.index("Gate API") < body.index("Database")
    assert msg["text"] == "gatebot health: failing: Gate API"
    assert health_message([HealthCheck("Gate API", True)])["text"] == "gatebot health: all ok"
    check_message(health_message([]))
    hostile = health_message([HealthCheck(HUGE, False, HUGE, NOW)] * 300)
    check_message(hostile)
    assert_no_ping(hostile)


def test_help_message_shows_only_allowed_rows():
    msg = help_message(allowed_usage(["finance"]), roles=["finance"])
    check_message(msg)
    body = _text_of(msg)
    assert "/gate balance" in body and "/gate buy" not in body and "Your roles: finance" in body
    assert "/gate buy" in _text_of(help_message(allowed_usage(["admin"])))
    topic = help_message(allowed_usage(["ops"]), topic="buy")
    assert "/gate buy" in _text_of(topic) and "/gate products" not in _text_of(topic)
    denied = help_message(allowed_usage([]), topic="balance")
    check_message(denied)
    assert "*finance* role" in _text_of(denied)
    hostile = help_message(allowed_usage(["admin"]), roles=[HUGE])
    check_message(hostile)
    assert_no_ping(hostile)
    nobody = help_message([])
    check_message(nobody)
    assert "don't have a gatebot role" in _text_of(nobody)


def test_error_and_denied_messages_are_polite_and_escaped():
    with pytest.raises(GrammarError) as info:
        parse("orders <!subteam^S0123|@ops>")
    msg = grammar_error_message(info.value)
    check_message(msg)
    assert "Usage: `/gate orders" in _text_of(msg)
    err = error_message("Gate is unavailable <!channel>", usage=None)
    check_message(err)
    assert_no_ping(err)
    denied = denied_message(what="`/gate balance`", role={"finance", "admin"})
    check_message(denied)
    assert "Sorry" in denied["text"] and "*admin* or *finance*" in denied["text"]
    hostile = error_message(HUGE, usage=HUGE)
    check_message(hostile)
    assert_no_ping(hostile)


# -- the order modal -------------------------------------------------------------------------------


def test_product_options_text_format_and_value():
    assert _options_found([TOPUP, VOUCHER], "") == {
        "options": [
            {
                "text": {"type": "plain_text", "text": "Google Play 25 · voucher USD 25.00", "emoji": True},
                "value": "789",
            },
            {
                "text": {
                    "type": "plain_text",
                    "text": f"Steam Wallet Top Up · top-up USD 5{EN_DASH}100",
                    "emoji": True,
                },
                "value": "456",
            },
        ]
    }
    assert [o["value"] for o in _options_found([TOPUP, VOUCHER], "STEAM us")["options"]] == ["456"]


def test_product_options_cap_at_100_skip_inactive_and_truncate_names():
    catalog = [
        *_catalog(150),
        replace(
            TOPUP,
            id=9999,
            name=HUGE + "\n\nline two",
            min_amount=Decimal("0.5"),
            max_amount=Decimal("123456789.25"),
        ),
    ]
    resp = _options_found(catalog, "")
    check_options(resp)
    assert len(resp["options"]) == 100
    values = {o["value"] for o in _options_found(catalog, "product")["options"]}
    assert not values & {str(i) for i in range(0, 150, 10)}  # inactive ones are not offered
    long = _options_found(catalog, "channel")["options"][0]["text"]["text"]
    assert (
        len(long) <= 75
        and "\n" not in long
        and long.endswith(f"· top-up USD 0.5{EN_DASH}123456789.25")
        and "…" in long
    )
    check_options(_options_found([], "x"))


def _block_ids(view: dict[str, Any]) -> list[str]:
    return [b["block_id"] for b in view["blocks"] if "block_id" in b]


def _element(view: dict[str, Any], block_id: str) -> dict[str, Any]:
    return next(b["element"] for b in view["blocks"] if b.get("block_id") == block_id)


@pytest.mark.parametrize(
    ("product", "fields"), [(None, None), (TOPUP, FIELDS), (TOPUP, None), (VOUCHER, None)]
)
def test_order_modal_versions_are_within_limits(product, fields):
    view = order_modal(metadata=META, product=product, account_fields=fields)
    check_view(view)
    SdkView(**view).to_dict()  # slack-sdk agrees
    assert view["title"]["text"] == "New order" and view["callback_id"] == ids.ORDER_MODAL
    assert decode_metadata(view["private_metadata"]) == META
    product_block = view["blocks"][0]
    assert product_block["block_id"] == ids.ORDER_PRODUCT and product_block["dispatch_action"] is True
    assert product_block["element"]["type"] == "external_select"
    assert product_block["element"]["action_id"] == ids.ORDER_PRODUCT


def test_order_modal_update_keeps_block_and_action_ids():
    empty = order_modal(metadata=META)
    topup = order_modal(metadata=META, product=TOPUP, account_fields=FIELDS)
    other_topup = order_modal(
        metadata=META, product=replace(TOPUP, id=1, name="Razer Gold"), account_fields=FIELDS
    )
    voucher = order_modal(metadata=META, product=VOUCHER)
    assert _block_ids(empty) == [ids.ORDER_PRODUCT, ids.ORDER_EXTERNAL_REF, ids.ORDER_TEST]
    assert _block_ids(topup) == [
        ids.ORDER_PRODUCT,
        ids.ORDER_AMOUNT,
        "order_acct__steam_login",
        "order_acct__email",
        "order_acct__phone",
        "order_acct__player_id",
        ids.ORDER_EXTERNAL_REF,
        ids.ORDER_TEST,
    ]
    assert _block_ids(topup) == _block_ids(other_topup)
    assert _block_ids(voucher) == [
        ids.ORDER_PRODUCT,
        ids.ORDER_QUANTITY,
        ids.ORDER_EXTERNAL_REF,
        ids.ORDER_TEST,
    ]
    for view in (empty, topup, voucher):  # input action ids equal block ids, the same in every version
        for block in view["blocks"]:
            if block["type"] == "input":
                assert block["element"]["action_id"] == block["block_id"]


def test_order_modal_topup_amount_and_account_fields():
    view = order_modal(metadata=META, product=TOPUP, account_fields=FIELDS)
    amount = _element(view, ids.ORDER_AMOUNT)
    assert amount == {
        "type": "number_input",
        "action_id": ids.ORDER_AMOUNT,
        "is_decimal_allowed": False,
        "min_value": "5",
        "max_value": "100",
    }
    hint = next(b["hint"]["text"] for b in view["blocks"] if b.get("block_id") == ids.ORDER_AMOUNT)
    assert hint.startswith("USD 5 to 100, in steps of 1.") and "25% margin" in hint and "USD 12.50" in hint
    blocks = {b["block_id"]: b for b in view["blocks"] if "block_id" in b}
    assert blocks["order_acct__steam_login"]["label"]["text"] == "Steam login"
    assert blocks["order_acct__steam_login"]["optional"] is False
    assert (
        blocks["order_acct__email"]["optional"] is True
        and "email" in blocks["order_acct__email"]["hint"]["text"]
    )
    assert "+14155550123" in blocks["order_acct__phone"]["hint"]["text"]
    assert "^[0-9]{6,}$" in blocks["order_acct__player_id"]["hint"]["text"]
    ref = _element(view, ids.ORDER_EXTERNAL_REF)
    assert ref["max_length"] == 64
    cents = order_modal(metadata=META, product=replace(TOPUP, step=Decimal("0.01")), margin=Decimal("0"))
    assert _element(cents, ids.ORDER_AMOUNT)["is_decimal_allowed"] is True
    assert "No margin" in next(
        b["hint"]["text"] for b in cents["blocks"] if b.get("block_id") == ids.ORDER_AMOUNT
    )


@pytest.mark.parametrize(
    ("changes", "decimals", "low", "high"),
    [
        ({"step": Decimal("1")}, False, "5", "100"),
        ({"step": None}, True, "5", "100"),
        ({"step": Decimal("0.5")}, True, "5", "100"),
        ({"step": Decimal("1"), "min_amount": Decimal("0.5")}, True, "0.5", "100"),
        (
            {"currency": "JPY", "step": None, "min_amount": Decimal("99.5"), "max_amount": Decimal("1000.9")},
            False,
            "100",
            "1000",
        ),
    ],
)
def test_amount_input_allows_decimals_only_where_they_can_be_valid(changes, decimals, low, high):
    view = order_modal(metadata=META, product=replace(TOPUP, **changes), values={ids.ORDER_AMOUNT: "10.5"})
    check_view(view)
    amount = _element(view, ids.ORDER_AMOUNT)
    assert (amount["is_decimal_allowed"], amount["min_value"], amount["max_value"]) == (decimals, low, high)
    assert ("initial_value" in amount) is decimals  # a typed 10.5 is kept only where decimals are allowed


def test_order_modal_free_form_account_and_voucher_quantity():
    free = order_modal(metadata=META, product=TOPUP)
    box = _element(free, ids.ORDER_ACCOUNT_FREE)
    assert box["multiline"] is True and "steam_login=" in box["placeholder"]["text"]
    voucher = order_modal(metadata=META, product=VOUCHER)
    quantity = _element(voucher, ids.ORDER_QUANTITY)
    assert quantity == {
        "type": "number_input",
        "action_id": ids.ORDER_QUANTITY,
        "is_decimal_allowed": False,
        "min_value": "1",
        "max_value": "100",
        "initial_value": "1",
    }


def test_order_modal_prefills_values_and_ignores_junk():
    values = {
        ids.ORDER_AMOUNT: "20",
        "order_acct__steam_login": "player123",
        ids.ORDER_EXTERNAL_REF: "INV-9",
        ids.ORDER_TEST: ids.TEST_ORDER_VALUE,
    }
    view = order_modal(metadata=META, product=TOPUP, account_fields=FIELDS, values=values)
    assert _element(view, ids.ORDER_AMOUNT)["initial_value"] == "20"
    assert _element(view, "order_acct__steam_login")["initial_value"] == "player123"
    assert _element(view, ids.ORDER_EXTERNAL_REF)["initial_value"] == "INV-9"
    assert _element(view, ids.ORDER_TEST)["initial_options"][0]["value"] == ids.TEST_ORDER_VALUE
    check_view(view)
    junk = order_modal(
        metadata=META, product=VOUCHER, values={ids.ORDER_QUANTITY: "lots", ids.ORDER_EXTERNAL_REF: "x" * 500}
    )
    check_view(junk)
    assert _element(junk, ids.ORDER_QUANTITY)["initial_value"] == "1"
    assert "initial_value" not in _element(
        order_modal(metadata=META, product=TOPUP, values={ids.ORDER_AMOUNT: "NaN"}), ids.ORDER_AMOUNT
    )


def test_order_modal_with_hostile_product_and_many_fields():
    hostile = replace(
        TOPUP,
        name=HUGE,
        currency="US<D",
        min_amount=Decimal("0.01"),
        max_amount=Decimal("1E+6"),
        step=None,
        margin=Decimal("0.333333"),
    )
    many = [CustomerAccountField(name=f"f{n}", label=HUGE, pattern=HUGE) for n in range(90)]
    many.append(CustomerAccountField(name="f1"))  # a duplicate name must not repeat a block id
    view = order_modal(metadata=META, product=hostile, account_fields=many)
    check_view(view)
    assert len(view["blocks"]) == 94


def test_order_modal_and_option_product_selection_agree():
    view = order_modal(metadata=META, product=TOPUP)
    assert _element(view, ids.ORDER_PRODUCT)["initial_option"] == product_options([TOPUP])["options"][0]


def state(*, product: int | None = 456, **values: Any) -> dict[str, dict[str, Any]]:
    """view.state.values as Slack sends them."""
    out: dict[str, dict[str, Any]] = {
        ids.ORDER_PRODUCT: {
            ids.ORDER_PRODUCT: {
                "type": "external_select",
                "selected_option": (
                    {"text": {"type": "plain_text", "text": "x"}, "value": str(product)}
                    if product is not None
                    else None
                ),
            }
        },
        ids.ORDER_EXTERNAL_REF: {ids.ORDER_EXTERNAL_REF: {"type": "plain_text_input", "value": None}},
        ids.ORDER_TEST: {ids.ORDER_TEST: {"type": "checkboxes", "selected_options": []}},
    }
    for block_id, value in values.items():
        if block_id == ids.ORDER_TEST:
            out[block_id] = {
                block_id: {"type": "checkboxes", "selected_options": [{"value": ids.TEST_ORDER_VALUE}]}
            }
        else:
            kind = (
                "number_input" if block_id in (ids.ORDER_AMOUNT, ids.ORDER_QUANTITY) else "plain_text_input"
            )
            out[block_id] = {block_id: {"type": kind, "value": value}}
    return out


def test_form_values_and_selected_product():
    st = state(order_amount="10", order_test=True)
    assert form_values(st) == {ids.ORDER_PRODUCT: "456", ids.ORDER_AMOUNT: "10", ids.ORDER_TEST: "test"}
    assert selected_product_id(st) == 456
    assert selected_product_id(state(product=None)) is None


def test_parse_topup_with_fields():
    st = state(
        order_amount="10.50",
        order_acct__steam_login=" player123 ",
        order_acct__player_id="123456",
        order_external_ref=" INV-1001 ",
        order_test=True,
    )
    draft, errors = parse_order_form(st, replace(TOPUP, step=Decimal("0.5")), FIELDS)
    assert errors == {}
    assert draft == {
        "product_id": 456,
        "amount": Decimal("10.50"),
        "quantity": 1,
        "external_ref": "INV-1001",
        "customer_account": {"steam_login": "player123", "player_id": "123456"},
        "test": True,
    }


def test_parse_reports_required_fields_and_bad_amounts_per_block():
    _draft, errors = parse_order_form(state(order_amount="1.234"), TOPUP, FIELDS)
    assert errors == {
        ids.ORDER_AMOUNT: "USD amounts have at most 2 decimals.",
        "order_acct__steam_login": "Enter the steam login.",
        "order_acct__player_id": "Enter the player id.",
    }
    assert parse_order_form(state(), TOPUP, [])[1] == {ids.ORDER_AMOUNT: "Enter the amount."}
    assert parse_order_form(state(order_amount="ten"), TOPUP, [])[1] == {
        ids.ORDER_AMOUNT: "Enter a number, like 10.00."
    }
    assert parse_order_form(state(order_amount="-5"), TOPUP, [])[1] == {
        ids.ORDER_AMOUNT: "Enter an amount above zero."
    }
    assert parse_order_form(state(order_amount="1e40"), TOPUP, [])[1] == {
        ids.ORDER_AMOUNT: "That amount is far too large."
    }
    yen = replace(TOPUP, currency="JPY")
    assert parse_order_form(state(order_amount="100.5"), yen, [])[1] == {
        ids.ORDER_AMOUNT: "JPY amounts have no decimals."
    }
    assert parse_order_form(state(order_amount="1000"), yen, [])[0]["amount"] == Decimal("1000")


def test_parse_free_form_account_lines():
    text = "steam_login = player123\n\nemail=a=b@example.com\n"
    draft, errors = parse_order_form(state(order_amount="10", order_account_free=text), TOPUP, None)
    assert errors == {} and draft["customer_account"] == {
        "steam_login": "player123",
        "email": "a=b@example.com",
    }
    bad = "steam_login\nbad key=1\nemail=x\nemail=y\nphone=\nlong=" + "x" * 300
    _draft, errors = parse_order_form(state(order_amount="10", order_account_free=bad), TOPUP, None)
    assert errors[ids.ORDER_ACCOUNT_FREE].startswith(
        "line 1 has no '=': write it as key=value; "
        "line 2: 'bad key' is not a valid field name (letters, digits, _ . -); "
        "line 4: email is given twice; line 5: phone has no value"
    )
    assert len(errors[ids.ORDER_ACCOUNT_FREE]) <= 300
    _draft, errors = parse_order_form(state(order_amount="10"), TOPUP, None)
    assert errors == {ids.ORDER_ACCOUNT_FREE: "Enter the customer's account as key=value lines."}
    assert parse_account_lines("") == ({}, [])


@pytest.mark.parametrize(
    ("quantity", "ok"), [("1", True), ("100", True), ("0", False), ("101", False), ("2.5", False), ("", True)]
)
def test_parse_voucher_quantity(quantity, ok):
    st = state(product=789, **({ids.ORDER_QUANTITY: quantity} if quantity else {}))
    draft, errors = parse_order_form(st, VOUCHER, None)
    if ok:
        assert errors == {} and draft["quantity"] == int(quantity or 1) and draft["amount"] is None
    else:
        assert errors == {ids.ORDER_QUANTITY: "Enter a whole number from 1 to 100."}


def test_parse_product_problems_and_external_ref_length():
    assert parse_order_form(state(product=None), None, None)[1] == {ids.ORDER_PRODUCT: "Pick a product."}
    _draft, errors = parse_order_form(state(product=789, order_quantity="1"), TOPUP, None)
    assert set(errors) >= {ids.ORDER_PRODUCT}
    _draft, errors = parse_order_form(state(product=789, order_external_ref="x" * 65), VOUCHER, None)
    assert errors == {ids.ORDER_EXTERNAL_REF: "At most 64 characters."}


def test_modal_errors_maps_core_fields_to_block_ids():
    core = {
        "product": "Product is inactive",
        "amount": "Must be a multiple of 5",
        "quantity": "Too many",
        "external_ref": "Too long",
        "account": "Unparseable",
        "account.steam_login": "Unknown login",
        "balance": "Not enough USD balance",
    }
    assert modal_errors(core, kind=ProductKind.TOP_UP) == {
        ids.ORDER_PRODUCT: "Product is inactive",
        ids.ORDER_AMOUNT: "Must be a multiple of 5; Not enough USD balance",
        ids.ORDER_QUANTITY: "Too many",
        ids.ORDER_EXTERNAL_REF: "Too long",
        ids.ORDER_ACCOUNT_FREE: "Unparseable",
        "order_acct__steam_login": "Unknown login",
    }
    assert modal_errors({"balance": "Not enough"}, kind=ProductKind.VOUCHER) == {
        ids.ORDER_QUANTITY: "Not enough"
    }


def test_modal_errors_only_names_blocks_the_view_has():
    free_form = order_modal(metadata=META, product=TOPUP)
    present = input_block_ids(free_form)
    mapped = modal_errors(
        {
            "account.steam_login": "Unknown login",
            "quantity": "n/a",
            "surprise": "Odd",
            "balance": "Not enough",
        },
        kind=ProductKind.TOP_UP,
        block_ids=present,
    )
    assert mapped == {
        ids.ORDER_ACCOUNT_FREE: "steam_login: Unknown login",
        ids.ORDER_PRODUCT: "quantity: n/a; surprise: Odd",
        ids.ORDER_AMOUNT: "Not enough",
    }
    assert set(mapped) <= present
    assert modal_errors({"x": HUGE})[ids.ORDER_PRODUCT].endswith("…")


def test_confirm_view_shows_cost_and_balance_after():
    draft, errors = parse_order_form(
        state(
            order_amount="10",
            order_acct__steam_login="player123",
            order_acct__player_id="123456",
            order_external_ref="INV-1",
        ),
        TOPUP,
        FIELDS,
    )
    assert errors == {}
    view = confirm_view(
        product=TOPUP,
        draft=draft,
        metadata=META,
        estimated_cost=Decimal("12.50"),
        balance=Decimal("100"),
        account_fields=FIELDS,
    )
    check_view(view)
    SdkView(**view).to_dict()
    body = dumps(view["blocks"])
    assert view["callback_id"] == ids.ORDER_CONFIRM and view["submit"]["text"] == "Place order"
    assert view["close"]["text"] == "Back" and decode_metadata(view["private_metadata"]) == META
    for expected in ("USD 10.00", "USD 12.50", "USD 100.00 → USD 87.50", "Steam login: `player123`", "INV-1"):
        assert expected in body, expected
    assert "costs more than" not in body
    short = confirm_view(
        product=TOPUP, draft=draft, metadata=META, estimated_cost=Decimal("12.50"), balance=Decimal("5")
    )
    assert "costs more than the available USD balance" in dumps(short["blocks"])


def test_confirm_view_voucher_and_hostile_draft():
    draft, _ = parse_order_form(state(product=789, order_quantity="3", order_test=True), VOUCHER, None)
    view = confirm_view(product=VOUCHER, draft=draft, metadata=META, estimated_cost=Decimal("75"))
    check_view(view)
    assert f"3 {TIMES} USD 25.00" in dumps(view["blocks"]) and "Test order" in dumps(view["blocks"])
    hostile = {
        "product_id": 1,
        "amount": Decimal("1E+20"),
        "quantity": 1,
        "external_ref": HUGE,
        "customer_account": {f"k{n}{HUGE[:50]}": HUGE for n in range(100)},
        "test": True,
    }
    view = confirm_view(product=replace(TOPUP, name=HUGE), draft=hostile, metadata=META)  # type: ignore[arg-type]
    check_view(view)
    assert_no_ping(view)


def test_metadata_round_trip_and_refusals():
    meta = ModalMetadata(
        draft_id="abc-123", channel_id="C0123", product_id=456, thread_ts="1732438800.000100"
    )
    text = encode_metadata(meta)
    assert len(text) < 3000 and decode_metadata(text) == meta
    assert decode_metadata(encode_metadata(ModalMetadata(draft_id="x"))) == ModalMetadata(draft_id="x")
    for junk in (
        "",
        "null",
        "[]",
        '{"v":2,"d":"x"}',
        '{"v":1}',
        '{"v":1,"d":"x","p":"1"}',
        '{"v":1,"d":"x","c":5}',
        '{"v":1,"d":"bad id!"}',
    ):
        with pytest.raises(MetadataError):
            decode_metadata(junk)
    with pytest.raises(MetadataError):
        ModalMetadata(draft_id="x" * 65)
    with pytest.raises(MetadataError):
        ModalMetadata(draft_id="x", channel_id="#general")


# -- home and alerts -------------------------------------------------------------------------------


def _home(roles, **overrides):
    data = {
        "balances": [Balance(currency_code="USD", available="1234.50")],
        "thresholds": {"USD": _thresholds("500", "100")},
        "health": [HealthCheck("Gate API", True, "HTTP 200", NOW)],
        "open_alerts": [AlertCard(key="low:USD", title="Low USD balance", severity="critical", since=NOW)],
        "recent_orders": [completed_order()],
        "viewer_roles": roles,
        "now": NOW,
    } | overrides
    view = home_view(**data)
    check_view(view)
    SdkView(**view).to_dict()
    return view


@pytest.mark.parametrize(
    ("roles", "new_order", "balance", "orders", "alerts"),
    [
        ((), False, False, False, False),
        (("support",), False, False, True, True),
        (("finance",), False, True, False, True),
        (("ops",), True, True, True, True),
        (("admin",), True, True, True, True),
    ],
)
def test_home_view_by_role(roles, new_order, balance, orders, alerts):
    view = _home(roles)
    body = dumps(view["blocks"])
    assert view["type"] == "home"
    assert (ids.HOME_NEW_ORDER in body) is new_order
    assert ("USD 1,234.50" in body) is balance
    assert ("*Recent orders*" in body) is orders
    assert ("Low USD balance" in body) is alerts
    assert "Gate API" in body  # everyone sees health
    assert CODE not in body


def test_home_view_with_adversarial_data_stays_within_100_blocks():
    codes = [f"X{chr(65 + i)}{chr(65 + i)}" for i in range(20)]
    view = _home(
        ("admin",),
        balances=[Balance(currency_code=c, available="1") for c in codes],
        thresholds={c: _thresholds("10", "5", c) for c in codes},
        health=[HealthCheck(HUGE, False, HUGE, NOW)] * 40,
        open_alerts=[AlertCard(key="k", title=HUGE, severity="warning", state="flapping")] * 50,
        recent_orders=[hostile_order(s) for s in STATUSES] * 72,
    )
    assert len(view["blocks"]) <= 60
    assert_no_ping(view)
    assert "and 40 more in the alert channel" in dumps(view["blocks"])
    empty = _home(("admin",), balances=[], thresholds={}, health=[], open_alerts=[], recent_orders=[])
    assert "No orders yet" in dumps(empty["blocks"])


def _actions(msg: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for b in msg["blocks"] if b["type"] == "actions" for e in b["elements"]]


@pytest.mark.parametrize("state_", ["firing", "acked", "snoozed", "flapping", "resolved"])
def test_alert_message_states(state_):
    card = AlertCard(
        key="low_balance:USD",
        title="Low USD balance",
        severity="critical",
        text="USD 80.00 is below the critical level USD 100.00",
        fields=[("Available", "USD 80.00")],
        state=state_,
        since=NOW,
        acked_by="U0123ABCD",
        snoozed_until=NOW + timedelta(hours=4),
        link="https://status.example.com/gate",
    )
    msg = alert_message(card)
    check_message(msg)
    sdk_validate_blocks(msg["blocks"])
    buttons = {e["action_id"]: e for e in _actions(msg)}
    if state_ == "resolved":
        assert buttons == {} and "Resolved" in _text_of(msg)
        return
    expected = {ids.ALERT_SNOOZE_1H, ids.ALERT_SNOOZE_4H, ids.ALERT_SNOOZE_24H, ids.ALERT_LINK}
    assert set(buttons) == (expected if state_ == "acked" else expected | {ids.ALERT_ACK})
    assert all(b["value"] == "low_balance:USD" for b in buttons.values())
    assert buttons[ids.ALERT_LINK]["url"] == "https://status.example.com/gate"
    assert msg["text"].startswith("CRITICAL: Low USD balance")
    if state_ == "acked":
        assert "Acknowledged by <@U0123ABCD>" in _text_of(msg)
    if state_ == "snoozed":
        assert "Snoozed until <!date^" in _text_of(msg)


def test_alert_message_drops_bad_links_and_bounds_hostile_text():
    msg = alert_message(
        AlertCard(
            key="k",
            title=HUGE,
            severity="odd",
            text=HUGE,
            state="weird",
            fields=[(HUGE, HUGE)] * 40,
            link="javascript:alert(1)",
            snoozed_until=None,
        )
    )
    check_message(msg)
    assert ids.ALERT_LINK not in dumps(msg)
    assert_no_ping(msg)
    assert ids.ALERT_SNOOZE_SECONDS == {
        ids.ALERT_SNOOZE_1H: 3600,
        ids.ALERT_SNOOZE_4H: 14400,
        ids.ALERT_SNOOZE_24H: 86400,
    }


# -- the code never leaks --------------------------------------------------------------------------


def test_no_builder_but_the_dm_and_detail_with_content_carries_a_code():
    order = completed_order(product_name="Google Play 25", product_type="redeem_card", amount=None)
    history = [FakeHistory()]
    outputs = [
        order_message(order, history_tail=history),
        order_thread_note(history[0]),
        order_detail(order, history),
        orders_list([order], "Recent"),
        home_view(
            balances=[],
            thresholds={},
            health=[],
            open_alerts=[],
            recent_orders=[order],
            viewer_roles=["admin"],
        ),
    ]
    for out in outputs:
        assert CODE not in dumps(out)
    content = {"voucher_code": CODE}
    assert CODE in dumps(order_delivery_dm(order, content)) and CODE in dumps(
        order_detail(order, history, content=content)
    )


# -- helpers and limits.py -------------------------------------------------------------------------


def test_format_money_never_fails():
    assert format_money(Decimal("1234.5"), "USD") == "USD 1,234.50"
    assert format_money(Decimal("1E+30"), "USD") == "USD 1000000000000000000000000000000"
    assert format_money(Decimal("12.5"), "US<D") == "US<D 12.5"
    assert format_money(None, "USD") == "—"


def test_truncation_helpers_never_exceed_and_never_split_markup():
    assert truncate("abcdef", 4) == "abc…" and truncate("abc", 3) == "abc" and truncate("abc", 1) == "…"
    cut = truncate_mrkdwn("see <https://example.com/very/long|link> now", 20)
    assert cut == "see…" and len(cut) <= 20
    assert truncate_mrkdwn("fish &amp; chips", 9) == "fish…"
    naive = slack_date(datetime(2026, 11, 24, 9, 0))
    assert (
        naive
        == slack_date(NOW)
        == f"<!date^{int(NOW.timestamp())}^{{date_short_pretty}} {{time}}|2026-11-24 09:00 UTC>"
    )


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


@pytest.mark.parametrize(
    ("payload", "path"),
    [
        ({"blocks": []}, "text"),
        ({"text": "x" * 4001, "blocks": []}, "text"),
        ({"text": "x", "blocks": [_section("x")] * 51}, "blocks"),
        ({"text": "x", "blocks": [_section("x" * 3001)]}, "blocks[0].text.text"),
        ({"text": "x", "blocks": [_section("")]}, "blocks[0].text.text"),
        (
            {"text": "x", "blocks": [{"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11}]},
            "blocks[0].fields",
        ),
        (
            {
                "text": "x",
                "blocks": [{"type": "section", "fields": [{"type": "mrkdwn", "text": "f" * 2001}]}],
            },
            "blocks[0].fields[0].text",
        ),
        (
            {"text": "x", "blocks": [{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}]},
            "blocks[0].text.text",
        ),
        (
            {"text": "x", "blocks": [{"type": "header", "text": {"type": "mrkdwn", "text": "h"}}]},
            "blocks[0].text.type",
        ),
        (
            {
                "text": "x",
                "blocks": [{"type": "context", "elements": [{"type": "mrkdwn", "text": "c"}] * 11}],
            },
            "blocks[0].elements",
        ),
        (
            {
                "text": "x",
                "blocks": [
                    {
                        "type": "actions",
                        "elements": [
                            {
                                "type": "button",
                                "text": {"type": "plain_text", "text": "b" * 76},
                                "action_id": "a",
                            }
                        ],
                    }
                ],
            },
            "blocks[0].elements[0].text.text",
        ),
        (
            {
                "text": "x",
                "blocks": [
                    {
                        "type": "actions",
                        "elements": [
                            {
                                "type": "button",
                                "text": {"type": "plain_text", "text": "b"},
                                "action_id": "a" * 256,
                            }
                        ],
                    }
                ],
            },
            "blocks[0].elements[0].action_id",
        ),
        (
            {
                "text": "x",
                "blocks": [
                    {
                        "type": "actions",
                        "elements": [
                            {"type": "button", "text": {"type": "plain_text", "text": "b"}, "action_id": "a"}
                        ]
                        * 2,
                    }
                ],
            },
            "blocks[0].elements[1].action_id",
        ),
        (
            {"text": "x", "blocks": [_section("a") | {"block_id": "b"}, _section("b") | {"block_id": "b"}]},
            "blocks[1].block_id",
        ),
        ({"text": "x", "blocks": [_section("a") | {"block_id": "b" * 256}]}, "blocks[0].block_id"),
        ({"text": "x", "blocks": [{"type": "carousel"}]}, "blocks[0].type"),
        (
            {
                "text": "x",
                "blocks": [
                    _section("x")
                    | {
                        "accessory": {
                            "type": "static_select",
                            "options": [{"text": {"type": "plain_text", "text": "o" * 76}, "value": "v"}],
                        }
                    }
                ],
            },
            "blocks[0].accessory.options[0].text.text",
        ),
        (
            {
                "text": "x",
                "blocks": [
                    _section("x")
                    | {
                        "accessory": {
                            "type": "static_select",
                            "options": [{"text": {"type": "plain_text", "text": "o"}, "value": "v" * 151}],
                        }
                    }
                ],
            },
            "blocks[0].accessory.options[0].value",
        ),
    ],
)
def test_check_message_names_the_offending_element(payload, path):
    with pytest.raises(LimitError) as info:
        check_message(payload)
    assert info.value.path == path


def _modal(**changes):
    return {
        "type": "modal",
        "title": {"type": "plain_text", "text": "t"},
        "submit": {"type": "plain_text", "text": "Go"},
        "blocks": [],
        "private_metadata": "",
    } | changes


def _number(**fields):
    return {
        "type": "input",
        "block_id": "n",
        "label": {"type": "plain_text", "text": "n"},
        "element": {"type": "number_input", "action_id": "n"} | fields,
    }


@pytest.mark.parametrize(
    ("view", "path"),
    [
        (_modal(title={"type": "plain_text", "text": "t" * 25}), "title.text"),
        (_modal(submit={"type": "plain_text", "text": "s" * 25}), "submit.text"),
        (_modal(close={"type": "plain_text", "text": "c" * 25}), "close.text"),
        (_modal(private_metadata="m" * 3001), "private_metadata"),
        (_modal(blocks=[_section("x")] * 101), "blocks"),
        (
            {
                "type": "modal",
                "title": {"type": "plain_text", "text": "t"},
                "blocks": [_number(is_decimal_allowed=True)],
            },
            "submit",
        ),
        (_modal(blocks=[_number()]), "blocks[0].element.is_decimal_allowed"),
        (_modal(blocks=[_number(is_decimal_allowed=False, min_value="1.5")]), "blocks[0].element.min_value"),
        (
            _modal(blocks=[_number(is_decimal_allowed=True, min_value="9", max_value="1")]),
            "blocks[0].element",
        ),
        (
            _modal(blocks=[_number(is_decimal_allowed=True, initial_value="abc")]),
            "blocks[0].element.initial_value",
        ),
        ({"type": "home", "blocks": [], "submit": {"type": "plain_text", "text": "x"}}, "submit"),
        ({"type": "workflow_step", "blocks": []}, "type"),
    ],
)
def test_check_view_names_the_offending_element(view, path):
    with pytest.raises(LimitError) as info:
        check_view(view)
    assert info.value.path == path


def test_check_options():
    option = {"text": {"type": "plain_text", "text": "o"}, "value": "v"}
    check_options({"options": []})
    check_options({"option_groups": [{"label": {"type": "plain_text", "text": "g"}, "options": [option]}]})
    with pytest.raises(LimitError, match="101 items"):
        check_options({"options": [option] * 101})
    with pytest.raises(LimitError) as info:
        check_options({"options": [option, option | {"value": ""}]})
    assert info.value.path == "response.options[1].value"
    with pytest.raises(LimitError):
        check_options({})
