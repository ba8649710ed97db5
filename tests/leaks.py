"""Finding secrets in text a test collected (log lines, stored rows) without false alarms.

A PIN is four digits: ``8279`` also turns up by chance inside a random request id, a UUID or an
idempotency key written before the PIN existed. A short secret therefore counts only as a whole token
(not touching a letter or digit); a long one counts anywhere.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

#: Secrets shorter than this must stand alone to count.
WHOLE_TOKEN_BELOW = 8


def leaks(secrets: Iterable[str], text: str) -> list[str]:
    """The ``secrets`` that appear in ``text``."""
    found = []
    for secret in secrets:
        if len(secret) >= WHOLE_TOKEN_BELOW:
            hit = secret in text
        else:
            hit = re.search(rf"(?<![0-9A-Za-z]){re.escape(secret)}(?![0-9A-Za-z])", text) is not None
        if hit:
            found.append(secret)
    return found
