"""``gatebot approvals`` / ``approve`` / ``reject`` (issue 13) on the embedded defaults, as from a shell:
each ``main()`` call is one command over the same SQLite store and sandbox account, with the system clock
patched (an approval request expires after GATEBOT_APPROVAL_TTL)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from gatebot.cli import main

BUY = ["buy", "--product", "steam-gift-card-20-usd", "--quantity", "2", "--yes"]  # USD 40


@pytest.fixture(autouse=True)
def empty_folder(_clean_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The shared clean environment (tests/conftest.py: no stray variables, in ``tmp_path``), plus:"""
    monkeypatch.setenv("GATEBOT_ENV", "development")
    monkeypatch.setenv("LOGNAME", "alice")  # the requester cli:alice
    monkeypatch.setenv("GATEBOT_APPROVAL_OVER", "USD:30")
    monkeypatch.setenv("GATEBOT_FINANCE", "U777,UALICE")
    monkeypatch.setenv("GATEBOT_CLI_APPROVERS", "cli:bob,cli:alice")
    monkeypatch.setenv("GATEBOT_APPROVAL_TTL", "2h")
    return tmp_path



def test_request_list_refuse_self_approval_then_approve(tick: Callable[[float], None],
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert main(BUY) == 3
    out, err = capsys.readouterr()
    assert "Needs approval (it costs USD 40.00, over the approval threshold of USD 30.00)" in out
    assert "Order #1  AWAITING_APPROVAL" in out
    assert "approval       waiting; the request expires 2026-11-24 11:00:00 UTC" in out
    assert "an approver sends it with `gatebot approve 1 --as <id>`" in err

    tick(600)
    assert main(["approvals"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split() == ["1", "cli:alice", "USD", "40.00", "10m", "2026-11-24", "11:00",
                                "Steam", "Gift", "Card", "20", "USD"]

    assert main(["approve", "#1", "--as", "cli:alice"]) == 1  # listed as a CLI approver, but the requester
    assert capsys.readouterr().err.strip() == ("gatebot: You placed this order, so someone else has to approve "
                                               "or reject it (four-eyes rule).")
    assert main(["approve", "1", "--as", "U555"]) == 1
    assert "Only admin or finance may approve or reject orders." in capsys.readouterr().err

    assert main(["approve", "1", "--as", "U777"]) == 0
    out = capsys.readouterr().out
    assert "Order #1  PENDING" in out
    assert "approval       approved by U777 at 2026-11-24 09:10:00 UTC" in out
    assert main(["approve", "1", "--as", "cli:bob"]) == 1
    assert "was already approved by U777" in capsys.readouterr().err
    assert main(["approvals"]) == 0
    assert capsys.readouterr().out.strip() == "no approval requests are waiting"


def test_reject_and_expiry_send_nothing(tick: Callable[[float], None], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(BUY) == 3
    assert main(BUY) == 3
    capsys.readouterr()
    assert main(["reject", "1", "--reason", "not this month", "--as", "cli:bob"]) == 0
    out = capsys.readouterr().out
    assert "Order #1  REJECTED" in out and "approval       rejected by cli:bob at" in out
    assert "— not this month" in out
    tick(2 * 3600)
    assert main(["approve", "2", "--as", "U777"]) == 1
    assert "has expired" in capsys.readouterr().err
    assert main(["order", "2"]) == 0
    assert "Gate order id  -" in capsys.readouterr().out
