"""The bulk service: the public face of ``gatebot.bulk``, assembled from its parts, plus finding a batch.

Must not import Slack, the scheduler, ``gatebot.slack``, ``gatebot.jobs``, ``gatebot.demo`` or
``gatebot.emulator``.
"""

from __future__ import annotations

import re
from typing import Final

from sqlmodel import Session

from gatebot.bulk.placement import Placement
from gatebot.store import repo
from gatebot.store.models import Batch

__all__ = ["BulkService", "parse_batch_ref"]

_BATCH_REF: Final = re.compile(r"[Bb]\s*(\d{1,9})")


def parse_batch_ref(text: str) -> int | None:
    """The batch number in a reference as people type it (``B12``, ``b12``), else ``None``."""
    match = _BATCH_REF.fullmatch(text.strip().strip("`"))
    return int(match.group(1)) if match else None


class BulkService(Placement):
    """Bulk batches over one order service. Safe to share across tasks."""

    async def find(self, ref: str) -> Batch | None:
        """The batch ``ref`` names (``B12``), or ``None`` (also for a reference that is not a batch's)."""
        number = parse_batch_ref(ref)
        return None if number is None else await self.get(number)

    async def set_message(self, batch_id: int, *, channel: str, ts: str) -> None:
        """Record where the batch's progress message is (the Slack layer edits it in place)."""

        def save(s: Session) -> None:
            batch = repo.get_batch(s, batch_id)
            if batch is not None:
                batch.message_channel, batch.message_ts = channel, ts
                s.add(batch)

        await self.db.run(save)
