"""``gatebot bulk`` on the embedded defaults (SQLite store + built-in sandbox), in an empty folder, on the
real clock: 4 rows at 100/s take a few hundredths of a second, ``--wait 1`` one second."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from gatebot.cli import main


@pytest.fixture(autouse=True)
def empty_folder(_clean_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("GATEBOT_ENV", "development")
    monkeypatch.setenv("GATEBOT_BULK_RATE", "100")
    monkeypatch.setenv("LOGNAME", "alice")
    return tmp_path


def test_a_file_is_placed_its_results_written_for_the_owner_only_and_the_batch_found(
        empty_folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (empty_folder / "june.csv").write_text("product;quantity;amount;external_ref;steam_login\n"
                                           "101;2;;INV-1;\nsteam-wallet;;10;INV-2;player_1\n102;;;INV-3;\n"
                                           "101;;;INV-4;\n")
    assert main(["bulk", "june.csv", "--yes", "--out", "june-results.csv", "--wait", "1"]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines()[:3] == ["Batch B1: 4 orders from june.csv",
                                    "       2 row(s): Steam Gift Card 20 USD (id 101)",
                                    "       1 row(s): Steam Wallet Top Up (id 456)"]
    assert "B1 running: placed 4/4" in out and "wrote the results of B1 to june-results.csv" in err
    results = empty_folder / "june-results.csv"
    assert stat.S_IMODE(results.stat().st_mode) == 0o600
    lines = results.read_text().splitlines()
    assert lines[0] == ("product,quantity,amount,external_ref,steam_login,order,gate_order_id,status,reason,"
                        "charged,currency,delivery")
    assert [line.split(",")[3] for line in lines[1:]] == ["INV-1", "INV-2", "INV-3", "INV-4"]

    assert main(["order", "B1"]) == 0
    assert capsys.readouterr().out.startswith("B1 running: placed 4/4")
    assert main(["order", "INV-2"]) == 0
    assert "external_ref   INV-2" in capsys.readouterr().out
    assert main(["bulk", "results", "B1", "--out", "again.csv", "--as", "cli:bob"]) == 1
    assert "Only the person who placed batch B1" in capsys.readouterr().err
    assert main(["bulk", "june.csv", "--yes"]) == 2  # the same file again: every reference is taken
    assert capsys.readouterr().err.count("is already used by order") == 4
