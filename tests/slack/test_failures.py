"""The Slack error helpers exist once: listeners, notifier and alert poster use gatebot.slack.failures."""

from __future__ import annotations

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from gatebot.slack import alert_poster, failures, listeners, notifier


def test_error_code_names_slacks_error_or_the_exception_never_the_payload() -> None:
    response = AsyncSlackResponse(client=None, http_verb="POST", api_url="https://slack.test/api/chat.postMessage",
                                  req_args={}, data={"ok": False, "error": "not_in_channel", "secret": "xoxb-1"},
                                  headers={}, status_code=200)
    assert failures.error_code(SlackApiError("refused", response)) == "not_in_channel"
    assert failures.error_code(TimeoutError("slow")) == "TimeoutError"
    assert isinstance(OSError(), failures.SLACK_FAILURES)


def test_every_slack_caller_uses_the_one_definition() -> None:
    assert listeners.error_code is failures.error_code
    assert listeners.SLACK_FAILURES is failures.SLACK_FAILURES
    assert alert_poster.error_code is failures.error_code  # type: ignore[attr-defined]
    assert notifier.SLACK_FAILURES is failures.SLACK_FAILURES  # type: ignore[attr-defined]
    assert notifier.error_code is failures.error_code  # type: ignore[attr-defined]
