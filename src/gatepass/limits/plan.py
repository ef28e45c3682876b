"""What the backends are asked and what they answer: plans, decisions, refusals.

A `Plan` is one request's admission question, worked out in Python so that both backends
compute nothing but sums: which scopes (the key, and the signed-in user within it), each
scope's limits and current windows, and the reservation (an estimate of tokens and cost).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Literal

from gatepass.limits.caps import Caps, KeyLimits
from gatepass.limits.periods import Period

Reason = Literal[
    "concurrency",  # max_concurrent requests already in flight
    "rpm",  # requests this minute
    "tpm",  # tokens this minute
    "held",  # the rest of a token or budget limit is reserved by requests in flight
    "budget_tokens",  # the period's token budget is spent
    "budget_usd",  # the period's USD budget is spent
]
REASON_CODES: tuple[Reason, ...] = (
    "concurrency",
    "rpm",
    "tpm",
    "held",
    "budget_tokens",
    "budget_usd",
)
BILLING: frozenset[Reason] = frozenset({"budget_tokens", "budget_usd"})


@dataclass(frozen=True, slots=True)
class ScopePlan:
    name: str  # stable id: "{k42}" or "{k42}:u:<hash>" (the braces are a Redis hash tag)
    label: str  # for messages: "key 'team'" or "alice@corp.example"
    caps: Caps
    window: tuple[int, int]  # budget window (start, end), Unix seconds
    window_id: str  # period and start, e.g. "1mo:1788220800"
    group_pool: bool  # a budget the whole group shares, not the user's own
    key_id: int
    user_email: str | None


@dataclass(frozen=True, slots=True)
class Plan:
    request_id: str
    now: float  # Unix seconds, from the limiter's clock
    minute: int  # start of the current minute, Unix seconds
    period: Period
    scopes: tuple[ScopePlan, ...]
    tokens: int  # reservation: estimated tokens
    nano: int  # reservation: estimated cost, nano-USD
    lease: float  # seconds a reservation lives if the request is never settled


@dataclass(frozen=True, slots=True)
class Refusal:
    scope: int  # index into Plan.scopes
    reason: Reason
    retry_after: int  # whole seconds, at least 1

    @property
    def billing(self) -> bool:
        return self.reason in BILLING


@dataclass(frozen=True, slots=True)
class Used:
    """Committed spend in a scope's budget window (reservations not included)."""

    tokens: int = 0
    nano: int = 0


@dataclass(slots=True)
class Decision:
    allowed: bool
    used: list[Used] = field(default_factory=list)  # one per scope
    refusals: list[Refusal] = field(default_factory=list)
    unseeded: list[int] = field(default_factory=list)  # scopes whose window needs seeding

    def worst(self) -> Refusal:
        """A spent budget wins over throttling; among budgets, the one that resets last."""
        billing = [r for r in self.refusals if r.billing]
        pool = billing or self.refusals
        return max(pool, key=lambda r: r.retry_after)


def scopes_for(
    limits: KeyLimits,
    *,
    key_id: int,
    key_name: str,
    user_email: str | None,
    now: float,
) -> tuple[ScopePlan, ...]:
    """The scopes a request counts against: the key, and the user within it if signed in."""
    window = limits.period.window(now, limits.anchor)
    window_id = f"{limits.period}{'r' if limits.anchor is not None else ''}:{window[0]}"
    scopes = []
    base = f"{{k{key_id}}}"
    if not limits.key.is_empty:
        scopes.append(
            ScopePlan(
                base,
                f"key '{key_name}'",
                limits.key,
                window,
                window_id,
                user_email is not None,
                key_id,
                None,
            )
        )
    if user_email is not None and not limits.user.is_empty:
        digest = hashlib.sha256(user_email.lower().encode()).hexdigest()[:20]
        scopes.append(
            ScopePlan(
                f"{base}:u:{digest}",
                user_email,
                limits.user,
                window,
                window_id,
                False,
                key_id,
                user_email,
            )
        )
    return tuple(scopes)
