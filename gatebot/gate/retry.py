"""When a Gate call is tried again, how long it waits, and what it raises when it gives up.

What lives here: :class:`RetryPolicy` (attempts, backoff, jitter), ``Retry-After`` parsing,
:class:`Failure` (one failed attempt, classified: retryable? may it have been processed? was it
an unreadable 2xx?) and :func:`with_retries`, the loop that applies the rules below.

The retry rules, and why:

* Reads are retried on transport errors (timeouts included), 5xx and 429: repeating a GET is
  harmless.
* ``create_order`` is retried on the same conditions with the **same** key and the **same bytes**,
  which is exactly what the provider's idempotency promises make safe. It is never retried on any
  other 4xx: those are definitive answers.
* When a create gives up, the question is "could the order exist?". If any attempt was sent and
  got no definitive answer (timeout, reset, 5xx, unreadable 2xx), it could: the caller gets
  :class:`~gatebot.gate.errors.GateOutcomeUnknown` and must retry later with the same key — even
  if the *last* attempt was a 429. Only when every attempt was definitively not processed (429s,
  connection refused) does the real error surface.
* 429 honours ``Retry-After`` up to ``RetryPolicy.max_retry_after``; a longer wait is not slept
  through here but raised as :class:`~gatebot.gate.errors.GateRateLimited` so a scheduler can
  come back later.

All sleeping goes through the injected ``sleep`` so tests run instantly and can assert delays.
Nothing here sends: the HTTP exchange is :mod:`gatebot.gate.client`'s, handed in as a callable
(httpx is imported for its exception classes and ``Response`` only). Must not import the client,
Slack, the scheduler, the store or the sandbox.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Literal, TypeVar

import httpx

from gatebot.gate.errors import GateError, GateOutcomeUnknown

__all__ = ["NOT_SENT", "Failure", "RetryPolicy", "parse_retry_after", "with_retries"]

# The client's logger: a call's retry lines sit with its attempt lines (and ``gatebot.demo`` quiets
# them by this name).
log = logging.getLogger("gatebot.gate.client")

R = TypeVar("R")


@dataclass(frozen=True, kw_only=True, slots=True)
class RetryPolicy:
    """How many attempts a call gets and how long to wait between them.

    ``attempts`` counts the first try (``attempts=1`` never retries). Backoff grows as
    ``base_delay * 2**(n-1)`` capped at ``max_delay``; ``jitter`` spreads it: ``"full"``
    (uniform in ``[0, cap]``), ``"decorrelated"`` (uniform in ``[base, 3 * previous]``, capped)
    or ``"none"`` (deterministic, for tests). A 429's ``Retry-After`` replaces the backoff; one
    longer than ``max_retry_after`` is raised instead of slept through.
    """

    attempts: int = 4
    base_delay: float = 0.2
    max_delay: float = 5.0
    jitter: Literal["full", "decorrelated", "none"] = "full"
    max_retry_after: float = 30.0
    rng: random.Random | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")
        if self.base_delay < 0 or self.max_delay < 0 or self.max_retry_after < 0:
            raise ValueError("delays must not be negative")
        if self.jitter not in ("full", "decorrelated", "none"):
            raise ValueError(f"unknown jitter {self.jitter!r}")

    @classmethod
    def never(cls) -> RetryPolicy:
        """A single attempt: for probes and for callers that run their own retry loop."""
        return cls(attempts=1)

    def backoff(self, retry: int, previous: float | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (1 = the first retry)."""
        cap = min(self.max_delay, self.base_delay * 2.0 ** max(retry - 1, 0))
        rng = self.rng or random
        if self.jitter == "none":
            return cap
        if self.jitter == "full":
            return float(rng.uniform(0, cap))
        prev = previous if previous is not None and previous > 0 else self.base_delay
        return float(min(self.max_delay, rng.uniform(self.base_delay, max(self.base_delay, prev * 3))))


@dataclass(frozen=True, slots=True)
class Failure:
    """A failed attempt. ``sent``: Gate may have processed it. ``unreadable``: a 2xx we could not read."""

    error: GateError
    retryable: bool = True
    sent: bool = True
    unreadable: bool = False
    retry_after: float | None = None


#: Transport failures that happen before the request left: it cannot have been processed.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol,
            httpx.LocalProtocolError)


def parse_retry_after(response: httpx.Response) -> float | None:
    """``Retry-After`` as seconds: a number, or an HTTP date (relative to now)."""
    raw = response.headers.get("Retry-After")
    if raw is None or not raw.strip():
        return None
    try:
        seconds = float(raw.strip())
    except ValueError:
        try:
            when = parsedate_to_datetime(raw.strip())
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    if seconds != seconds or seconds in (float("inf"), float("-inf")):  # NaN / infinity
        return None
    return max(0.0, seconds)


async def with_retries(
    attempt_once: Callable[[int], Awaitable[R | Failure]],
    *,
    policy: RetryPolicy,
    sleep: Callable[[float], Awaitable[None]],
    where: str,
    idempotency_key: str | None = None,
) -> R:
    """Run ``attempt_once(1)``, ``attempt_once(2)``, ... until one returns a result; apply the rules above.

    ``idempotency_key`` marks a create: an unreadable 2xx answer is retried too (the order
    probably exists and the replay will say so), and giving up after any attempt whose
    outcome is unknown raises :class:`GateOutcomeUnknown`.
    """
    is_create = idempotency_key is not None
    maybe_processed = False  # some attempt of this create may have reached Gate's order book
    delay: float | None = None
    failure: Failure | None = None

    for attempt in range(1, policy.attempts + 1):
        if attempt > 1 and delay is not None:
            log.debug("gate %s: retry %d/%d in %.2fs", where, attempt - 1, policy.attempts - 1, delay)
            await sleep(delay)
        result = await attempt_once(attempt)
        if not isinstance(result, Failure):
            return result
        failure = result
        if not failure.retryable or (failure.unreadable and not is_create):
            raise failure.error
        maybe_processed = maybe_processed or (is_create and failure.sent)
        wait = failure.retry_after
        if wait is not None and wait > policy.max_retry_after:
            if failure.error.status == 429:
                break  # do not sleep that long here: surface it (below) so a scheduler can come back
            wait = None  # a 5xx asking for a long pause: plain backoff, the attempts are bounded
        delay = wait if wait is not None else policy.backoff(attempt, delay)

    assert failure is not None  # only reachable after at least one failed attempt
    if is_create and maybe_processed:
        assert idempotency_key is not None
        log.warning("gate %s: outcome unknown after %d attempt(s)", where, attempt)
        raise GateOutcomeUnknown(
            f"{where}: the order may or may not have been created ({failure.error.message}); "
            "retry later with the same Idempotency-Key and the same body, never a new key",
            idempotency_key=idempotency_key,
            cause=failure.error,
        )
    log.warning("gate %s: giving up after %d attempt(s): %s", where, attempt,
                type(failure.error).__name__)
    raise failure.error
