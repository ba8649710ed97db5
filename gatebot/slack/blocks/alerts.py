"""Alert messages: one message per alert, edited in place as it is acknowledged, snoozed or resolved.

:class:`AlertCard` is what the notifier fills from the alert core's notification; :func:`alert_message`
renders it with Acknowledge / Snooze 1h / 4h / 24h buttons (value: the alert key) and an optional link
button. A resolved alert keeps its text but has no buttons. Pure functions: must not import
slack_bolt/slack_sdk, the store, the alert policies' state, or do I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from gatebot.slack import ids
from gatebot.slack.blocks.common import (
    Block,
    Message,
    actions,
    button,
    context,
    esc,
    fields_sections,
    message,
    section,
    slack_date,
    truncate,
    user_mention,
)

__all__ = ["SEVERITY_EMOJI", "STATE_WORDS", "AlertCard", "alert_line", "alert_message"]

SEVERITY_EMOJI = {"info": ":information_source:", "warning": ":warning:", "critical": ":rotating_light:"}
STATE_WORDS = {"firing": "firing", "acked": "acknowledged", "snoozed": "snoozed", "resolved": "resolved",
               "flapping": "flapping"}
MAX_LINK = 3000


@dataclass(frozen=True, slots=True)
class AlertCard:
    """An alert as shown in Slack. ``text`` and ``fields`` are plain text (escaped when rendered).

    ``state`` is one of ``firing``, ``acked``, ``snoozed``, ``resolved``, ``flapping``.
    """

    key: str
    title: str
    severity: str = "warning"
    text: str = ""
    fields: Sequence[tuple[str, str]] = ()
    state: str = "firing"
    since: datetime | None = None
    acked_by: str | None = None
    snoozed_until: datetime | None = None
    link: str | None = None
    link_text: str = "Open"


def _state_line(card: AlertCard) -> str:
    if card.state == "acked":
        return f":eyes: Acknowledged by {user_mention(card.acked_by)}"
    if card.state == "snoozed":
        return f":zzz: Snoozed until {slack_date(card.snoozed_until, missing='further notice')}"
    if card.state == "resolved":
        return ":white_check_mark: Resolved"
    if card.state == "flapping":
        return (":repeat: Flapping: it fired and cleared several times, so repeat notifications are held "
                "until it settles")
    if card.state == "firing":
        return ":bell: Firing" + (f" since {slack_date(card.since)}" if card.since else "")
    return esc(truncate(card.state, 40))


def _link_ok(link: str | None) -> bool:
    return link is not None and link.startswith(("https://", "http://")) and len(link) <= MAX_LINK


def alert_message(card: AlertCard) -> Message:
    """The alert's channel message (buttons unless resolved)."""
    emoji = SEVERITY_EMOJI.get(card.severity, ":bell:")
    title = esc(truncate(card.title, 200))  # a resolved title already says so ("back to normal")
    blocks: list[Block] = [section(f"{emoji} *{title}*\n{_state_line(card)}")]
    if card.text:
        blocks.append(section(esc(truncate(card.text, 2900))))
    pairs = [f"*{esc(truncate(name, 100))}*\n{esc(truncate(value, 1800))}" for name, value in card.fields]
    blocks += fields_sections(pairs[:30])
    if card.state != "resolved":
        buttons: list[Block] = []
        if card.state != "acked":
            buttons.append(button("Acknowledge", action_id=ids.ALERT_ACK, value=card.key, style="primary"))
        buttons += [button("Snooze 1h", action_id=ids.ALERT_SNOOZE_1H, value=card.key),
                    button("Snooze 4h", action_id=ids.ALERT_SNOOZE_4H, value=card.key),
                    button("Snooze 24h", action_id=ids.ALERT_SNOOZE_24H, value=card.key)]
        if _link_ok(card.link):
            buttons.append(button(card.link_text, action_id=ids.ALERT_LINK, value=card.key, url=card.link))
        blocks.append(actions(*buttons))
    elif card.since:
        blocks.append(context(f"Fired {slack_date(card.since)}"))
    state = STATE_WORDS.get(card.state, card.state)
    return message(f"{card.severity.upper()}: {title} ({esc(truncate(state, 40))})", blocks)


def alert_line(card: AlertCard) -> str:
    """One line for lists (the Home tab): severity, title, state, since."""
    line = (f"{SEVERITY_EMOJI.get(card.severity, ':bell:')} *{esc(truncate(card.title, 150))}* · "
            f"{esc(STATE_WORDS.get(card.state, truncate(card.state, 40)))}")
    if card.since:
        line += f" since {slack_date(card.since)}"
    return line
