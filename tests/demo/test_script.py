"""``gatebot demo --script``: the shipped tour as a transcript, determinism, and the script helpers.

The tour test is the issue's scripted demo: buy a voucher and a top-up (fixing a validation error on the
way), look both up by external_ref, watch a low-balance alert fire, acknowledge it, post a deposit and see
the alert resolve — asserted on the printed transcript.
"""

from __future__ import annotations

import re

import pytest

from gatebot.demo import TOUR
from gatebot.demo.script import BANNER, Normaliser, read_script, run_script

PROMPT = re.compile(r"^(\w+)@(#[\w-]+)> (.*)$")


def chunks(transcript: list[str]) -> list[tuple[str, str]]:
    """``(command, what it printed)`` per command of a transcript (comments dropped)."""
    out: list[tuple[str, str]] = []
    for line in transcript:
        match = PROMPT.match(line)
        if match:
            out.append((f"{match.group(1)}: {match.group(3)}", ""))
        elif out and not (line == "#" or line.startswith("# ")):
            command, text = out[-1]
            out[-1] = (command, text + line + "\n")
    return out


def screens(text: str) -> list[str]:
    """What one command printed, cut into screen items (each starts with an unindented line)."""
    items: list[str] = []
    for line in text.splitlines():
        if (line and not line.startswith((" ", "│", "└"))) or not items:
            items.append(line + "\n")
        else:
            items[-1] += line + "\n"
    return items


@pytest.fixture(scope="module")
def tour() -> tuple[int, list[str]]:
    import asyncio

    lines: list[str] = []
    code = asyncio.run(run_script(read_script(TOUR.read_text(encoding="utf-8")), lines.append))
    return code, lines


def output(tour: tuple[int, list[str]], command: str, nth: int = 0) -> str:
    found = [text for cmd, text in chunks(tour[1]) if cmd == command]
    assert len(found) > nth, f"{command!r} not in the transcript"
    return found[nth]


def test_the_tour_runs_cleanly(tour: tuple[int, list[str]]) -> None:
    code, lines = tour
    assert code == 0, "\n".join(lines)
    assert lines[0] == BANNER
    assert "alice@#gate-ops> /gate help" in lines
    assert not any(line.startswith("✗") for line in lines)
    assert not any("failed" in line for line in lines[-2:])


def test_tour_voucher_is_delivered_by_dm_to_the_requester_only(tour: tuple[int, list[str]]) -> None:
    placed = output(tour, "alice: :submit", 1)
    assert "*Order #1* · Steam Gift Card 20 USD" in placed and "*External ref*: `INV-1001`" in placed
    completed = output(tour, "alice: :time +1m")
    items = screens(completed)
    dms = [item for item in items if item.startswith("[DM to ")]
    assert len(dms) == 1 and dms[0].startswith("[DM to @alice] · gatebot")
    code = re.search(r"\*Code:\* `([A-Z0-9-]+)`", dms[0])
    assert code is not None
    channel = [item for item in items if item.startswith(("#gate-ops", "✎ edited #gate-ops"))]
    assert any("Delivered to @alice by DM." in item for item in channel)
    # Anywhere else the code appears, it is alice's own ephemeral lookup, never a channel message.
    showing = [(cmd, item) for cmd, text in chunks(tour[1]) for item in screens(text) if code.group(1) in item]
    assert showing, "the code should be in the DM"
    for cmd, item in showing:
        assert cmd.startswith("alice:") and item.startswith(("[DM to @alice]", "[only you]")), item


def test_tour_topup_shows_the_inline_error_then_goes_through(tour: tuple[int, list[str]]) -> None:
    refused = output(tour, "alice: :submit", 2)
    assert "the app found 1 problem in the form" in refused
    lines = refused.splitlines()
    login = next(i for i, line in enumerate(lines) if line.startswith("│ Steam login *: bad login!"))
    assert lines[login + 2].startswith("│   ⚠ Steam login")
    confirm = output(tour, "alice: :submit", 3)
    assert "┌ Confirm order" in confirm and "Steam login: `player_one`" in confirm
    placed = output(tour, "alice: :submit", 4)
    assert "*Order #2* · Steam Wallet Top Up" in placed and "`INV-1002`" in placed
    done = output(tour, "alice: :time +1m", 1)
    assert "*Completed* — Delivered to @alice by DM." in done and "[DM to @alice]" in done


def test_tour_looks_both_orders_up_by_external_ref(tour: tuple[int, list[str]]) -> None:
    first = output(tour, "alice: /gate order INV-1001")
    assert "== Order #1 · Completed ==" in first and "*External ref*: `INV-1001`" in first
    second = output(tour, "alice: /gate order INV-1002")
    assert "== Order #2 · Completed ==" in second and "`LC-" in second
    refused = output(tour, "bob: /gate order INV-1001")
    assert refused.startswith("[only you]") and "🔒 Sorry" in refused and "Order #1 ·" not in refused


def test_tour_alert_fires_is_acknowledged_and_clears_after_a_deposit(tour: tuple[int, list[str]]) -> None:
    fired = output(tour, "bob: :time +10m")
    assert "#gate-ops · gatebot" in fired and "*USD balance critically low*" in fired
    assert "] Acknowledge" in fired
    acked = output(tour, "bob: :press Acknowledge")
    assert acked.startswith("✎ edited #gate-ops message")
    assert "acknowledged by @bob" in acked.lower()
    assert "] Acknowledge" not in acked  # the button is gone once acknowledged
    deposit = output(tour, "carol: :deposit USD 2000")
    assert "deposit #7 of USD 2000.00 posted" in deposit
    cleared = output(tour, "carol: :time +10m")
    assert "✎ edited #gate-ops message" in cleared and "Resolved" in cleared
    assert "#finance · gatebot" in cleared and "USD 2,000.00 deposit posted" in cleared


def test_a_transcript_is_the_same_on_every_run() -> None:
    import asyncio

    script = ["/gate buy steam gift card 20", ":submit", ":submit", ":time +1m", "/gate order #1"]

    def run() -> list[str]:
        lines: list[str] = []
        assert asyncio.run(run_script(script, lines.append)) == 0
        return lines

    first, second = run(), run()
    assert first == second
    assert any("*Code:*" in line for line in first)


def test_a_failed_command_makes_the_script_fail() -> None:
    import asyncio

    lines: list[str] = []
    assert asyncio.run(run_script([":press 42", "/gate help"], lines.append)) == 1
    assert lines[-1] == "(1 command failed)"
    assert "alice@#gate-ops> /gate help" in lines  # the run went on


def test_the_normaliser_gives_stable_placeholders() -> None:
    fix = Normaliser()
    key_a, key_b = "gbk_" + "a" * 32, "gbk_" + "b" * 32
    assert fix(f"{key_a} {key_b} {key_a}") == "gbk_<key1> gbk_<key2> gbk_<key1>"
    assert fix("ref GB-20261124-7K3Q and GB-20261124-7K3Q") == "ref GB-20261124-<ref1> and GB-20261124-<ref1>"
    assert fix("see http://127.0.0.1:41234/app") == "see http://127.0.0.1:<port>/app"
    assert fix("INV-1001 stays") == "INV-1001 stays"


def test_read_script_keeps_commands_and_comments() -> None:
    assert read_script("# hi\n\n/gate balance  \n   \n:time +1h\n") == ["# hi", "/gate balance", ":time +1h"]
