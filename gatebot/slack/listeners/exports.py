"""``/gate export orders|deposits|ledger [since] [until] [currency]``: the finance CSV, sent by DM.

Called by :mod:`gatebot.slack.listeners.commands` after the ack and the role check (finance; admins may do
everything). Reads the window with the core's time parser, builds the CSV with
:func:`gatebot.finance.exports.build_export` (off the event loop), uploads it into the requester's DM with
``files_upload_v2`` (scope ``files:write``) and answers privately where the command was typed. Every
export is recorded in the audit log. Must not import the scheduler.
"""

from __future__ import annotations

from slack_sdk.web.async_client import AsyncWebClient

from gatebot.clock import TimeArgumentError, parse_when
from gatebot.finance.exports import ExportError, build_export
from gatebot.slack.blocks.common import Message, code, message, section
from gatebot.slack.blocks.messages import error_message
from gatebot.slack.deps import Deps
from gatebot.slack.grammar import Command

__all__ = ["DEFAULT_SINCE", "send_export"]

#: The window when none is given: the last seven days.
DEFAULT_SINCE = "7d"


async def send_export(deps: Deps, client: AsyncWebClient, cmd: Command, user: str) -> Message:
    """Build the export ``cmd`` asks for and upload it to ``user``'s DM; the answer to show them."""
    kind, since_text, until_text, currency = cmd.args
    now = deps.now()
    try:
        since = parse_when(since_text or DEFAULT_SINCE, now=now, option="since")
        until = parse_when(until_text, now=now, option="until") if until_text else now
        export = await deps.db.run(lambda s: build_export(s, kind, since=since, until=until,
                                                          currency=currency or None))
    except (TimeArgumentError, ExportError) as exc:
        return error_message(str(exc).replace("--", ""), usage=cmd.usage.syntax)
    opened = await client.conversations_open(users=user)
    channel = str(opened["channel"]["id"])
    await client.files_upload_v2(channel=channel, content=export.text, filename=export.filename,
                                 title=export.filename,
                                 initial_comment=f"Your {kind} export: {export.rows} row(s).")
    await deps.record_audit(actor=user, action=f"export.{kind}", target=None, allowed=True,
                            detail=f"{export.rows} rows, {since.isoformat()} to {until.isoformat()}"
                                   + (f", {export.currency}" if export.currency else ""))
    text = f"Sent you {code(export.filename)} ({export.rows} row(s)) by direct message."
    return message(text, [section(f":page_facing_up: {text}")])
