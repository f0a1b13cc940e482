"""When to retry a Graph call, and after how long: one small pure policy.

Retried: 429 and 503 for every request (Graph did not process it), 500, 502 and 504 for requests
that are safe to repeat, and connection failures. ``Retry-After`` (seconds, fractional allowed, or
an HTTP date) is honoured as given; without it the delay grows exponentially with jitter. Attempts and
total time are bounded. Only requests that are safe to repeat are retried after the request may have
reached the server (GET, DELETE, a PATCH to a fixed state, createOrGet); a failure to *connect* is
retried for every request, since nothing was sent.

Nothing here sleeps, reads the clock or draws random numbers on its own: the caller passes the
attempt number and elapsed time, and the jitter function is injectable so tests can make it exact.
"""

from __future__ import annotations

import email.utils
import random
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
#: Answers after which the request may still have been carried out (429 and 503 say it was not).
MAYBE_PROCESSED_STATUSES = frozenset({500, 502, 504})

#: Connection failures where the request cannot have reached the server: safe for every method.
NOT_SENT_ERRORS: tuple[type[BaseException], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
)
#: Failures after the request may have been sent: retried only for requests safe to repeat.
MAYBE_SENT_ERRORS: tuple[type[BaseException], ...] = (
    httpx.ReadError,
    httpx.WriteError,
    httpx.ReadTimeout,
    httpx.WriteTimeout,
    httpx.RemoteProtocolError,
)


def full_jitter(delay: float) -> float:
    """A random delay in [delay/2, delay] ("equal jitter"): spreads retries of many clients apart."""
    return delay / 2 + random.uniform(0, delay / 2)  # noqa: S311 - not for security


def no_jitter(delay: float) -> float:
    return delay


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds: ``"2"``, ``"0.5"`` or an HTTP date. None when absent or unreadable."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        if now is None:
            import time

            now = time.time()
        seconds = when.timestamp() - now
    if seconds != seconds or seconds < 0:  # NaN or in the past
        return 0.0
    return seconds


@dataclass(frozen=True)
class RetryPolicy:
    """``decide`` says how long to wait before the next attempt, or None to stop."""

    #: total attempts, the first included
    max_attempts: int = 5
    #: never schedule a retry that would end later than this after the first attempt started
    max_total_seconds: float = 60.0
    #: first backoff delay without Retry-After, doubled on each attempt
    base: float = 0.5
    #: upper bound of one backoff delay
    cap: float = 8.0
    #: applied to the exponential delay (not to Retry-After); ``no_jitter`` makes it exact
    jitter: Callable[[float], float] = field(default=full_jitter, compare=False)
    #: statuses worth another attempt; 429 and 503 for any request, the others only when safe
    retry_statuses: frozenset[int] = RETRY_STATUSES

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.max_total_seconds < 0 or self.base < 0 or self.cap < 0:
            raise ValueError("retry times must not be negative")

    def is_retryable(self, outcome: int | BaseException, safe: bool) -> bool:
        """Would this outcome be retried at all (budget aside)?"""
        if isinstance(outcome, BaseException):
            if isinstance(outcome, NOT_SENT_ERRORS):
                return True
            return safe and isinstance(outcome, MAYBE_SENT_ERRORS)
        if outcome not in self.retry_statuses:
            return False
        # 429 and 503 mean the request was not processed; anything else may have been: only when safe.
        return outcome in (429, 503) or safe

    def backoff(self, attempt: int) -> float:
        """Exponential delay after ``attempt`` (1 = the first attempt failed), before jitter."""
        return float(min(self.cap, self.base * (2 ** max(0, attempt - 1))))

    def decide(
        self,
        attempt: int,
        outcome: int | BaseException,
        retry_after: float | None = None,
        safe: bool = True,
        elapsed: float = 0.0,
    ) -> float | None:
        """Delay in seconds before attempt ``attempt + 1``, or None to give up.

        ``attempt`` is the number of the attempt that just failed (1-based), ``outcome`` its HTTP
        status or exception, ``retry_after`` the parsed header, ``safe`` whether the request may be
        repeated, ``elapsed`` seconds since the first attempt started.
        """
        if attempt >= self.max_attempts or not self.is_retryable(outcome, safe):
            return None
        if retry_after is not None:
            delay = max(0.0, retry_after)
        else:
            delay = max(0.0, self.jitter(self.backoff(attempt)))
        if elapsed + delay > self.max_total_seconds:
            return None
        return delay


#: Never retry (for callers that do their own).
NO_RETRY = RetryPolicy(max_attempts=1)
