"""The command line: configuration errors, check, the ops commands over a real sandbox process."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gatebot.cli import main
from gatebot.config import SANDBOX_AGENT_ID, SANDBOX_API_KEY

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _clean_env(_clean_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The shared clean environment (tests/conftest.py), with a store in the test's directory."""
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("GATEBOT_ENV", "development")


def test_bad_setting_is_one_line_naming_the_variable_and_exit_2() -> None:
    env = {**os.environ, "GATE_AGENT_ID": "not-a-uuid"}
    done = subprocess.run([sys.executable, "-m", "gatebot", "check"], env=env, capture_output=True, text=True,
                          cwd=ROOT, check=False, timeout=60)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines[0].startswith("gatebot: GATE_AGENT_ID: expected a UUID")
    assert "not-a-uuid" in lines[0]


@pytest.mark.postgres
def test_postgresql_schema_must_be_upgraded_first(postgres_schema_url: str, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    # An embedded SQLite store migrates itself (tests/test_cli_embedded.py); a shared PostgreSQL does not.
    monkeypatch.setenv("DATABASE_URL", postgres_schema_url)
    assert main(["orders"]) == 2
    assert "run `gatebot db upgrade`" in capsys.readouterr().err
    assert main(["db", "upgrade"]) == 0
    assert "database at 0006" in capsys.readouterr().out
    assert main(["db", "current"]) == 0
    assert main(["orders"]) == 0
    assert capsys.readouterr().out.strip().endswith("no orders")


def test_check_masks_secrets_and_probes_the_builtin_sandbox(monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-very-secret-token")
    main(["db", "upgrade"])
    assert main(["check"]) == 0
    out = capsys.readouterr().out
    assert "xoxb-very-secret-token" not in out
    assert "SLACK_BOT_TOKEN" in out and "/health   ok" in out and "USD 5,000.00" in out
    assert "All checks passed." in out


def test_check_reports_an_unreachable_gate(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("GATE_API_URL", "http://127.0.0.1:9/")
    monkeypatch.setenv("GATE_API_KEY", "k" * 20)
    monkeypatch.setenv("GATE_AGENT_ID", str(SANDBOX_AGENT_ID))
    monkeypatch.setenv("GATE_CONNECT_TIMEOUT", "0.5")
    main(["db", "upgrade"])
    assert main(["check"]) == 1
    out = capsys.readouterr().out
    assert "/health   FAILED" in out and "/balance  FAILED" in out and "k" * 20 not in out


def test_ops_commands_against_a_sandbox_process(sandbox_url: str, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    import httpx

    # The documented curl: the raw key authenticates, a wrong key is 401 with the error body.
    ok = httpx.get(f"{sandbox_url}/agent/{SANDBOX_AGENT_ID}/balance", headers={"Authorization": SANDBOX_API_KEY})
    assert ok.status_code == 200 and ok.json()["items"][0]["currency_code"]
    bad = httpx.get(f"{sandbox_url}/agent/{SANDBOX_AGENT_ID}/balance", headers={"Authorization": "wrong"})
    assert bad.status_code == 401 and bad.json()["error"]["code"] == "unauthorized"

    monkeypatch.setenv("GATE_API_URL", sandbox_url)
    monkeypatch.setenv("GATE_API_KEY", SANDBOX_API_KEY)
    monkeypatch.setenv("GATE_AGENT_ID", str(SANDBOX_AGENT_ID))
    monkeypatch.setenv("GATEBOT_LOW_BALANCE", "USD:6000/100")
    assert main(["db", "upgrade"]) == 0
    capsys.readouterr()

    assert main(["balance"]) == 0
    assert "USD 5,000.00  [LOW: warning 6000.00, critical 100.00]" in capsys.readouterr().out

    assert main(["products", "steam"]) == 0
    out = capsys.readouterr().out
    assert "Steam Wallet Top Up (steam-wallet)" in out and "Steam Gift Card 20 USD" in out

    assert main(["buy", "--product", "steam-wallet", "--amount", "4", "--yes"]) == 2
    err = capsys.readouterr().err
    assert "amount: The amount must be between USD 5.00 and USD 100.00." in err
    assert "--account steam_login: Steam login is required" in err

    assert main(["buy", "--product", "steam-wallet", "--amount", "10", "--account", "steam_login=player123",
                 "--ref", "INV-1001", "--yes"]) == 0
    out = capsys.readouterr().out
    assert "Steam Wallet Top Up: costs USD 12.50, leaves USD 4,987.50" in out
    assert "Order #1  PENDING" in out and "INV-1001" in out and "player123" not in out

    assert main(["order", "INV-1001"]) == 0
    out = capsys.readouterr().out
    assert "external_ref   INV-1001" in out
    gate_id = next(line.split()[-1] for line in out.splitlines() if "Gate order id" in line)
    assert main(["order", "INV-404"]) == 1
    assert "no order matches 'INV-404'" in capsys.readouterr().err
    # What people type: another case, a receipt's first 8 characters, a stray NUL.
    for typed in ("inv-1001", gate_id[:8], "INV-1001\x00"):
        assert main(["order", typed]) == 0, typed
        assert "external_ref   INV-1001" in capsys.readouterr().out
    assert main(["order", "INV-1001" * 20]) == 2
    assert capsys.readouterr().err.strip() == "gatebot: the order reference is too long (at most 100 characters)."
    assert main(["products", "steam " * 20_000]) == 2
    assert "the search is too long (at most 100 characters)." in capsys.readouterr().err

    assert main(["orders", "--status", "pending,completed", "--since", "1d"]) == 0
    assert "INV-1001" in capsys.readouterr().out
    assert main(["orders", "--status", "lost"]) == 2
    assert "unknown status lost" in capsys.readouterr().err
    assert main(["orders", "--since", "yesterday"]) == 2
    assert "--since 'yesterday'" in capsys.readouterr().err

    assert main(["buy", "--product", "101", "--account", "oops"]) == 2
    assert "--account: line 1 has no '='" in capsys.readouterr().err
    assert main(["buy", "--product", "101"]) == 2  # not a terminal and no --yes: nothing is sent
    assert "add --yes" in capsys.readouterr().err


def test_balance_says_when_gatebot_read_it(capsys: pytest.CaptureFixture[str]) -> None:
    """Not Gate's ``updated_at`` (the last deposit, often weeks ago, which reads as stale): the read time."""
    import time_machine

    assert main(["db", "upgrade"]) == 0
    capsys.readouterr()
    with time_machine.travel(datetime(2026, 11, 24, 9, 30, tzinfo=UTC), tick=False):
        assert main(["balance"]) == 0
    out = capsys.readouterr().out
    assert "USD 5,000.00" in out
    assert out.splitlines()[-1] == "read from Gate at 2026-11-24 09:30 UTC"
    assert "as of" not in out
