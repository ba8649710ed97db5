"""A bulk order in the demo: ``:set csv file PATH`` picks a file from this machine for the modal's
``file_input``, as the Slack client uploads it; a path that cannot be read or a type the input refuses is
one line, not a traceback."""

from __future__ import annotations

import asyncio
from pathlib import Path

from gatebot.demo.script import read_script, run_script

from .test_script import chunks


def test_a_csv_picked_from_disk_is_checked_confirmed_and_placed(tmp_path: Path) -> None:
    campaign = tmp_path / "june.csv"
    campaign.write_text("product,quantity,amount,external_ref,steam_login\n101,2,,JUNE-1,\n"
                        "steam-wallet,,10,JUNE-2,player_1\n", encoding="utf-8")
    (tmp_path / "june.xlsx").write_bytes(b"PK\x03\x04")
    script = "\n".join(["/gate bulk", f":set csv file {tmp_path / 'nope.csv'}",
                        f":set csv file {tmp_path / 'june.xlsx'}", f":set csv file {campaign}", ":submit", ":submit",
                        ":time +1m"])
    lines: list[str] = []
    code = asyncio.run(run_script(read_script(script), lines.append))
    said = dict(chunks(lines))
    assert code == 1  # the two bad picks
    assert "cannot read" in said[f"alice: :set csv file {tmp_path / 'nope.csv'}"]
    assert "“CSV file” does not take .xlsx files" in said[f"alice: :set csv file {tmp_path / 'june.xlsx'}"]
    assert "CSV file: june.csv" in said[f"alice: :set csv file {campaign}"]
    steps = [text for cmd, text in chunks(lines) if cmd == "alice: :submit"]
    assert "*Batch B1* from `june.csv` is valid" in steps[0] and "USD 52.50" in steps[0]
    assert "Batch B1 is confirmed: 2 orders" in steps[1]
    finished = said["alice: :time +1m"]
    assert "*Batch B1* · finished" in finished and "*Completed*: 2" in finished
    assert "The results of batch B1" in finished
    assert "Traceback" not in "\n".join(lines)
