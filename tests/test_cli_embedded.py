"""The command line on the embedded defaults (SQLite store + built-in sandbox), in an empty folder.

Each ``main()`` call is one command, as from a shell: a new store connection and a new in-process
sandbox, which must carry on the Gate account the previous command left (``gatebot.sandbox.json``).
Time is the patched system clock, moved 3 s before each command (sandbox orders complete after 5 s).
"""

from __future__ import annotations

import functools
import os
import shlex
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gatebot import runtime
from gatebot.cli import main
from gatebot.gate import GateClient, RetryPolicy
from gatebot.store.db import current_revision, head_revision, make_engine

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


@pytest.fixture(autouse=True)
def empty_folder(_clean_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The shared clean environment (tests/conftest.py: no stray variables, in ``tmp_path``), plus:"""
    monkeypatch.delenv("GATEBOT_ENCRYPTION_KEY", raising=False)  # the README's defaults: production, no key
    monkeypatch.setenv("LOGNAME", "alice")  # getpass.getuser(): the requester cli:alice
    return tmp_path



def readme_transcript() -> list[tuple[str, list[str]]]:
    """``(command, shown output lines)`` of the first console block under "The command line"."""
    section = README.read_text(encoding="utf-8").split("## The command line", 1)[1]
    block = section.split("```console\n", 1)[1].split("```", 1)[0]
    steps: list[tuple[str, list[str]]] = []
    for line in block.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        else:
            steps[-1][1].append(line)
    return steps


def test_the_readme_transcript_replays_in_an_empty_folder(
        tick: Callable[[float], None], capsys: pytest.CaptureFixture[str], empty_folder: Path) -> None:
    steps = readme_transcript()
    assert [shlex.split(c, comments=True)[:2] for c, _ in steps][:4] == [
        ["gatebot", "buy"], ["gatebot", "buy"], ["gatebot", "order"], ["gatebot", "recover"]]
    for command, shown in steps:
        tick(3)
        argv = shlex.split(command, comments=True)
        code = main(argv[1:])
        out, err = capsys.readouterr()
        assert "Traceback" not in out + err
        refused = bool(shown) and shown[0].startswith("gatebot: ")
        assert code == (2 if refused else 0), (command, out, err)
        actual = (err if refused else out).splitlines()
        for line in shown:
            if "gbk_" not in line:  # idempotency keys are random
                assert line in actual, f"{command}: README shows {line!r}; got:\n" + "\n".join(actual)
    assert sorted(p.name for p in empty_folder.iterdir() if not p.name.endswith(".lock")) == [
        "gatebot.db", "gatebot.sandbox.json"]


def test_the_first_command_in_an_empty_folder_needs_no_manual_step(
        capsys: pytest.CaptureFixture[str], empty_folder: Path) -> None:
    assert main(["balance"]) == 0
    assert "USD 5,000.00" in capsys.readouterr().out
    engine = make_engine(f"sqlite:///{empty_folder / 'gatebot.db'}")
    try:
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()
    assert main(["db", "upgrade"]) == 0  # still there, and a no-op
    assert "already up to date" in capsys.readouterr().out


BUY = ["buy", "--product", "steam-gift-card-20-usd", "--yes"]


def test_a_reused_gate_order_id_is_set_aside_not_a_crash(
        tick: Callable[[float], None], capsys: pytest.CaptureFixture[str], empty_folder: Path) -> None:
    assert main([*BUY, "--ref", "A"]) == 0
    (empty_folder / "gatebot.sandbox.json").unlink()  # a fresh Gate account hands out the same ids again
    tick(3)
    assert main([*BUY, "--ref", "B"]) == 1
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert "Order #2  NEEDS_ATTENTION" in out and "already holds" in out
    tick(10)
    assert main(["recover"]) == 0
    out = capsys.readouterr().out
    assert "tracked 1 pending (1 changed)" in out
    assert "order #2 (B) needs attention: Gate answered with order" in out
    assert main(["order", "A"]) == 0
    assert "Order #1  COMPLETED" in capsys.readouterr().out


def test_an_unsettled_outcome_exits_3_and_recover_settles_it(
        tick: Callable[[float], None], capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    build = runtime.gate_transport

    def failing_creates(*args: Any, **kwargs: Any) -> Any:
        transport = build(*args, **kwargs)
        transport.app.state.sim.faults.create_error_rate = 1.0  # type: ignore[union-attr]
        return transport

    with monkeypatch.context() as m:
        m.setattr(runtime, "gate_transport", failing_creates)
        m.setattr(runtime, "GateClient", functools.partial(GateClient, retry=RetryPolicy.never()))
        assert main([*BUY, "--ref", "U-1"]) == 3
    out, err = capsys.readouterr()
    assert "Order #1  UNKNOWN" in out
    verdict = err.strip().splitlines()[-1]  # after the client's own warnings
    assert verdict == ("gatebot: order #1 is saved but not settled (unknown): do not place it again; "
                           "`gatebot recover` settles it with the same key (no double charge)")
    tick(10)
    assert main(["recover"]) == 0
    assert "re-drove 1 open order(s)" in capsys.readouterr().out
    tick(10)
    assert main(["recover"]) == 0
    assert main(["order", "U-1"]) == 0
    assert "Order #1  COMPLETED" in capsys.readouterr().out


def test_buy_help_lists_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["buy", "--help"])
    out = capsys.readouterr().out
    assert "exit codes:" in out and "  3  the order is saved but its outcome is not settled yet" in out


@pytest.fixture
def gatebot_env(empty_folder: Path) -> Iterator[dict[str, str]]:
    yield {**os.environ, "PYTHONPATH": str(ROOT)}


@pytest.mark.slow
def test_parallel_buys_of_one_ref_one_wins_the_rest_are_told_cleanly(
        gatebot_env: dict[str, str], empty_folder: Path) -> None:
    cmd = [sys.executable, "-m", "gatebot", *BUY, "--ref", "SAME"]
    procs = [subprocess.Popen(cmd, env=gatebot_env, cwd=empty_folder, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(6)]
    results = [(p.wait(120), *p.communicate()) for p in procs]
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 2, 2, 2, 2, 2], results
    for code, out, err in results:
        assert "Traceback" not in out + err and "parameters" not in err
        if code == 2:
            assert err.startswith("gatebot: external_ref: SAME is already used by order #1"), err


@pytest.mark.parametrize(("url", "expected"), [
    ("sqlite:///gatebot.db", Path("gatebot.sandbox.json")),
    ("sqlite:////srv/data/store.db", Path("/srv/data/store.sandbox.json")),
    ("sqlite:///:memory:", None),
    ("postgresql://gatebot@db/gatebot", Path("gatebot.sandbox.json")),
])
def test_where_the_builtin_sandbox_keeps_its_account(url: str, expected: Path | None) -> None:
    from gatebot.config import Settings

    assert runtime.sandbox_state_path(Settings(database_url=url)) == expected


def test_check_in_an_empty_folder_passes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check"]) == 0
    out = capsys.readouterr().out
    assert "schema    up to date" in out and "All checks passed." in out
