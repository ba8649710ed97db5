"""The order pipeline against the in-process sandbox, on SQLite and PostgreSQL.

Validation tests check the exact message a person would see, and that nothing reached Gate.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import text

from gatebot.orders import GateDown, OrderDraft, OrderInvalid, parse_account_lines
from gatebot.store import repo
from gatebot.store.models import OrderStatus

from .conftest import Pipeline

STEAM_TOPUP = 456   # USD 5-100 step 1, margin 0.25, fields steam_login (pattern) + optional email
PUBG = 457          # player_id [0-9]{5,12}
VODAFONE = 458      # GBP 5-50 step 5, phone +44…
ORANGE = 459        # EUR 2.5-60 step 0.5, no published fields (configured in conftest: msisdn phone)
FREE_FIRE = 460     # USD, no published fields, none configured -> free-form
STEAM_20 = 101      # voucher USD 20
ITUNES = 107        # inactive voucher
FAILS = 199         # always fails


def draft(product: int | str, **kw: object) -> OrderDraft:
    kw.setdefault("requester", "U123")
    return OrderDraft(product=product, **kw)  # type: ignore[arg-type]


async def invalid(p: Pipeline, d: OrderDraft) -> dict[str, str]:
    before = p.gate_requests()
    with pytest.raises(OrderInvalid) as info:
        await p.service.quote(d)
    if "balance" not in info.value.errors:
        assert p.gate_requests() == before, "validation must not send any request to Gate"
    assert p.creates() == 0, "a refused draft must not reach Gate's create endpoint"
    with p.db.session() as s:
        assert repo.list_orders(s) == [], "a refused draft must not be stored"
    return info.value.errors


# -- validation: every rule, with its message, nothing sent --------------------------------------------
async def test_unknown_product(pipeline: Pipeline) -> None:
    errors = await invalid(pipeline, draft(999))
    assert errors == {"product": "There is no product 999 in the catalog."}


async def test_inactive_product(pipeline: Pipeline) -> None:
    errors = await invalid(pipeline, draft(ITUNES))
    assert errors["product"] == "iTunes Gift Card 15 EUR is not available right now (inactive at Gate)."


async def test_product_by_slug_and_missing_product(pipeline: Pipeline) -> None:
    q = await pipeline.service.quote(draft("steam-gift-card-20-usd"))
    assert q.product.id == STEAM_20
    assert (await invalid(pipeline, draft("  ")))["product"] == "Choose a product."


@pytest.mark.parametrize(("amount", "message"), [
    (None, "Enter the amount to top up, in USD."),
    ("", "Enter the amount to top up, in USD."),
    ("ten", "Enter the amount as a number like 25.00 (amount 'ten' is not a number; write it like 12.50)."),
    ("10.555", "Enter the amount as a number like 25.00 (USD amounts have at most 2 decimals, got '10.555')."),
    ("0", "The amount must be more than zero."),
    ("4", "The amount must be between USD 5.00 and USD 100.00."),
    ("100.01", "The amount must be between USD 5.00 and USD 100.00."),
    ("10.50", "The amount must go in steps of USD 1.00 — e.g. USD 10.00 or USD 11.00."),
])
async def test_topup_amount_rules(pipeline: Pipeline, amount: str | None, message: str) -> None:
    errors = await invalid(pipeline, draft(STEAM_TOPUP, amount=amount, account={"steam_login": "player123"}))
    assert errors == {"amount": message}


async def test_step_is_counted_from_the_minimum(pipeline: Pipeline) -> None:
    errors = await invalid(pipeline, draft(ORANGE, amount="2.75", account={"msisdn": "+33612345678"}))
    assert errors == {"amount": "The amount must go in steps of EUR 0.50 — e.g. EUR 2.50 or EUR 3.00."}
    quote = await pipeline.service.quote(draft(ORANGE, amount="3.00", account={"msisdn": "+33612345678"}))
    assert quote.cost.format() == "EUR 3.24"  # the sandbox publishes an 8 % margin for this product


async def test_topup_quantity_must_be_one(pipeline: Pipeline) -> None:
    errors = await invalid(pipeline, draft(STEAM_TOPUP, amount="10", quantity=2, account={"steam_login": "abc"}))
    assert errors == {"quantity": "Top-ups are bought one at a time: the quantity must be 1."}


@pytest.mark.parametrize("quantity", [0, 101, "two", "1.5", -3])
async def test_voucher_quantity_range(pipeline: Pipeline, quantity: object) -> None:
    errors = await invalid(pipeline, draft(STEAM_20, quantity=quantity))
    assert errors == {"quantity": "The quantity must be a whole number from 1 to 100."}


async def test_required_published_field(pipeline: Pipeline) -> None:
    errors = await invalid(pipeline, draft(STEAM_TOPUP, amount="10"))
    assert errors == {"account.steam_login": "Steam login is required for Steam Wallet Top Up."}


async def test_pattern_email_and_phone_fields(pipeline: Pipeline) -> None:
    errors = await invalid(pipeline, draft(STEAM_TOPUP, amount="10",
                                           account={"steam_login": "no spaces!", "email": "not-an-email"}))
    assert errors == {
        "account.steam_login": "Steam login is not in the expected format ([A-Za-z0-9_]{3,32}).",
        "account.email": "Email for the receipt must be an email address like name@example.com.",
    }
    errors = await invalid(pipeline, draft(VODAFONE, amount="10", account={"phone": "call me"}))
    assert errors == {"account.phone": "Mobile number must be a phone number like +14155550123."}


async def test_configured_fields_apply_when_the_product_publishes_none(pipeline: Pipeline) -> None:
    errors = await invalid(pipeline, draft(ORANGE, amount="5"))
    assert errors == {"account.msisdn": "Mobile number is required for Orange France Recharge."}


async def test_unexpected_account_field(pipeline: Pipeline) -> None:
    errors = await invalid(pipeline, draft(PUBG, amount="5", account={"player_id": "123456", "server": "eu"}))
    assert errors == {"account": "PUBG Mobile UC does not take server; its fields are player_id."}


async def test_free_form_account_when_fields_are_unknown(pipeline: Pipeline) -> None:
    errors = await invalid(pipeline, draft(FREE_FIRE, amount="5"))
    assert errors == {"account": "Enter the customer's account as key=value lines, e.g. player_id=123456 "
                                 "(ask the vendor which fields it needs)."}
    quote = await pipeline.service.quote(draft(FREE_FIRE, amount="5", account={"uid": "778899"}))
    assert quote.account == {"uid": "778899"}


async def test_external_ref_format_and_uniqueness(pipeline: Pipeline) -> None:
    errors = await invalid(pipeline, draft(STEAM_20, external_ref="bad ref with spaces"))
    assert errors == {"external_ref": "A reference is 1-64 letters, digits and . _ : / # - (starting with a "
                                      "letter or digit), e.g. INV-1001."}
    await pipeline.service.place(draft(STEAM_20, external_ref="INV-1001"))
    with pytest.raises(OrderInvalid) as info:
        await pipeline.service.quote(draft(STEAM_20, external_ref="INV-1001"))
    assert info.value.errors == {"external_ref": "INV-1001 is already used by order #1 (pending); use another "
                                                 "reference, or look that order up."}


async def test_every_problem_is_reported_at_once(pipeline: Pipeline) -> None:
    errors = await invalid(pipeline, draft(STEAM_TOPUP, amount="3", quantity=2, external_ref="x" * 65))
    assert set(errors) == {"amount", "quantity", "account.steam_login", "external_ref"}


async def test_insufficient_balance_is_refused_before_create_with_the_shortfall(pipeline: Pipeline) -> None:
    pipeline.sim.set_balance("USD", "30.00")
    errors = await invalid(pipeline, draft(STEAM_20, quantity=2))
    assert errors == {"balance": "Not enough USD: this order costs USD 40.00 and USD 30.00 is available "
                                 "(short by USD 10.00). Ask finance for a deposit, then try again."}


async def test_topup_cost_includes_the_margin(pipeline: Pipeline) -> None:
    quote = await pipeline.service.quote(draft(STEAM_TOPUP, amount="10", account={"steam_login": "player123"}))
    assert quote.cost.format() == "USD 12.50"
    assert quote.balance_after is not None and quote.balance_after.format() == "USD 4,987.50"


def test_parse_account_lines() -> None:
    assert parse_account_lines("steam_login=player123\nemail: a@b.co\n\n# note") == (
        {"steam_login": "player123", "email": "a@b.co"}, [])
    fields, problems = parse_account_lines("oops\nbad key=1\nx=\nx=1\nx=2")
    assert fields == {"x": "1"}
    assert problems == ["line 1 has no '=': write it as key=value",
                        "line 2: 'bad key' is not a valid field name (letters, digits, _ . -)",
                        "line 3: x has no value", "line 5: x is given twice"]


def test_parse_account_lines_accepts_what_either_old_copy_accepted() -> None:
    """One rule for the modal and the CLI: the union of the two copies it replaced (issue 12)."""
    long_value = "v" * 300  # the modal's copy refused values over 256 characters; the CLI's took them
    assert parse_account_lines(f"a=b=c\nurl: http://x\n# a comment\nlong={long_value}") == (
        {"a": "b=c", "url": "http://x", "long": long_value}, [])
    _fields, problems = parse_account_lines("k" * 50 + " x=1")
    assert problems == [f"line 1: {'k' * 29 + '…'!r} is not a valid field name (letters, digits, _ . -)"]


# -- the happy path, tracking, content at rest ---------------------------------------------------------
async def test_voucher_order_end_to_end(pipeline: Pipeline) -> None:
    p = pipeline
    order = await p.service.place(draft(STEAM_20, quantity=2, origin_channel="C1"))
    assert order.status == OrderStatus.PENDING
    assert order.gate_order_id and order.external_ref.startswith("GB-20261124-")
    assert order.idempotency_key.startswith("gbk_")
    assert order.charged_amount == Decimal("40.00")
    assert order.balance_before == Decimal("5000.00") and order.balance_after == Decimal("4960.00")

    p.clock.advance(timedelta(seconds=91))
    result = await p.service.track()
    assert (result.checked, result.changed) == (1, 1)
    done = await p.service.find(order.external_ref)
    assert done is not None and done.status == OrderStatus.COMPLETED and done.completed_at is not None
    content = p.service.content(done)
    assert content is not None and "voucher_code" in content
    # Encrypted at rest: the raw column never holds the code.
    with p.db.session() as s:
        raw = s.execute(text("SELECT order_content_enc FROM orders WHERE id = :id"), {"id": done.id}).scalar()
    assert content["voucher_code"] not in str(raw)
    assert [e.kind for e in p.events] == ["order.created", "order.pending", "order.completed"]
    assert [h.to_status for h in await p.service.history(order.id or 0)] == ["submitting", "pending", "completed"]


async def test_topup_account_is_encrypted_and_sent(pipeline: Pipeline) -> None:
    p = pipeline
    order = await p.service.place(draft(STEAM_TOPUP, amount="10", account={"steam_login": "player123"}))
    assert order.status == OrderStatus.PENDING and order.charged_amount == Decimal("12.50")
    [gate_order] = p.sim.all_orders()
    assert gate_order["idempotency_key"] == order.idempotency_key
    with p.db.session() as s:
        raw = s.execute(text("SELECT request_body_enc, customer_account_enc FROM orders")).one()
    assert "player123" not in str(raw)
    assert order.account(p.service.cipher) == {"steam_login": "player123"}


async def test_lookup_by_every_kind_of_reference(pipeline: Pipeline) -> None:
    order = await pipeline.service.place(draft(STEAM_20, external_ref="INV-2002"))
    for ref in (str(order.id), f"#{order.id}", order.gate_order_id, "INV-2002", order.idempotency_key):
        assert ref is not None
        found = await pipeline.service.find(ref)
        assert found is not None and found.id == order.id, ref
    assert await pipeline.service.find("INV-9999") is None


async def test_gate_failure_is_recorded_with_what_happens_next(pipeline: Pipeline) -> None:
    p = pipeline
    order = await p.service.place(draft(FAILS))
    p.clock.advance(timedelta(seconds=91))
    await p.service.track()
    failed = await p.service.find(str(order.id))
    assert failed is not None and failed.status == OrderStatus.FAILED
    assert failed.status_reason == "Gate gave no reason"
    assert p.events[-1].kind == "order.failed"


# -- intent first, same key always --------------------------------------------------------------------
async def test_intent_is_committed_before_the_request_leaves(pipeline: Pipeline) -> None:
    p = pipeline
    seen_in_store: list[str] = []
    original = p.sim.create_order

    def spy(body, *, idempotency_key):
        with p.db.session() as s:
            stored = repo.find_order(s, idempotency_key)
            seen_in_store.append(stored.status if stored else "absent")
        return original(body, idempotency_key=idempotency_key)

    p.sim.create_order = spy  # type: ignore[method-assign]
    await p.service.place(draft(STEAM_20))
    assert seen_in_store == ["submitting"]


async def test_outcome_unknown_is_retried_with_the_same_key_and_body(pipeline: Pipeline) -> None:
    p = pipeline
    p.sim.update_faults({"create_error_rate": 1.0})
    order = await p.service.place(draft(STEAM_TOPUP, amount="20", account={"steam_login": "player123"}))
    assert order.status == OrderStatus.UNKNOWN
    assert order.status_reason == ("Gate did not give a clear answer; retrying with the same key "
                                   "(no duplicate can be created).")
    assert p.events[-1].kind == "order.unknown"

    p.sim.update_faults({"create_error_rate": 0.0})
    assert await p.service.recover() == 0  # not due yet: the backoff is respected
    p.clock.advance(timedelta(seconds=20))
    assert await p.service.recover() == 1
    recovered = await p.service.find(order.idempotency_key)
    assert recovered is not None and recovered.status == OrderStatus.PENDING
    keys = [o["idempotency_key"] for o in p.sim.all_orders()]
    assert keys == [order.idempotency_key], "exactly one Gate order for the intent"


async def test_startup_recovery_redrives_intents_left_submitting(pipeline: Pipeline) -> None:
    p = pipeline
    quote = await p.service.quote(draft(STEAM_20))
    saved = await p.service.save_intent(quote, draft(STEAM_20))  # then "the process died"
    assert await p.service.recover() == 0  # within the grace period: maybe still in flight
    assert await p.service.recover(everything=True) == 1
    again = await p.service.find(saved.external_ref)
    assert again is not None and again.status == OrderStatus.PENDING
    assert len(p.sim.all_orders()) == 1


async def test_recovery_after_gate_created_but_answer_was_lost(pipeline: Pipeline) -> None:
    p = pipeline
    quote = await p.service.quote(draft(STEAM_20))
    saved = await p.service.save_intent(quote, draft(STEAM_20))
    # Gate got the request and created the order, but we never heard back:
    p.sim.create_order(saved.request_body(p.service.cipher), idempotency_key=saved.idempotency_key)
    await p.service.recover(everything=True)
    again = await p.service.find(saved.idempotency_key)
    assert again is not None and again.status == OrderStatus.PENDING
    assert len(p.sim.all_orders()) == 1 and p.sim.stats()["creates"]["replayed"] == 1


async def test_rejection_is_recorded_and_not_retried(pipeline: Pipeline) -> None:
    p = pipeline
    quote = await p.service.quote(draft(STEAM_20))
    saved = await p.service.save_intent(quote, draft(STEAM_20))
    # The product goes inactive at Gate between our validation and the create:
    catalog = p.sim.config.catalog
    p.sim.config.catalog = dataclasses.replace(catalog, products=tuple(
        dataclasses.replace(x, is_active=False) if x.id == STEAM_20 else x for x in catalog.products))
    rejected = await p.service.submit(saved.id)  # type: ignore[arg-type]
    assert rejected.status == OrderStatus.REJECTED and rejected.error_code == "product_inactive"
    assert rejected.status_reason is not None and rejected.status_reason.startswith("Gate refused the order:")
    assert await p.service.recover(everything=True) == 0


async def test_idempotency_conflict_is_rejected_not_retried(pipeline: Pipeline) -> None:
    p = pipeline
    quote = await p.service.quote(draft(STEAM_20))
    saved = await p.service.save_intent(quote, draft(STEAM_20))
    p.sim.create_order({"product_id": STEAM_20, "quantity": 3}, idempotency_key=saved.idempotency_key)
    rejected = await p.service.submit(saved.id)  # type: ignore[arg-type]
    assert rejected.status == OrderStatus.REJECTED and rejected.error_code == "idempotency_conflict"
    assert len(p.sim.all_orders()) == 1


async def test_insufficient_balance_at_gate_waits_for_funds_then_resumes(pipeline: Pipeline) -> None:
    p = pipeline
    quote = await p.service.quote(draft(STEAM_20))
    p.sim.set_balance("USD", "5.00")  # spent elsewhere between our check and the create
    saved = await p.service.save_intent(quote, draft(STEAM_20))
    waiting = await p.service.submit(saved.id)  # type: ignore[arg-type]
    assert waiting.status == OrderStatus.WAITING_FUNDS
    assert waiting.status_reason == ("Gate says the USD balance is too low. It will be retried "
                                     "automatically, with the same key, when a deposit posts.")
    assert p.events[-1].kind == "order.waiting_funds"
    assert await p.service.resume_waiting("EUR") == 0
    p.sim.add_deposit("USD", "100.00", status="posted")
    assert await p.service.resume_waiting("USD") == 1
    resumed = await p.service.find(saved.idempotency_key)
    assert resumed is not None and resumed.status == OrderStatus.PENDING
    assert [o["idempotency_key"] for o in p.sim.all_orders()] == [saved.idempotency_key]


async def test_circuit_open_refuses_new_orders_up_front(pipeline: Pipeline) -> None:
    p = pipeline
    async def down() -> bool:
        return False

    p.service._gate_available = down
    with pytest.raises(GateDown, match="The Gate API is down right now, so no order was sent"):
        await p.service.place(draft(STEAM_20))
    assert p.creates() == 0


# -- tracking in bulk ---------------------------------------------------------------------------------
async def test_tracking_many_orders_pages_the_lists(pipeline: Pipeline) -> None:
    p = pipeline
    p.sim.set_balance("USD", "100000.00")
    orders = [await p.service.place(draft(STEAM_20)) for _ in range(150)]
    before = p.gate_requests()
    result = await p.service.track()
    assert result.checked == 150 and result.changed == 0
    assert result.requests == p.gate_requests() - before == 2  # 150 pending / pageSize 100
    p.clock.advance(timedelta(seconds=91))
    before = p.gate_requests()
    result = await p.service.track()
    assert result.changed == 150
    # pending list (empty, 1 page) + all orders newest first (2 pages of 100)
    assert p.gate_requests() - before == result.requests == 3
    found = [await p.service.find(o.external_ref) for o in orders]
    assert all(o is not None and o.status == OrderStatus.COMPLETED for o in found)


# -- Slack-facing helpers: drafts and bounded balance reads ----------------------------------------------
async def test_a_draft_is_placed_once_however_often_it_is_submitted(pipeline: Pipeline) -> None:
    p = pipeline
    first = await p.service.place(draft(STEAM_20, draft_id="d-123"))
    again = await p.service.place(draft(STEAM_20, draft_id="d-123"))
    assert again.id == first.id
    # Two submits racing past the first check: the unique draft id stops the second insert.
    quote = await p.service.quote(draft(STEAM_20, draft_id="d-456"))
    a = await p.service.save_intent(quote, draft(STEAM_20, draft_id="d-456"))
    b = await p.service.save_intent(quote, draft(STEAM_20, draft_id="d-456"))
    assert a.id == b.id
    await p.service.recover(everything=True)
    assert len(p.sim.all_orders()) == 2


async def test_balances_fall_back_to_the_last_reading_when_gate_is_slow(pipeline: Pipeline) -> None:
    import asyncio

    p = pipeline
    fresh = await p.service.balances()
    assert not fresh.cached and fresh.get("USD") is not None
    p.sim.set_balance("USD", "123.00")
    release = asyncio.Event()
    original = p.service.gate.get_balance

    async def slow():
        await release.wait()
        return await original()

    p.service.gate.get_balance = slow  # type: ignore[method-assign]
    snapshot = await p.service.balances(max_wait=0.01)
    assert snapshot.cached and snapshot.get("USD") == fresh.get("USD")
    quote = await p.service.quote(draft(STEAM_20), balance_wait=0.01)
    assert quote.balance_cached
    release.set()
    for _ in range(20):  # the late answer is remembered when it arrives
        await asyncio.sleep(0)
    await p.service.settle()  # its write runs on the store's thread
    cached = await p.service.cached_balances()
    assert cached is not None and str(cached.get("USD")) == "USD 123.00"


async def test_concurrent_balance_reads_share_one_gate_call(pipeline: Pipeline) -> None:
    """Fifty people asking at once cost Gate one GET /balance; a caller arriving after it answered reads again."""
    import asyncio

    p = pipeline
    release = asyncio.Event()
    original = p.service.gate.get_balance
    calls = 0

    async def slow():
        nonlocal calls
        calls += 1
        await release.wait()
        return await original()

    p.service.gate.get_balance = slow  # type: ignore[method-assign]
    waiting = [asyncio.ensure_future(p.service.balances()) for _ in range(50)]
    for _ in range(5):
        await asyncio.sleep(0)
    release.set()
    snapshots = await asyncio.gather(*waiting)
    assert calls == 1 and all(not s.cached and s.get("USD") == snapshots[0].get("USD") for s in snapshots)
    await p.service.balances()
    assert calls == 2


async def test_a_failed_shared_read_falls_back_for_every_waiter(pipeline: Pipeline) -> None:
    import asyncio

    p = pipeline
    known = await p.service.balances()
    p.sim.update_faults({"error_rate": 1.0})
    snapshots = await asyncio.gather(*(p.service.balances() for _ in range(3)))
    assert all(s.cached and s.get("USD") == known.get("USD") for s in snapshots)


async def test_balances_without_gate_or_cache_raise_gate_down(pipeline: Pipeline) -> None:
    pipeline.sim.update_faults({"error_rate": 1.0})
    with pytest.raises(GateDown, match="Could not read the balance from Gate"):
        await pipeline.service.balances()


@pytest.mark.parametrize("level", ["DEBUG", "INFO"])
async def test_no_secret_reaches_the_logs(pipeline: Pipeline, caplog: pytest.LogCaptureFixture, level: str) -> None:
    """gatebot's own messages (every library's, redacted on the handler: scenarios/test_secrets_in_logs.py)."""
    from gatebot.config import SANDBOX_API_KEY

    p = pipeline
    caplog.set_level(level)
    p.sim.update_faults({"create_error_rate": 1.0})
    order = await p.service.place(draft(STEAM_TOPUP, amount="10", account={"steam_login": "secretplayer"}))
    p.sim.update_faults({"create_error_rate": 0.0})
    await p.service.recover(everything=True)
    voucher = await p.service.place(draft(STEAM_20))
    p.clock.advance(timedelta(seconds=91))
    await p.service.track()
    done = await p.service.find(voucher.external_ref)
    assert done is not None and order.id
    code = (p.service.content(done) or {})["voucher_code"]
    text_logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "outcome unknown" in text_logged  # the logs do say what happened...
    for secret in ("secretplayer", code, SANDBOX_API_KEY):  # ...but never with secrets
        assert secret not in text_logged


async def test_a_429_with_a_long_retry_after_puts_the_next_attempt_after_it(pipeline: Pipeline) -> None:
    """The client does not sleep through a Retry-After over its limit; the order remembers when Gate allows
    the next try, and recovery does not knock sooner."""
    p = pipeline
    d = draft(STEAM_20)
    saved = await p.service.save_intent(await p.service.quote(d), d)
    p.sim.faults.rate_limit_burst = 1  # the create request is answered 429
    p.sim.faults.retry_after = 600
    order = await p.service.submit(saved.id or 0)
    assert order.status == OrderStatus.UNKNOWN and order.error_code == "rate_limited"
    assert order.next_attempt_at is not None
    assert (order.next_attempt_at - p.clock.now()).total_seconds() >= 600
