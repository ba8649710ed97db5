"""The terminal UI's pure parts: colours per line style, highlights, and the completion list."""

from __future__ import annotations

from gatebot.demo.render import Line
from gatebot.demo.tui import STYLES, completion_words, rich_line
from tests.demo.conftest import Demo


def styles_at(line: Line, fragment: str) -> set[str]:
    text = rich_line(line)
    start = text.plain.index(fragment)
    return {str(span.style) for span in text.spans if span.start <= start < span.end}


def test_lines_take_their_style_and_highlights() -> None:
    assert str(rich_line(Line("✗ nope", "error")).style) == STYLES["error"]
    line = Line("  [3] Acknowledge  [4] Snooze 1h", "actions")
    assert "bold magenta" in styles_at(line, "[3] Acknowledge")
    assert "bold magenta" in styles_at(line, "[4] Snooze 1h")
    assert "bold" in styles_at(Line("*Cost*: USD 20.00"), "*Cost*")
    assert "cyan" in styles_at(Line("ref `INV-1001`"), "`INV-1001`")
    assert "bold red" in styles_at(Line("│   ⚠ Steam login is wrong", "form"), "⚠ Steam")
    assert rich_line(Line("plain text")).plain == "plain text"


async def test_completion_offers_commands_people_channels_and_faults(demo: Demo) -> None:
    words = completion_words(demo.session)
    for expected in ("/gate buy", "/gate balance", ":user bob", ":channel #finance", ":fault health-down",
                     ":time +1h", ":deposit USD 500", ":submit", ":quit"):
        assert expected in words
    assert len(words) == len(set(words))
