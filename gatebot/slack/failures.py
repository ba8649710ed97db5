"""What "Slack could not do it" looks like, once for every Slack caller.

:data:`SLACK_FAILURES` is what a Web API or ``response_url`` call raises when it did not work (Slack's
error answer, the connection, a timeout); :func:`error_code` names such a failure for a log line —
Slack's error code (``not_in_channel``) or the exception's class, never the payload. The listeners
(:mod:`gatebot.slack.listeners`), the :mod:`~gatebot.slack.notifier` and the
:mod:`~gatebot.slack.alert_poster` all catch and describe failures with these.

Importing it does nothing. Must not import the scheduler or anything of gatebot's.
"""

from __future__ import annotations

import aiohttp
from slack_sdk.errors import SlackApiError

__all__ = ["FALLBACK_ERRORS", "SLACK_FAILURES", "error_code"]

#: What a Slack Web API or response_url call raises when it did not work.
SLACK_FAILURES = (SlackApiError, aiohttp.ClientError, TimeoutError, OSError)
#: ``chat.postMessage`` errors that mean "the bot cannot post in that channel": DM the requester instead
#: (an order's status message, a batch's progress message).
FALLBACK_ERRORS = frozenset({"not_in_channel", "channel_not_found", "is_archived", "restricted_action",
                             "access_denied"})


def error_code(exc: BaseException) -> str:
    """Slack's error code (``not_in_channel``) or the exception's class name; never the payload."""
    if isinstance(exc, SlackApiError):
        return str(exc.response.get("error", "unknown_error"))
    return type(exc).__name__
