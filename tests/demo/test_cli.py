"""The demo as a user starts it: a fresh process, no configuration at all, in an empty directory.

Real subprocesses (marked ``slow``, still in the default run): ``--script`` with the shipped tour, commands
piped on standard input (not a terminal: read as a script), and the interactive UI under a pseudo-terminal.
"""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gatebot.demo import TOUR

pytestmark = pytest.mark.slow

DEMO = [sys.executable, "-m", "gatebot.demo"]


def clean_env(home: Path) -> dict[str, str]:
    """The current environment without any gatebot, Gate or Slack variable (a fresh machine)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GATE_", "SLACK_", "GATEBOT_", "DATABASE_"))}
    env["HOME"] = str(home)
    env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.mark.parametrize("entry", ["python -m gatebot.demo", "gatebot demo"])
def test_a_scripted_demo_needs_no_configuration(tmp_path: Path, entry: str) -> None:
    command = DEMO if entry.startswith("python") else [sys.executable, "-m", "gatebot", "demo"]
    result = subprocess.run([*command, "--script", str(TOUR)], cwd=tmp_path, env=clean_env(tmp_path),
                            capture_output=True, text=True, timeout=180, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "alice@#gate-ops> /gate buy steam wallet" in out
    assert "*Completed* — Delivered to @alice by DM." in out
    assert "[DM to @alice] · gatebot" in out
    assert "⚠ Steam login" in out
    assert "Acknowledged by @bob" in out and "Resolved" in out
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []  # nothing left behind: the store was a temporary file


def test_commands_on_standard_input_run_as_a_script(tmp_path: Path) -> None:
    commands = "/gate balance\n:user dave\n/gate balance\n"
    result = subprocess.run(DEMO, input=commands, cwd=tmp_path, env=clean_env(tmp_path),
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "alice@#gate-ops> /gate balance" in result.stdout and "== Gate balance ==" in result.stdout
    assert "dave@#gate-ops> /gate balance" in result.stdout and "🔒 Sorry" in result.stdout


def test_a_missing_script_is_a_clear_error(tmp_path: Path) -> None:
    result = subprocess.run([*DEMO, "--script", "nope.gate"], cwd=tmp_path, env=clean_env(tmp_path),
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert "nope.gate: no such file" in result.stderr


_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")


@pytest.mark.skipif(not sys.platform.startswith(("linux", "darwin")), reason="needs a POSIX pseudo-terminal")
def test_the_interactive_demo_in_a_terminal(tmp_path: Path) -> None:
    import pty

    pid, fd = pty.fork()
    if pid == 0:  # the child: the demo, attached to the pseudo-terminal
        env = clean_env(tmp_path) | {"TERM": "xterm", "COLUMNS": "160", "LINES": "50"}
        os.chdir(tmp_path)
        os.execvpe(DEMO[0], DEMO, env)  # noqa: S606 - the demo, with an argument list, no shell
    seen = ""

    def read_until(pattern: str, timeout: float = 60.0) -> str:  # a budget, not a speed assertion
        nonlocal seen
        deadline = time.monotonic() + timeout
        while not re.search(pattern, _ANSI.sub("", seen)):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"{pattern!r} never appeared; the screen said:\n{_ANSI.sub('', seen)[-3000:]}")
            ready, _, _ = select.select([fd], [], [], min(remaining, 0.5))
            if ready:
                try:
                    seen += os.read(fd, 65536).decode(errors="replace")
                except OSError:  # the child closed the terminal
                    break
        return _ANSI.sub("", seen)

    try:
        read_until(r"alice@#gate-ops>")
        os.write(fd, b"/gate balance\r")
        screen = read_until(r"== Gate balance ==[\s\S]*USD 5,000\.00")
        assert "[only you] #gate-ops" in screen
        os.write(fd, b":quit\r")
        read_until(r"demo stopped")
    finally:
        status = _reap(pid)
        os.close(fd)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def _reap(pid: int, grace: float = 15.0) -> int:
    """The child's exit status; a child still running after ``grace`` seconds is killed (a failed test
    must not leave a demo waiting for input)."""
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)
    return os.waitpid(pid, 0)[1]
