"""Fault injection and throttling settings, and the token buckets that enforce ``throttleRps``."""

from __future__ import annotations

import dataclasses
import math
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from meetgate.errors import MeetgateError
from meetgate_sandbox.meeting_settings import SETTING_KEYS as MEETING_SETTING_KEYS
from meetgate_sandbox.meeting_settings import MeetingSandboxSettings

#: which requests faults apply to
FAULT_PATHS = ("graph", "token", "all")
#: the behaviour profiles of ``SandboxSettings.profile``: fast defaults for tests, or Microsoft's
#: documented figures (:mod:`meetgate_sandbox.realistic`)
PROFILES = ("fast", "realistic")


class SettingsError(MeetgateError, ValueError):
    """A control-API settings body is invalid; the message names the field."""


def _number(data: Mapping[str, Any], key: str, default: float, *, low: float, high: float) -> float:
    value = data.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise SettingsError(f"{key} must be a number, got {value!r}")
    if not low <= value <= high:
        raise SettingsError(f"{key} must be between {low:g} and {high:g}, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class FaultSettings:
    """Server-wide faults (``PUT /_sandbox/faults``); the defaults inject nothing."""

    #: probability that a request answers 500, 503 (half of them with Retry-After) or 504
    error_rate: float = 0.0
    #: added latency per request, milliseconds
    latency_ms: float = 0.0
    #: probability that the TCP connection is closed without any response
    drop_rate: float = 0.0
    #: probability that a write (POST, PATCH, PUT, DELETE) is carried out and its answer then lost: the
    #: client gets 500 or 504 (as from a gateway that timed out after the service did the work)
    lost_answer_rate: float = 0.0
    #: requests per second allowed per (tenant, app); None = unlimited
    throttle_rps: float | None = None
    #: ``graph`` (/v1.0, /beta), ``token`` (the token endpoint) or ``all``
    paths: str = "graph"
    #: seed for the fault dice (None = unpredictable)
    seed: int | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FaultSettings:
        known = {"errorRate", "latencyMs", "dropRate", "lostAnswerRate", "throttleRps", "paths", "seed"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise SettingsError(f"unknown fault setting(s) {unknown}; known: {sorted(known)}")
        throttle = data.get("throttleRps")
        paths = data.get("paths") or "graph"
        if paths not in FAULT_PATHS:
            raise SettingsError(f"paths must be one of {', '.join(FAULT_PATHS)}, got {paths!r}")
        seed = data.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise SettingsError(f"seed must be an integer, got {seed!r}")
        return cls(
            error_rate=_number(data, "errorRate", 0.0, low=0.0, high=1.0),
            latency_ms=_number(data, "latencyMs", 0.0, low=0.0, high=60_000.0),
            drop_rate=_number(data, "dropRate", 0.0, low=0.0, high=1.0),
            lost_answer_rate=_number(data, "lostAnswerRate", 0.0, low=0.0, high=1.0),
            throttle_rps=None
            if throttle is None
            else _number(data, "throttleRps", 0.0, low=0.001, high=1_000_000.0),
            paths=str(paths),
            seed=seed,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "errorRate": self.error_rate,
            "latencyMs": self.latency_ms,
            "dropRate": self.drop_rate,
            "lostAnswerRate": self.lost_answer_rate,
            "throttleRps": self.throttle_rps,
            "paths": self.paths,
            "seed": self.seed,
        }

    def applies_to(self, kind: str) -> bool:
        """``kind`` is ``graph`` or ``token``."""
        return self.paths == "all" or self.paths == kind


@dataclass(frozen=True)
class SandboxSettings:
    """``PUT /_sandbox/settings``."""

    #: how long a policy change takes to reach Graph (the policy engine reads this)
    policy_delay_seconds: float = 0.0
    #: lifetime of issued access tokens
    access_token_lifetime_seconds: int = 3599
    #: how far the sandbox's token clock runs ahead of real time (tokens expire without waiting)
    clock_offset_seconds: float = 0.0
    #: switches of the online-meeting routes (``policyErrorVariant``, ``upnInPath``, ...)
    meetings: MeetingSandboxSettings = field(default_factory=MeetingSandboxSettings)
    #: ``fast`` (the settings above) or ``realistic`` (Microsoft's documented delays, token lifetimes
    #: and throttling limits, see :mod:`meetgate_sandbox.realistic`)
    profile: str = "fast"
    #: realistic profile: documented durations are divided by this (300: 30 minutes become 6 s)
    time_compression: float = 300.0
    #: realistic profile: seed of the random draws (None = unpredictable)
    profile_seed: int | None = None
    #: realistic profile: the documented throttling limits are multiplied by this (1 = as documented)
    throttle_scale: float = 1.0

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], base: SandboxSettings | None = None) -> SandboxSettings:
        known = {
            "policyDelaySeconds",
            "accessTokenLifetimeSeconds",
            "clockOffsetSeconds",
            "profile",
            "timeCompression",
            "profileSeed",
            "throttleScale",
            *MEETING_SETTING_KEYS,
        }
        unknown = sorted(set(data) - known)
        if unknown:
            raise SettingsError(f"unknown setting(s) {unknown}; known: {sorted(known)}")
        current = base or cls()
        meetings = dataclasses.replace(current.meetings)
        try:
            meetings.update(data)
        except ValueError as exc:
            raise SettingsError(str(exc)) from None
        lifetime = _number(
            data,
            "accessTokenLifetimeSeconds",
            current.access_token_lifetime_seconds,
            low=1,
            high=86_400,
        )
        profile = data.get("profile", current.profile)
        if profile not in PROFILES:
            raise SettingsError(f"profile must be one of {', '.join(PROFILES)}, got {profile!r}")
        seed = data.get("profileSeed", current.profile_seed)  # an explicit null clears it
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise SettingsError(f"profileSeed must be an integer or null, got {seed!r}")
        return cls(
            policy_delay_seconds=_number(
                data, "policyDelaySeconds", current.policy_delay_seconds, low=0.0, high=86_400.0
            ),
            access_token_lifetime_seconds=int(lifetime),
            clock_offset_seconds=_number(
                data, "clockOffsetSeconds", current.clock_offset_seconds, low=-86_400.0, high=31_622_400.0
            ),
            meetings=meetings,
            profile=str(profile),
            time_compression=_number(
                data, "timeCompression", current.time_compression, low=1.0, high=1_000_000.0
            ),
            profile_seed=seed,
            throttle_scale=_number(data, "throttleScale", current.throttle_scale, low=0.0001, high=1000.0),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "policyDelaySeconds": self.policy_delay_seconds,
            "accessTokenLifetimeSeconds": self.access_token_lifetime_seconds,
            "clockOffsetSeconds": self.clock_offset_seconds,
            **self.meetings.to_json(),
            "profile": self.profile,
            "timeCompression": self.time_compression,
            "profileSeed": self.profile_seed,
            "throttleScale": self.throttle_scale,
        }

    @property
    def realistic(self) -> bool:
        return self.profile == "realistic"


@dataclass(frozen=True)
class InjectedFault:
    """What the dice decided for one request."""

    kind: str  # "drop" | "error" | "lost" (carried out, then answered ``status``)
    status: int = 0
    retry_after: str | None = None


class FaultDice:
    """Rolls the configured probabilities; one generator so a seed makes runs repeatable."""

    def __init__(self, settings: FaultSettings) -> None:
        self.settings = settings
        self._rng = random.Random(settings.seed)  # noqa: S311 - fault dice, not security

    def roll(self, method: str = "GET") -> InjectedFault | None:
        """The fault for one request, if any (``lost`` only for writes: a read has nothing to lose)."""
        s = self.settings
        if s.drop_rate and self._rng.random() < s.drop_rate:
            return InjectedFault("drop")
        if s.error_rate and self._rng.random() < s.error_rate:
            status = self._rng.choice((500, 503, 503, 504))
            retry_after = None
            if status == 503 and self._rng.random() < 0.5:
                retry_after = str(self._rng.choice((1, 2)))
            return InjectedFault("error", status, retry_after)
        if s.lost_answer_rate and method != "GET" and self._rng.random() < s.lost_answer_rate:
            return InjectedFault("lost", self._rng.choice((500, 504)))
        return None


class TokenBucket:
    """``rate`` tokens per second, bursting up to ``capacity`` (default ``max(1, rate)``)."""

    def __init__(
        self, rate: float, clock: Callable[[], float] = time.monotonic, capacity: float | None = None
    ) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate) if capacity is None else capacity
        self.tokens = self.capacity
        self.clock = clock
        self.updated = clock()

    def _refill(self) -> None:
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    def wait(self, cost: float = 1.0) -> float:
        """0 when ``cost`` tokens are available now (none are taken), else the seconds until they are."""
        self._refill()
        cost = min(cost, self.capacity)  # a request dearer than the whole bucket waits for a full one
        if self.tokens >= cost - 1e-9:  # (float rounding of the refill must not refuse a due token)
            return 0.0
        return (cost - self.tokens) / self.rate

    def take(self, cost: float = 1.0) -> float:
        """0 when ``cost`` tokens were taken, else the seconds until they are available."""
        wait = self.wait(cost)
        if wait == 0.0:
            self.tokens = max(0.0, self.tokens - min(cost, self.capacity))
        return wait

    @property
    def used(self) -> float:
        """The share of the bucket in use (0 full, 1 empty), as of the last call."""
        return 1.0 - self.tokens / self.capacity


class Throttler:
    """One bucket per (tenant, app); rebuilt when the rate changes."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._buckets: dict[tuple[str, str], TokenBucket] = {}
        self._rate: float | None = None

    def check(self, rate: float | None, tenant_id: str, app_id: str) -> float:
        """0 when the request may proceed, else the Retry-After in seconds."""
        if rate is None:
            return 0.0
        if rate != self._rate:
            self._buckets.clear()
            self._rate = rate
        key = (tenant_id, app_id.lower())
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(rate, self.clock)
        return bucket.take()


def format_retry_after(seconds: float) -> str:
    """Whole seconds when whole, else up to three decimals (Graph sends integers; clients must cope)."""
    seconds = max(seconds, 0.001)
    if seconds == int(seconds):
        return str(int(seconds))
    return f"{math.ceil(seconds * 1000) / 1000:.3f}".rstrip("0").rstrip(".")
