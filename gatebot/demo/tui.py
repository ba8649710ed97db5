"""The interactive demo: a prompt_toolkit prompt (history, completion) over rich-coloured output.

What lives here
    :func:`run_tui` starts the live demo (:func:`~gatebot.demo.runner.running_demo` with ``live=True``:
    real time plus ``:time`` jumps, the real scheduler running its jobs on short intervals) and reads
    commands at a ``alice@#gate-ops>`` prompt. Output is printed above the prompt through
    ``patch_stdout``, so what the scheduler posts (alerts, deposits, order updates) appears as it happens,
    in its channel, while you type. Warnings logged by the app are shown dimmed instead of garbling the
    screen. Ctrl-C clears the line, Ctrl-D (or ``:quit``) leaves.

    :func:`rich_line` turns a :class:`~gatebot.demo.render.Line` into coloured text: numbered buttons,
    ``*bold*``, ``code`` and inline errors stand out.

:func:`gatebot.demo.run_demo` only comes here when standard input is a terminal; otherwise the commands
are read as a script. Must not import the scheduler library.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.text import Text

from gatebot.demo.render import Line
from gatebot.demo.session import COMMANDS, FAULTS, DemoSession

__all__ = ["STYLES", "completion_words", "rich_line", "run_tui"]

#: Colours per line style.
STYLES: dict[str, str] = {
    "text": "", "header": "bold", "meta": "bold cyan", "context": "dim", "actions": "", "form": "",
    "error": "bold red", "ok": "green", "notice": "yellow", "dim": "dim", "echo": "bold",
}  # fmt: skip
_HIGHLIGHTS = (
    (r"\[\d+\][^\[\]]*?(?=\s{2}\[|\s*$)", "bold magenta"),
    (r"\*[^*\n]+\*", "bold"),
    (r"`[^`\n]+`", "cyan"),
    (r"⚠ .*$", "bold red"),
)
GATE_SUBCOMMANDS = ("help", "balance", "order ", "orders", "orders pending", "orders failed", "orders mine",
                    "buy", "buy steam", "products", "products steam", "deposits", "health")


def rich_line(line: Line) -> Text:
    """``line`` as rich text in its style, with buttons, bold, code and errors highlighted."""
    text = Text(line.text, style=STYLES.get(line.style, ""))
    for pattern, style in _HIGHLIGHTS:
        text.highlight_regex(pattern, style)
    return text


def completion_words(session: DemoSession) -> list[str]:
    """Whole command lines the prompt completes (matched from the start of the line)."""
    words = [f"/gate {sub}" for sub in GATE_SUBCOMMANDS]
    words += list(COMMANDS)
    words += [f":user {p.name}" for p in session.rt.people]
    words += [f":channel #{c.name}" for c in session.rt.workspace.channels.values() if not c.is_im]
    words += [f":fault {f}" for f in FAULTS] + [":fault latency 5", ":fault errors 0.3"]
    words += [":time +30s", ":time +5m", ":time +1h", ":time +1d", ":deposit USD 500", ":balance USD 20",
              ":press Acknowledge", ":set amount ", ":set external reference "]
    return words


class _ScreenLog(logging.Handler):
    """Log records (warnings and up) as dim lines on the demo screen."""

    def __init__(self, console: Console) -> None:
        super().__init__(level=logging.WARNING)
        self.console = console

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.console.print(Text(f"  log {record.levelname.lower()}: {record.name}: {record.getMessage()}",
                                    style="dim"))
        except Exception:  # a log line must never break the demo
            self.handleError(record)


@contextmanager
def _logging_to(console: Console) -> Iterator[None]:
    from gatebot.logs import configure_logging

    root = logging.getLogger()
    saved, level = list(root.handlers), root.level
    root.handlers = []
    configure_logging(level=logging.WARNING, handler=_ScreenLog(console))
    try:
        yield
    finally:
        root.handlers = saved
        root.setLevel(level)


def _banner(session: DemoSession) -> list[Line]:
    rt = session.rt
    return [
        Line("gatebot demo — the whole bot in this process, with this terminal as Slack", "header"),
        Line(f"  Gate sandbox in-process · SQLite store {rt.db_path}", "dim"),
        Line(f"  Slack app (HTTP) {rt.app_url} · Slack emulator Web API {rt.emulator.api_url}", "dim"),
        Line("  scheduler: live, short intervals; time runs from now and :time +1h jumps ahead", "dim"),
        Line(f"You are @{session.person.name} ({session.person.note}) in #gate-ops. "
             "Try /gate help, /gate buy, /gate balance, :help. Ctrl-D quits.", "ok"),
    ]


async def _run(db: Path | None) -> int:
    from prompt_toolkit import PromptSession
    from prompt_toolkit.completion import WordCompleter
    from prompt_toolkit.history import InMemoryHistory
    from prompt_toolkit.patch_stdout import patch_stdout

    from gatebot.demo.runner import running_demo

    colour = sys.stdout.isatty()
    with patch_stdout(raw=True):
        console = Console(file=sys.stdout, force_terminal=colour, no_color=not colour, highlight=False, emoji=False)

        def emit(lines: list[Line]) -> None:
            for line in lines:
                console.print(rich_line(line), soft_wrap=True)

        console.print(Text("starting the demo…", style="dim"))
        with _logging_to(console):
            async with running_demo(db=db, live=True) as runtime:
                session = DemoSession(runtime, emit, settle_timeout=10.0)
                try:
                    emit(_banner(session))
                    session.flush()
                    prompt: PromptSession[str] = PromptSession(
                        history=InMemoryHistory(),
                        completer=WordCompleter(completion_words(session), sentence=True),
                        complete_while_typing=True,
                    )
                    while True:
                        try:
                            line = await prompt.prompt_async(session.prompt)
                        except KeyboardInterrupt:
                            continue
                        except EOFError:
                            break
                        outcome = await session.execute(line)
                        if outcome.quit:
                            break
                finally:
                    session.close()
        console.print(Text("demo stopped", style="dim"))
    return 0


def run_tui(*, db: Path | None = None) -> int:
    """Run the interactive demo until the user quits; returns the exit code."""
    return asyncio.run(_run(db))
