"""``gatebot demo``: the whole bot on one machine, with a terminal standing in for Slack.

One asyncio process runs the Gate sandbox, a SQLite store, the real Slack app over HTTP, the scheduler and
a local Slack emulator (:mod:`gatebot.demo.runner`); a demo user types ``/gate ...`` and ``:commands``
(:mod:`gatebot.demo.session`) and sees Slack's messages, ephemerals, DMs, threads, modals and App Home
rendered as text (:mod:`gatebot.demo.render`, :mod:`gatebot.demo.form`). Interactive with colour and
completion (:mod:`gatebot.demo.tui`), or scripted (:mod:`gatebot.demo.script`, ``--script FILE``) for CI
and the README. ``gatebot/demo/scripts/tour.gate`` is the sample session.

Entry points for the CLI: :func:`add_arguments` (the ``demo`` subcommand's options), :func:`run_demo`,
and :func:`main` (``python -m gatebot.demo``). The demo needs no configuration and ignores the
environment's ``GATE_*``/``SLACK_*``/``GATEBOT_*`` variables. Nothing happens at import time.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["APPROVALS", "BUILT_IN", "TOUR", "add_arguments", "database_path", "main", "run_demo", "script_source"]

#: The sample session shipped with the package.
TOUR = Path(__file__).with_name("scripts") / "tour.gate"
#: The four-eyes approvals session: a request, a refused self-approval, an approval by finance.
APPROVALS = TOUR.with_name("approvals.gate")
#: The shipped scripts by name (``--script tour``, ``--script approvals.gate``...).
BUILT_IN = {name: path for path in (TOUR, APPROVALS) for name in (path.stem, path.name)}


def script_source(text: str) -> str:
    """``type=`` of ``--script``: ``-`` (standard input), a readable file, or a shipped script by name
    (``tour`` or ``tour.gate``, ``approvals`` or ``approvals.gate``, as their first lines say, unless such
    a file is here)."""
    path = Path(text)
    if text == "-" or path.is_file():
        return text
    if text in BUILT_IN:
        return str(BUILT_IN[text])
    if path.exists():
        raise argparse.ArgumentTypeError(f"{text}: not a file; give a script file, '-' for standard input, "
                                         "or 'tour' for the built-in tour")
    raise argparse.ArgumentTypeError(f"{text}: no such file; give a script file, '-' for standard input, "
                                     "or 'tour' for the built-in tour")


def database_path(text: str) -> Path:
    """``type=`` of ``--db``: a file path whose directory exists."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"--db {text}: is a directory; give a file path such as demo.db")
    if not path.parent.is_dir():
        raise argparse.ArgumentTypeError(f"--db {text}: no directory {path.parent}; create it first or give "
                                         "another path")
    return path


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options of ``gatebot demo``."""
    parser.add_argument("--script", metavar="FILE", type=script_source,
                        help="run the commands in FILE (one per line, # comments; '-' reads stdin; 'tour' and "
                             "'approvals' are the built-in scripts) and print the transcript instead of starting "
                             "the terminal UI")
    parser.add_argument("--db", metavar="PATH", type=database_path,
                        help="keep the demo's SQLite database in PATH (default: a temporary file)")
    return parser


def _configure_logging(*, scripted: bool) -> None:
    """Warnings to stderr, without the noise a demo makes on purpose: the Gate client's retries while a
    fault is on (and, in a transcript, which prints them itself, the jobs' failures)."""
    from gatebot.logs import configure_logging

    quiet = ["gatebot.gate.client", "uvicorn.error"] + (["gatebot.jobs"] if scripted else [])
    configure_logging(level=logging.WARNING, prefix="gatebot demo: ", quiet=dict.fromkeys(quiet, logging.ERROR))


def run_demo(*, script: str | Path | None = None, db: Path | None = None) -> int:
    """Run the demo: the terminal UI, or ``script`` (a path, ``-`` for stdin, or ``tour``). Exit code:
    0, or 1 when a scripted command failed. Standard input that is not a terminal is read as a script."""
    from gatebot.demo.script import main_script

    scripted = script is not None or not sys.stdin.isatty()
    _configure_logging(scripted=scripted)
    if script is not None:
        path = str(BUILT_IN.get(str(script), script))
        return main_script(path, db=db)
    if scripted:
        return main_script("-", db=db)
    from gatebot.demo.tui import run_tui

    return run_tui(db=db)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m gatebot.demo [--script FILE] [--db PATH]``."""
    parser = add_arguments(argparse.ArgumentParser(
        prog="gatebot demo", description="The whole bot on this machine: type /gate commands as a demo user."))
    args = parser.parse_args(argv)
    try:
        return run_demo(script=args.script, db=args.db)
    except FileNotFoundError as exc:
        print(f"gatebot demo: {exc.filename}: no such file", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
