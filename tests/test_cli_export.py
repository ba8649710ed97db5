"""``gatebot export``: CSV to standard output or a file; bad arguments are one line and exit 2."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from gatebot.cli import main


@pytest.fixture(autouse=True)
def _clean_env(_clean_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The shared clean environment (tests/conftest.py), with a store in the test's directory."""
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("GATEBOT_ENV", "development")
    assert main(["db", "upgrade"]) == 0


@pytest.mark.parametrize(("argv", "message"), [
    (["export", "ledger", "--since", "last week"], "gatebot: --since 'last week': use a date like 2026-11-24"),
    (["export", "orders", "--since", "7d", "--until", "soon"], "gatebot: --until 'soon': use a date like"),
    (["export", "orders", "--since", "2026-11-02", "--until", "2026-11-01"],
     "gatebot: --until must be after --since"),
    (["export", "deposits", "--since", "7d", "--currency", "dollars"],
     "gatebot: --currency 'dollars': use a 3-letter code such as USD"),
])
def test_bad_arguments_are_one_line_and_exit_2(argv: list[str], message: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(message), err


def test_export_writes_csv_to_stdout_or_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["export", "orders", "--since", "2026-11-01", "--until", "2026-12-01", "--currency", "usd"]) == 0
    header = next(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert header[:3] == ["number", "created_at", "submitted_at"] and "external_ref" in header
    out = tmp_path / "ledger.csv"
    assert main(["export", "ledger", "--since", "30d", "--out", str(out)]) == 0
    assert "wrote 0 row(s) to" in capsys.readouterr().err
    assert out.read_text(encoding="utf-8").startswith("day,period_start,period_end,currency,opening_balance")
