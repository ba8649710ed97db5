"""``gatebot demo --script FILE``: the demo session run from a file of commands, printed as a transcript.

What lives here
    :func:`read_script` (one command per line; blank lines skipped; ``#`` lines are comments, copied into
    the transcript as narration), :class:`Normaliser` (stable placeholders for what differs from run to
    run: idempotency keys, generated references, loopback ports) and :func:`run_script`, which starts the
    demo (:func:`~gatebot.demo.runner.running_demo`, scripted: a manual clock and no timers), echoes each
    command as ``alice@#gate-ops> /gate balance`` followed by everything that appeared on screen, and
    returns 0, or 1 when a demo command failed (a typo in the script, a button that is not there).

The transcript is deterministic: the same script prints the same text on every run and machine, so CI can
assert on it and the README can quote it. Must not import the scheduler library.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from gatebot.demo.render import Line

__all__ = ["BANNER", "Normaliser", "read_script", "run_script", "transcript_lines"]

BANNER = ("gatebot demo: Gate sandbox, SQLite store, the Slack app (HTTP), the scheduler and a Slack emulator, "
          "all in this process")

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"gbk_[0-9a-f]{32}"), "gbk_<key{n}>"),
    (re.compile(r"\bGB-(\d{8})-[0-9A-Z]{4}\b"), "GB-\\1-<ref{n}>"),
    (re.compile(r"http://127\.0\.0\.1:\d+"), "http://127.0.0.1:<port>"),
)


class Normaliser:
    """Replaces run-dependent values with numbered placeholders; the same value gets the same placeholder
    throughout one transcript (``gbk_<key1>`` stays ``gbk_<key1>``)."""

    def __init__(self) -> None:
        self._seen: dict[str, dict[str, int]] = {}

    def __call__(self, text: str) -> str:
        for pattern, template in _PATTERNS:
            table = self._seen.setdefault(pattern.pattern, {})

            def swap(match: re.Match[str], table: dict[str, int] = table, template: str = template) -> str:
                number = table.setdefault(match.group(0), len(table) + 1)
                return match.expand(template.replace("{n}", str(number)))

            text = pattern.sub(swap, text)
        return text


def read_script(text: str) -> list[str]:
    """The commands (and ``#`` comments) of a script, without blank lines."""
    return [line.rstrip() for line in text.splitlines() if line.strip()]


def transcript_lines(lines: Iterable[Line], normalise: Callable[[str], str] | None = None) -> list[str]:
    out = [line.text for line in lines]
    return [normalise(t) for t in out] if normalise else out


async def run_script(
    commands: Sequence[str],
    write: Callable[[str], None],
    *,
    db: Path | None = None,
    normalise: bool = True,
    settle_timeout: float = 30.0,
) -> int:
    """Run ``commands`` in a fresh scripted demo, writing the transcript line by line through ``write``.

    Returns 0 when every command worked, 1 when a demo command failed (the run goes on regardless).
    """
    from gatebot.demo.runner import running_demo
    from gatebot.demo.session import DemoSession

    fix = Normaliser() if normalise else None

    def emit(lines: list[Line]) -> None:
        for text in transcript_lines(lines, fix):
            write(text)

    failed = 0
    write(BANNER)
    async with running_demo(db=db, live=False) as runtime:
        session = DemoSession(runtime, emit, settle_timeout=settle_timeout)
        try:
            session.flush()  # whatever start-up posted
            previous_comment = False
            for command in commands:
                comment = command.lstrip().startswith("#")
                if not (comment and previous_comment):
                    write("")
                previous_comment = comment
                if comment:
                    write(command.strip())
                    continue
                write(session.prompt + command.strip())
                outcome = await session.execute(command)
                failed += not outcome.ok
                if outcome.quit:
                    break
        finally:
            session.close()
    write("")
    if failed:
        write(f"({failed} command{'s' if failed != 1 else ''} failed)")
    return 1 if failed else 0


def main_script(path: str, *, db: Path | None = None) -> int:
    """The CLI's ``--script FILE`` (``-`` reads standard input)."""
    import asyncio

    text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")

    def write(line: str) -> None:
        print(line, flush=True)

    return asyncio.run(run_script(read_script(text), write, db=db))
