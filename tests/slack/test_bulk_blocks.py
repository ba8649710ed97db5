"""The bulk builders: the batch message per status (buttons, the approval wait, failed rows), the views within
Slack's limits, the modal's metadata, and where the bot token may go with a file download."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta
from decimal import Decimal

import pytest

from gatebot.bulk import BatchProgress, BulkPlan, Problem, ProductCount
from gatebot.money import Money
from gatebot.slack import ids
from gatebot.slack.blocks.bulk import BatchCard, BulkMeta, batch_message, bulk_modal, progress_bar, summary_view
from gatebot.slack.blocks.limits import check_message, check_view
from gatebot.slack.listeners.bulk import _trusted, problems_csv
from gatebot.store.models import BatchStatus

CARD = BatchCard(requester="UBOB", source_name="june.csv", origin_channel="COPS")


def progress(status: BatchStatus, **counts: int) -> BatchProgress:
    values: dict[str, int] = {"placed": 0, "completed": 0, "failed": 0, "waiting": 10, "cancelled": 0,
                              "attention": 0, **counts}
    return BatchProgress(batch_id=7, status=status, status_reason=None, rows=10, **values)  # type: ignore[arg-type]


@pytest.mark.parametrize(("status", "buttons"), [
    (BatchStatus.RUNNING, [ids.BULK_PAUSE, ids.BULK_CANCEL]),
    (BatchStatus.PAUSED, [ids.BULK_RESUME, ids.BULK_CANCEL]),
    (BatchStatus.WAITING_FUNDS, [ids.BULK_PAUSE, ids.BULK_RESUME, ids.BULK_CANCEL]),
    (BatchStatus.AWAITING_APPROVAL, [ids.BULK_CANCEL]),
    (BatchStatus.FINISHED, []),
])
def test_the_buttons_follow_the_batch_status(status: BatchStatus, buttons: list[str]) -> None:
    msg = batch_message(progress(status), CARD)
    check_message(msg)
    shown = [e["action_id"] for b in msg["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert shown == buttons
    assert all(e["value"] == "7" for b in msg["blocks"] if b["type"] == "actions" for e in b["elements"])


def test_a_batch_waiting_for_approval_says_so_and_how_it_gets_approved() -> None:
    card = BatchCard(requester="UBOB", source_name="june.csv", approval_reason="USD 170.00 is over USD 100.00")
    text = json.dumps(batch_message(progress(BatchStatus.AWAITING_APPROVAL), card)["blocks"])
    assert "Waiting for approval" in text and "USD 170.00 is over USD 100.00" in text
    assert "gatebot bulk approve B7" in text
    asked = dataclasses.replace(card, approval_channel="CAPPROVE")
    text = json.dumps(batch_message(progress(BatchStatus.AWAITING_APPROVAL), asked)["blocks"])
    assert "Waiting for approval in <#CAPPROVE>" in text and "gatebot bulk approve B7" in text  # the CLI: a fallback


def test_progress_counts_cost_eta_and_the_first_failed_rows() -> None:
    p = BatchProgress(batch_id=7, status=BatchStatus.RUNNING, status_reason=None, rows=10, placed=6, completed=3,
                      failed=2, waiting=4, cancelled=0, attention=0, cost={"USD": Money(Decimal("60"), "USD")},
                      eta=timedelta(seconds=0.8))
    card = BatchCard(requester="UBOB", source_name="june.csv", failures=((3, "Product out of stock"),),
                     results_available=True)
    msg = batch_message(p, card, controls=False)
    check_message(msg)
    text = json.dumps(msg["blocks"])
    assert "USD 60.00" in text and "about 1 s" in text and "row 3: Product out of stock" in text
    assert "1 more in the results file" in text and '"actions"' not in text  # no buttons in a lookup
    assert progress_bar(0.5).count("▓") == 10


def test_the_views_stay_within_slacks_limits_with_many_problems() -> None:
    meta = BulkMeta(channel="COPS")
    problems = [Problem(row, "amount", "x" * 300) for row in range(2, 5002)]
    check_view(bulk_modal(meta))
    view = bulk_modal(meta, problems=problems, file_name="big.csv")
    check_view(view)
    assert "4,992 more" in json.dumps(view["blocks"])
    plan = BulkPlan(batch_id=3, rows=10, products=(ProductCount(101, "Steam 20", 10),),
                    totals={"USD": Money(Decimal("200"), "USD")}, balances={"USD": Money(Decimal("150"), "USD")},
                    balance_cached=False, approval="over USD 100.00", source_name="june.csv")
    summary = summary_view(meta, plan)
    check_view(summary)
    text = json.dumps(summary["blocks"])
    assert "USD -50.00" in text and "short by USD 50.00" in text and "Needs approval" in text
    assert BulkMeta.decode(summary["private_metadata"]) == BulkMeta(channel="COPS", batch_id=3)


@pytest.mark.parametrize("junk", ["", "[]", '{"c": 5}', '{"b": "1"}', '{"b": true}'])
def test_metadata_gatebot_did_not_write_is_refused(junk: str) -> None:
    with pytest.raises(ValueError):
        BulkMeta.decode(junk)


def test_the_bot_token_goes_only_to_slack_or_the_configured_api_origin() -> None:
    api = "http://127.0.0.1:8080/api/"
    assert _trusted("https://files.slack.com/files-pri/T1-F1/download/a.csv", "https://slack.com/api/")
    assert _trusted("http://127.0.0.1:8080/files-pri/T1-F1/download/a.csv", api)
    assert not _trusted("http://files.slack.com/files-pri/T1-F1/a.csv", "https://slack.com/api/")  # not HTTPS
    assert not _trusted("https://evil.example/slack.com/a.csv", "https://slack.com/api/")
    assert not _trusted("https://slack.com.evil.example/a.csv", "https://slack.com/api/")
    assert not _trusted("http://127.0.0.1:9999/a.csv", api)


def test_the_problems_file_lists_every_problem_by_row_and_column() -> None:
    text = problems_csv([Problem(None, None, "Empty file."), Problem(4317, "amount", "Not a number.")]).decode()
    assert text.splitlines() == ["row,column,problem", ",,Empty file.", "4317,amount,Not a number."]
