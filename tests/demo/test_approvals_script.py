"""``gatebot demo --script approvals``: the shipped four-eyes session, asserted on its transcript (issue 13):
a request over the threshold, a refused self-approval, an approval by another person, the resulting order."""

from __future__ import annotations

import asyncio

import pytest

from gatebot.demo import APPROVALS, BUILT_IN, script_source
from gatebot.demo.script import read_script, run_script

from .test_script import chunks


@pytest.fixture(scope="module")
def transcript() -> tuple[int, list[str]]:
    lines: list[str] = []
    code = asyncio.run(run_script(read_script(APPROVALS.read_text(encoding="utf-8")), lines.append))
    return code, lines


def said(transcript: tuple[int, list[str]], command: str, nth: int = 0) -> str:
    found = [text for cmd, text in chunks(transcript[1]) if cmd == command]
    assert len(found) > nth, f"{command!r} not in the transcript"
    return found[nth]


def test_the_approvals_script_shows_request_refusal_approval_and_the_order(
        transcript: tuple[int, list[str]]) -> None:
    code, lines = transcript
    assert code == 0, "\n".join(lines)
    confirm = said(transcript, "alice: :submit", 0)
    assert "This order needs approval because it costs USD 600.00, over the approval threshold of USD 500.00" in confirm
    assert ":submit “Request approval”" in confirm
    requested = said(transcript, "alice: :submit", 1)
    assert "== Approval needed: order #1 ==" in requested and "[3] Approve  [4] Reject…" in requested
    assert "Waiting for approval" in requested and "gbk_" not in requested
    refused = said(transcript, "alice: :press Approve")
    assert "You placed this order, so someone else has to approve or reject it (four-eyes rule)." in refused
    approved = said(transcript, "carol: :press Approve")
    assert "✅ *Approved* by @carol" in approved and "Your order #1 was approved" in approved
    assert "`submitting` → `pending` · @carol" in approved
    completed = said(transcript, "carol: :time +1m")
    assert "*Completed* — Delivered to @alice by DM." in completed


def test_the_shipped_scripts_are_found_by_name() -> None:
    assert script_source("approvals") == script_source("approvals.gate") == str(APPROVALS)
    assert set(BUILT_IN) == {"tour", "tour.gate", "approvals", "approvals.gate"}
