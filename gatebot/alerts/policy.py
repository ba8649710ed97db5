"""The vocabulary of alerting: the policy knobs, the notifications a policy emits, the alert keys.

:class:`AlertPolicy` holds every knob of every policy; :class:`Notification` is one thing for the
poster to do in Slack (``post`` / ``update`` / ``thread``); :class:`Rendered` is an alert message's
current content. Keys name the alerts: ``balance:USD``, ``health``, ``job:track``.

Must not import Slack, the scheduler, the store or anything that does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from gatebot.config import Settings

__all__ = [
    "HEALTH_KEY",
    "MAX_SNOOZE",
    "SNOOZE_CHOICES",
    "AlertPolicy",
    "Kind",
    "Level",
    "Notification",
    "Rendered",
    "Severity",
    "StateError",
    "balance_key",
    "job_key",
]

Kind = Literal["post", "update", "thread"]
Severity = Literal["warning", "critical", "info", "ok"]
Level = Literal["warning", "critical"]

HEALTH_KEY = "health"
#: Snooze lengths the Slack UI offers.
SNOOZE_CHOICES: tuple[timedelta, ...] = (timedelta(hours=1), timedelta(hours=4), timedelta(hours=24))
#: Longest snooze accepted: an alert must not disappear for good by accident.
MAX_SNOOZE = timedelta(days=7)

_RANK: dict[str | None, int] = {None: 0, "warning": 1, "critical": 2}
_LEVELS: dict[int, Level] = {1: "warning", 2: "critical"}


class StateError(ValueError):
    """A stored alert state that cannot be read back (not an object, wrong type, bad value)."""


def balance_key(currency: str) -> str:
    """The book key of the low-balance alert of ``currency``: ``balance:USD``."""
    return f"balance:{currency.strip().upper()}"


def job_key(job: str) -> str:
    """The book key of a job's self-watch alert: ``job:track``."""
    return f"job:{job}"


# -- policy knobs --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertPolicy:
    """Every knob of every policy. The defaults match :class:`~gatebot.config.Settings`' defaults."""

    #: Consecutive low readings before a balance alert fires; also needed to raise its level.
    fire_after: int = 3
    #: Consecutive good readings before a balance alert clears; also needed to lower its level.
    clear_after: int = 2
    #: Hysteresis, as a fraction of the warning level: a level is left only above ``level + margin``.
    clear_margin: Decimal = Decimal("0.10")
    #: Reminder interval while an alert stays open (not acked, not snoozed, not flapping).
    repeat: timedelta = timedelta(hours=4)
    #: Whether an escalation to a more severe level drops the ack and snooze (so reminders resume).
    #: Off by default: an ack holds until the all-clear, the escalation itself is announced.
    escalation_rearms: bool = False
    #: Consecutive failed probes, or consecutive failed real calls (counted apart), before the API
    #: counts as down (alert + open circuit).
    health_fail_after: int = 3
    #: Consecutive successes before a down API counts as up again.
    health_recover_after: int = 1
    #: The health job's interval: the base of the back-off while the API is down.
    probe_interval: timedelta = timedelta(minutes=1)
    #: Longest wait between probes while the API is down.
    probe_backoff_cap: timedelta = timedelta(minutes=15)
    #: Flapping: at least ``flap_changes`` up/down changes within ``flap_window`` ...
    flap_window: timedelta = timedelta(minutes=30)
    flap_changes: int = 3
    #: ... and it settles after ``flap_quiet`` without a change.
    flap_quiet: timedelta = timedelta(minutes=30)
    #: A job alert fires when the job has not succeeded for this many intervals.
    job_missed_intervals: int = 3
    #: An open alert whose post was never stored (poster failed) is posted again after this long.
    repost_after: timedelta = timedelta(minutes=10)

    def __post_init__(self) -> None:
        for name in ("fire_after", "clear_after", "health_fail_after", "health_recover_after",
                     "flap_changes", "job_missed_intervals"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"AlertPolicy.{name} must be a positive int, got {value!r}")
        if self.flap_changes < 2:
            raise ValueError("AlertPolicy.flap_changes must be at least 2")
        if not isinstance(self.clear_margin, Decimal) or not Decimal(0) <= self.clear_margin <= Decimal(1):
            raise ValueError(f"AlertPolicy.clear_margin must be a Decimal in [0, 1], "
                             f"got {self.clear_margin!r}")
        for name in ("repeat", "probe_interval", "probe_backoff_cap", "flap_window", "flap_quiet",
                     "repost_after"):
            value = getattr(self, name)
            if not isinstance(value, timedelta) or value <= timedelta(0):
                raise ValueError(f"AlertPolicy.{name} must be a positive timedelta, got {value!r}")
        if self.probe_backoff_cap < self.probe_interval:
            raise ValueError("AlertPolicy.probe_backoff_cap must not be shorter than probe_interval")

    @classmethod
    def from_settings(cls, settings: Settings) -> AlertPolicy:
        """The policy configured by ``GATEBOT_ALERT_*`` / ``GATEBOT_HEALTH_*``; other knobs default."""
        return cls(
            fire_after=settings.gatebot_alert_fire_after,
            clear_after=settings.gatebot_alert_clear_after,
            clear_margin=settings.gatebot_alert_clear_margin,
            repeat=timedelta(seconds=settings.gatebot_alert_repeat),
            health_fail_after=settings.gatebot_health_fail_after,
            probe_interval=timedelta(seconds=settings.gatebot_health_interval),
            probe_backoff_cap=max(timedelta(minutes=15), timedelta(seconds=settings.gatebot_health_interval)),
        )


# -- notifications ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Notification:
    """One thing for the poster to do in Slack.

    ``post``: the first message of the alert (store its ts with :func:`with_message`); ``update``: edit
    that message in place; ``thread``: reply in its thread. ``channel``/``ts`` name the message for
    ``update`` and ``thread`` (``None`` for ``post``). ``reason`` is machine-readable (see the module
    table); ``fields`` are label → value pairs for the message body (empty for thread replies).
    """

    kind: Kind
    alert_key: str
    severity: Severity
    title: str
    text: str
    fields: dict[str, str]
    reason: str
    channel: str | None = None
    ts: str | None = None


@dataclass(frozen=True, slots=True)
class Rendered:
    """The current content of an alert's message."""

    severity: Severity
    title: str
    text: str
    fields: dict[str, str]

