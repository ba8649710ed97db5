"""Where the jobs send what people should see: the :class:`Poster` protocol, and :class:`LogPoster`.

The Slack implementation is :class:`gatebot.slack.alert_poster.AlertPoster`; :class:`LogPoster` only
logs (``gatebot clock`` without a Slack token, tests).

Must not import Slack or the scheduler.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

from gatebot.alerts import Notification
from gatebot.finance.deposits import DepositNotice
from gatebot.finance.digest import Digest

__all__ = ["LogPoster", "Poster"]

log = logging.getLogger(__name__)


class Poster(Protocol):
    """Where the jobs send what people should see. It must never raise for a Slack failure."""

    async def deliver(self, notes: Sequence[Notification]) -> None:
        """Post / update / thread-reply the alert notifications (and store new message ts)."""
        ...

    async def announce_deposit(self, notice: DepositNotice) -> bool:
        """Announce a posted deposit; ``True`` when done with it (posted, or nowhere to post)."""
        ...

    async def send_digest(self, digest: Digest) -> bool:
        """Send the daily digest; ``True`` when done with it (posted, or nowhere to post)."""
        ...


class LogPoster:
    """A :class:`Poster` that only logs (``gatebot clock`` without a Slack token, tests)."""

    def __init__(self) -> None:
        self.notes: list[Notification] = []
        self.deposits: list[DepositNotice] = []
        self.digests: list[Digest] = []

    async def deliver(self, notes: Sequence[Notification]) -> None:
        for note in notes:
            self.notes.append(note)
            log.info("alert %s %s (%s): %s", note.alert_key, note.kind, note.reason, note.title)

    async def announce_deposit(self, notice: DepositNotice) -> bool:
        self.deposits.append(notice)
        log.info("deposit #%s of %s posted", notice.deposit_id, notice.amount)
        return True

    async def send_digest(self, digest: Digest) -> bool:
        self.digests.append(digest)
        log.info("daily digest %s..%s: %d currencies, %d mismatch(es)", digest.start, digest.end,
                 len(digest.lines), len(digest.mismatches))
        return True
