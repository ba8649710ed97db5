"""Real Gate calls as the health check sees them: :class:`CallRecorder`, the client's ``on_attempt`` hook.

Must not import Slack, the scheduler, the store or httpx.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

__all__ = ["CallRecorder"]


class CallRecorder:
    """The Gate client's ``on_attempt`` hook: remembers whether real calls worked.

    The health job drains it and feeds each outcome to the health policy as a ``source="call"``
    observation: the second signal, so a Gate that fails business calls counts as down even while
    ``/health`` answers. Working calls never cancel failed probes (the policy counts the two apart).
    The probe itself (label ``health``) is observed directly and ignored here. Only this process's
    calls are seen (the clock process's, where the health job runs). Bounded: only the most recent
    ``maxlen`` outcomes are kept.
    """

    def __init__(self, *, maxlen: int = 100, ignore: Iterable[str] = ("health",)) -> None:
        self._outcomes: deque[tuple[str, bool]] = deque(maxlen=maxlen)
        self._ignore = frozenset(ignore)

    def __call__(self, label: str, success: bool) -> None:
        if label not in self._ignore:
            self._outcomes.append((label, success))

    def __len__(self) -> int:
        return len(self._outcomes)

    def drain(self) -> list[tuple[str, bool]]:
        """The outcomes since the last drain, oldest first."""
        out = list(self._outcomes)
        self._outcomes.clear()
        return out
