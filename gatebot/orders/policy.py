"""The approval and spending policy: when an order needs a second person, and the daily limits.

:class:`ApprovalPolicy` is built from the settings (``GATEBOT_APPROVAL_OVER``, ``GATEBOT_APPROVER_ROLES``,
``GATEBOT_CLI_APPROVERS``, ``GATEBOT_DAILY_LIMIT``, ``GATEBOT_OVER_LIMIT``, ``GATEBOT_APPROVAL_TTL``);
its defaults (no threshold, no limits) leave the pipeline as it was. Pure: the amounts already spent are
read by the caller (``repo.spent_since``) and passed in.

Must not import Slack or the scheduler.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Final, Literal

from gatebot.config import Settings, SpendLimit
from gatebot.money import Money

__all__ = ["LIMIT_WINDOW", "ApprovalPolicy", "LimitUse"]

#: Daily limits count the orders of this rolling window.
LIMIT_WINDOW: Final = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class LimitUse:
    """One daily limit and what was spent against it in the window."""

    limit: SpendLimit
    used: Money

    @property
    def remaining(self) -> Money:
        left = self.limit.limit - self.used
        return left if left.amount > 0 else Money.zero(left.currency)

    def exceeded_by(self, cost: Money) -> bool:
        """Whether ``cost`` on top of what was used goes over (exactly at the limit does not)."""
        return self.used + cost > self.limit.limit

    @property
    def whose(self) -> str:
        return "your daily limit" if self.limit.role is None else f"the {self.limit.role} team's daily limit"

    def message(self, cost: Money) -> str:
        """Why an order costing ``cost`` is refused: the limit, the amount used and what remains."""
        return (f"This order ({cost}) would go over {self.whose} of {self.limit.limit}: {self.used} used in the "
                f"last 24 hours, {self.remaining} remains.")

    def reason(self) -> str:
        """Why an order over this limit waits for approval (``GATEBOT_OVER_LIMIT=approval``)."""
        return f"it goes over {self.whose} of {self.limit.limit} ({self.used} used in the last 24 hours)"


@dataclass(frozen=True, slots=True)
class ApprovalPolicy:
    """Who needs approval, who may give it, how long a request stays open, and the daily limits."""

    approval_over: Mapping[str, Money] = field(default_factory=dict)
    approver_roles: frozenset[str] = frozenset({"finance", "admin"})
    cli_approvers: frozenset[str] = frozenset()
    daily_limits: tuple[SpendLimit, ...] = ()
    over_limit: Literal["refuse", "approval"] = "refuse"
    ttl: timedelta = timedelta(hours=24)

    @classmethod
    def from_settings(cls, settings: Settings) -> ApprovalPolicy:
        return cls(approval_over=dict(settings.gatebot_approval_over),
                   approver_roles=frozenset(settings.gatebot_approver_roles),
                   cli_approvers=frozenset(settings.gatebot_cli_approvers),
                   daily_limits=tuple(settings.gatebot_daily_limit), over_limit=settings.gatebot_over_limit,
                   ttl=timedelta(seconds=settings.gatebot_approval_ttl))

    def threshold_reason(self, cost: Money) -> str | None:
        """Why an order costing ``cost`` needs approval by the threshold (strictly over it), or ``None``."""
        threshold = self.approval_over.get(cost.currency.upper())
        if threshold is not None and cost > threshold:
            return f"it costs {cost}, over the approval threshold of {threshold}"
        return None

    def limits_for(self, currency: str, roles: Iterable[str]) -> list[SpendLimit]:
        """The limits an order in ``currency`` by someone holding ``roles`` counts against."""
        held = frozenset(roles)
        return [lim for lim in self.daily_limits
                if lim.limit.currency == currency.upper() and (lim.role is None or lim.role in held)]
