"""What the driver hands back: one request to the app and its answer, as the user experiences it.

Must not import slack_bolt or slack_sdk.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from gatebot.emulator.model import JSON, Ephemeral, Message, View


class AckTimeoutError(TimeoutError):
    """The app did not answer within the ack deadline (Slack would show the user an error)."""


@dataclass(kw_only=True)
class Delivery:
    """One request sent to the app and its answer."""

    status: int
    text: str
    headers: dict[str, str]
    sent: JSON  # the payload, form fields or event envelope, decoded
    trigger_id: str | None = None
    response_url: str | None = None
    event_id: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == 200

    def json(self) -> Any:
        """The answer's JSON body (numbers as Decimal), or ``None`` if empty or not JSON."""
        if not self.text.strip():
            return None
        try:
            return json.loads(self.text, parse_float=Decimal)
        except ValueError:
            return None


@dataclass(kw_only=True)
class CommandResult(Delivery):
    """A slash command's answer; a reply in the response body is recorded in the workspace."""

    ephemeral: Ephemeral | None = None
    message: Message | None = None


@dataclass(kw_only=True)
class OptionsResult(Delivery):
    """An options load; ``options`` flattens ``option_groups``."""

    options: list[JSON] = field(default_factory=list)
    option_groups: list[JSON] = field(default_factory=list)


@dataclass(kw_only=True)
class SubmitResult:
    """A view submission as the user experiences it.

    ``delivery`` is ``None`` when the Slack client refused to submit (``client_errors``: an empty
    required field, an invalid number). ``errors`` are the app's ``response_action: errors``;
    ``client_error`` is what the user would see instead of a sensible outcome (a non-200 answer, an
    error keyed by something that is not an input block, a rejected ``update``/``push`` view).
    ``view`` is the user's top view afterwards (``None`` once the modal is closed).
    """

    delivery: Delivery | None
    response_action: str | None = None
    errors: dict[str, str] = field(default_factory=dict)
    client_errors: dict[str, str] = field(default_factory=dict)
    client_error: str | None = None
    view: View | None = None

    @property
    def status(self) -> int | None:
        return self.delivery.status if self.delivery is not None else None

    @property
    def closed(self) -> bool:
        """The submitted view is gone from the user's screen."""
        return self.view is None


def delivery_fields(delivery: Delivery) -> JSON:
    """A delivery's fields, to build a richer result (``CommandResult(**delivery_fields(d), ...)``)."""
    return {
        "status": delivery.status,
        "text": delivery.text,
        "headers": delivery.headers,
        "sent": delivery.sent,
        "trigger_id": delivery.trigger_id,
        "response_url": delivery.response_url,
        "event_id": delivery.event_id,
    }
