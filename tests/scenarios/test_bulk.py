"""Bulk orders through Slack, end to end: /gate bulk → a CSV in the modal's file_input → summary → confirm →
the batch placed against the sandbox → one progress message edited in place → the results CSV in the
requester's DM only; an invalid file; Pause/Resume/Cancel (including someone else's click and a crafted
button); the results again, refused to anyone but the requester."""

from __future__ import annotations

import csv
import io
import json
import logging
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import pytest

from gatebot.emulator import Message, View
from gatebot.slack import ids
from gatebot.store import repo
from gatebot.store.models import Batch, BatchStatus, OrderStatus
from tests.leaks import leaks

from .conftest import ADMIN, NO_BOT_CHANNEL, NOBODY, OPS, OPS_CHANNEL, SUPPORT, Harness

HEADER = "product,quantity,amount,external_ref,steam_login,email"


def csv_bytes(rows: list[str]) -> bytes:
    return ("\r\n".join([HEADER, *rows]) + "\r\n").encode()


VALID = csv_bytes([f"101,1,,REF-{i:03d},," for i in range(1, 7)]
                  + [f"steam-wallet,,10,TOP-{i:03d},player_{i},p{i}@example.com" for i in range(1, 5)])


@pytest.fixture(autouse=True)
def virtual_sleep(harness: Harness) -> None:
    """The bulk runner paces rows with ``sleep``: here it moves the ManualClock instead of waiting."""

    async def sleep(seconds: float) -> None:
        harness.clock.advance(timedelta(seconds=seconds))

    harness.core.bulk.sleep = sleep


def batches(h: Harness) -> list[Batch]:
    with h.core.db.session() as s:
        return repo.batches_in(s, list(BatchStatus))


async def open_bulk(h: Harness, user: str = OPS, channel: str = OPS_CHANNEL) -> View:
    before = len(h.ws.calls("views.open"))
    await h.command(user, "bulk", channel)
    await h.wait(lambda: len(h.ws.calls("views.open")) > before, "views.open")
    view = h.ws.top_view(user)
    assert view is not None and view.callback_id == ids.BULK_MODAL
    return view


async def upload(h: Harness, view: View, name: str, data: bytes, user: str = OPS) -> View:
    """Pick the file and press "Check file": the ack shows "Checking…", then the view is updated."""
    picked = h.ws.upload_file(user, name, data)
    h.driver.set_input(view, ids.BULK_FILE, ids.BULK_FILE, [picked])
    mark = h.ws.call_count
    result = await h.submit(user, view)
    assert result.response_action == "update"  # "Checking your file…", within the 3 s
    return await h.wait(lambda: view if h.ws.calls("views.update", since=mark)
                        and "Checking" not in json.dumps(view.blocks) else None, "the checked file")


async def replay(h: Harness, user: str, view_body: dict[str, Any]) -> dict[str, Any]:
    """A ``view_submission`` of ``view_body`` sent as it is — a double click or Slack's retry, or a client
    that skips Slack's own checks; returns the app's answer."""
    payload = {"type": "view_submission", "user": h.ws.user_ref(user), "api_app_id": h.ws.app_id,
               "team": h.ws.team_ref(), "trigger_id": h.ws.issue_trigger(user), "view": view_body,
               "response_urls": [], "token": "x"}
    answer = await h.driver.post(urlencode({"payload": json.dumps(payload)}).encode(),
                                 "application/x-www-form-urlencoded")
    assert answer.status_code == 200
    body: dict[str, Any] = answer.json() if answer.text.strip() else {}
    return body


async def confirmed_batch(h: Harness, data: bytes = VALID, user: str = OPS) -> tuple[Batch, Message]:
    summary = await upload(h, await open_bulk(h, user), "june.csv", data, user)
    assert summary.callback_id == ids.BULK_CONFIRM
    await h.submit(user, summary)
    batch = await h.wait(lambda: next((b for b in batches(h) if b.message_ts), None), "the progress message")
    await h.settle()
    assert batch.message_channel is not None and batch.message_ts is not None
    return batch, h.ws.message(batch.message_channel, batch.message_ts)


def blocks_text(message: Message) -> str:
    return message.text + json.dumps(message.blocks or [])


async def test_a_valid_file_is_summarised_confirmed_placed_followed_and_its_codes_reach_only_the_requester(
        harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    h = harness
    caplog.set_level(logging.DEBUG)
    summary = await upload(h, await open_bulk(h), "june.csv", VALID)
    shown = json.dumps(summary.blocks)
    assert summary.callback_id == ids.BULK_CONFIRM and summary.submit is not None
    assert "Batch B1" in shown and "USD 170.00" in shown and "USD 4,830.00" in shown  # total, balance after
    assert h.gate_creates() == 0 and [b.state for b in batches(h)] == [BatchStatus.PLANNED]

    snapshot = h.ws.view_dict(summary)
    await h.submit(OPS, summary)
    await replay(h, OPS, snapshot)  # a double click on Confirm
    batch = await h.wait(lambda: next((b for b in batches(h) if b.message_ts), None), "the progress message")
    await h.wait(lambda: "is confirmed" in json.dumps(summary.blocks) or None, "the confirmation")
    await h.settle()
    assert len(batches(h)) == 1 and batch.message_channel == OPS_CHANNEL  # one batch, in the command's channel
    assert len(h.orders()) == 10 and h.gate_creates() == 0
    progress_msg = h.ws.message(OPS_CHANNEL, batch.message_ts or "")
    assert "placing orders" in progress_msg.text and "0 of 10" in progress_msg.text

    await h.core.bulk.run_batch(batch.id or 0)  # the bulk job's work, on virtual time
    await h.settle()
    assert h.gate_creates() == 10
    assert progress_msg.edited and ids.BULK_PAUSE in json.dumps(progress_msg.blocks)
    await h.complete()
    await h.core.bulk.settle(batch.id or 0)
    await h.settle()
    final = blocks_text(progress_msg)
    assert "finished" in progress_msg.text and "10 completed" in progress_msg.text
    assert "USD 170.00" in final and ids.BULK_PAUSE not in final and "Download results again" in final
    assert len(h.ws.messages(OPS_CHANNEL)) == 1  # edited in place, never re-posted

    dm = h.ws.dm_channel(OPS).id
    files = [f for f in h.ws.files.values() if any(ch == dm for ch, _ in f.shares)]
    assert [f.filename for f in files] == ["batch-B1-results.csv"]
    rows = list(csv.DictReader(io.StringIO(files[0].text)))
    codes = [c for o in h.orders() for c in h.codes(o)]
    assert len(rows) == 10 and codes and all(r["status"] == "completed" for r in rows)
    assert all(code in files[0].text for code in codes)

    # Someone else asks for the results again: politely refused, nothing uploaded.
    await h.driver.click(SUPPORT, progress_msg, ids.BULK_RESULTS)
    refusal = await h.reply_to(SUPPORT)
    assert "Only the person who placed batch B1" in refusal.text
    # The requester asks again: a second copy, in their DM only.
    await h.driver.click(OPS, progress_msg, ids.BULK_RESULTS)
    await h.wait(lambda: len([f for f in h.ws.files.values() if f.shares and f.shares[0][0] == dm]) == 2 or None,
                 "the results again")
    assert all(ch == dm for f in h.ws.files.values() if f.user is None for ch, _ in f.shares)

    # /gate order B1 shows the batch; a row is an order like any other.
    await h.command(OPS, "order B1")
    assert "Batch B1" in (await h.reply_to(OPS, after=1)).text
    await h.command(NOBODY, "order B1")
    assert "support" in (await h.reply_to(NOBODY)).text.lower()
    await h.command(OPS, "order REF-003")
    assert "REF-003" in blocks_text_of(await h.reply_to(OPS, after=2))

    for channel in h.ws.channels:  # the codes: in the DM file only — no message, ephemeral or log line
        everything = h.texts_in(channel)
        assert not leaks(codes, everything), channel
    assert not leaks(codes, caplog.text)


def blocks_text_of(item: Any) -> str:
    return str(item.text) + json.dumps(item.blocks or [])


async def test_an_invalid_file_shows_its_problems_inline_and_sends_the_full_list_by_dm(harness: Harness) -> None:
    h = harness
    bad = csv_bytes([f"101,1,,REF-{i:03d},," for i in range(1, 12)]
                    + ["no-such-product,1,,REF-X,,", "101,1,,REF-001,,", "steam-wallet,,abc,TOP-9,p,p@example.com"])
    view = await upload(h, await open_bulk(h), "bad.csv", bad)
    shown = json.dumps(view.blocks)
    assert view.callback_id == ids.BULK_MODAL and "problem(s)" in shown and "nothing was charged" in shown
    assert "row 13" in shown  # the unknown product, by spreadsheet row
    files = [f for f in h.ws.files.values() if f.filename == "bad-problems.csv"]
    assert len(files) == 1 and files[0].shares[0][0] == h.ws.dm_channel(OPS).id
    listed = list(csv.DictReader(io.StringIO(files[0].text)))
    assert {r["row"] for r in listed} >= {"13", "14", "15"}
    assert h.gate_creates() == 0 and batches(h) == [] and h.orders() == []


async def test_bulk_needs_the_ops_role_and_the_modal_takes_csv_files_only(harness: Harness) -> None:
    h = harness
    await h.command(NOBODY, "bulk")
    assert "ops" in (await h.reply_to(NOBODY)).text and h.ws.top_view(NOBODY) is None
    view = await open_bulk(h)
    with pytest.raises(ValueError, match=r"does not take \.xlsx"):  # the Slack client offers CSV files only
        h.driver.set_input(view, ids.BULK_FILE, ids.BULK_FILE, [h.ws.upload_file(OPS, "june.xlsx", b"PK")])
    result = await h.driver.submit_view(OPS, view)  # nothing picked: the client's own "required" check
    assert result.client_errors == {ids.BULK_FILE: "Please complete this required field."}
    assert batches(h) == []


async def test_pause_resume_and_cancel_from_the_progress_message(harness: Harness) -> None:
    h = harness
    batch, msg = await confirmed_batch(h)
    other = await h.core.bulk.plan(b"product,quantity,external_ref\r\n101,1,OTHER-1\r\n", requester=ADMIN,
                                   source_name="other.csv")
    await h.core.bulk.confirm(other.batch_id, ADMIN)
    await h.settle()

    await h.driver.click(NOBODY, msg, ids.BULK_PAUSE)  # not the requester, not an admin
    assert "Only the person who placed the batch" in (await h.reply_to(NOBODY)).text
    assert (await h.core.bulk.get(batch.id or 0)).state is BatchStatus.RUNNING  # type: ignore[union-attr]

    crafted = next(b for b in msg.blocks or [] if b.get("type") == "actions")
    crafted["elements"][0]["value"] = str(other.batch_id)  # the Pause button, naming someone else's batch
    await h.driver.click(OPS, msg, ids.BULK_PAUSE)
    assert "does not belong" in (await h.reply_to(OPS)).text
    assert (await h.core.bulk.get(other.batch_id)).state is BatchStatus.RUNNING  # type: ignore[union-attr]
    crafted["elements"][0]["value"] = str(batch.id)

    await h.driver.click(OPS, msg, ids.BULK_PAUSE)
    await h.wait(lambda: "paused" in msg.text or None, "the message to say paused")
    await h.settle()
    assert ids.BULK_RESUME in json.dumps(msg.blocks) and ids.BULK_PAUSE not in json.dumps(msg.blocks)
    await h.driver.click(OPS, msg, ids.BULK_RESUME)
    await h.wait(lambda: "placing orders" in msg.text or None, "the message to say running")
    await h.settle()
    await h.driver.click(ADMIN, msg, ids.BULK_CANCEL)  # an admin may stop anyone's batch
    await h.wait(lambda: "cancelled" in msg.text or None, "the message to say cancelled")
    await h.settle()
    assert "*Not sent*\\n10" in json.dumps(msg.blocks)
    assert all(o.status == OrderStatus.REJECTED for o in h.orders() if o.batch_id == batch.id)
    assert h.gate_creates() == 0


async def test_the_progress_message_goes_to_the_requesters_dm_when_the_bot_is_not_in_the_channel(
        harness: Harness) -> None:
    h = harness
    summary = await upload(h, await open_bulk(h, OPS, NO_BOT_CHANNEL), "june.csv", VALID)
    await h.submit(OPS, summary)
    batch = await h.wait(lambda: next((b for b in batches(h) if b.message_ts), None), "the progress message")
    assert batch.message_channel == h.ws.dm_channel(OPS).id
    assert batch.origin_channel == NO_BOT_CHANNEL


async def test_the_server_checks_what_the_slack_client_should_have_the_role_the_form_the_type_the_size(
        harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    """Showing the form is not a permission, and a crafted submission skips the client: each check is made
    again on the server, answered inline on the file field, and nothing is planned or audited as allowed."""
    from gatebot.slack.listeners import bulk as bulk_listener

    h = harness
    view = await open_bulk(h)
    h.driver.set_input(view, ids.BULK_FILE, ids.BULK_FILE, [h.ws.upload_file(OPS, "june.csv", VALID)])
    good = h.ws.view_dict(view)

    def errors(body: dict[str, Any]) -> str:
        assert body.get("response_action") == "errors", body
        return str(body["errors"][ids.BULK_FILE])  # the inline error on the file field

    assert "ops role" in errors(await replay(h, NOBODY, good))
    assert [e.allowed for e in h.audit("batch.create")] == [False]
    assert "out of date" in errors(await replay(h, OPS, {**good, "private_metadata": "{not json"}))

    def with_file(**changes: Any) -> dict[str, Any]:
        body: dict[str, Any] = json.loads(json.dumps(good))
        picked = body["state"]["values"][ids.BULK_FILE][ids.BULK_FILE]["files"][0]
        picked.update(changes)
        return body

    assert "not a CSV file" in errors(await replay(h, OPS, with_file(name="june.xlsx", filetype="xlsx")))
    monkeypatch.setattr(bulk_listener, "MAX_BYTES", 1024 * 1024)
    assert "larger than 1 MB" in errors(await replay(h, OPS, with_file(size=2 * 1024 * 1024)))
    assert batches(h) == [] and h.gate_creates() == 0


async def test_a_file_checked_while_gate_is_down_says_so_in_the_form(harness: Harness) -> None:
    from gatebot import monitor
    from gatebot.alerts import AlertPolicy, HealthObservation

    h = harness
    policy = AlertPolicy.from_settings(h.core.settings)
    monitor.observe_health(h.core.db, [HealthObservation(ok=False, detail="HTTP 503")] * policy.health_fail_after,
                           h.clock.now(), policy)
    view = await upload(h, await open_bulk(h), "june.csv", VALID)
    assert view.callback_id == ids.BULK_MODAL and "Gate API is down" in json.dumps(view.blocks)
    assert batches(h) == [] and h.gate_creates() == 0
