"""The limits a virtual key carries: one set for the key, one for each of its users."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from gatepass.limits.periods import Period
from gatepass.limits.pricing import NANO_PER_USD
from gatepass.store.models import VirtualKey

DEFAULT_PERIOD = Period(1, "mo")


@dataclass(frozen=True, slots=True)
class Caps:
    """Limits on one scope (a key, or one user of a key); None means no limit."""

    budget_nano: int | None = None  # nano-USD per period
    budget_tokens: int | None = None  # per period
    rpm: int | None = None  # requests per minute
    tpm: int | None = None  # tokens per minute
    max_concurrent: int | None = None

    @property
    def has_budget(self) -> bool:
        return self.budget_nano is not None or self.budget_tokens is not None

    @property
    def is_empty(self) -> bool:
        return not self.has_budget and (self.rpm, self.tpm, self.max_concurrent) == (
            None,
            None,
            None,
        )


@dataclass(frozen=True, slots=True)
class KeyLimits:
    key: Caps
    user: Caps  # applied to each signed-in user separately; static callers have no user
    period: Period = DEFAULT_PERIOD
    anchor: float | None = None  # Unix seconds; set for rolling periods

    def applies_to(self, user_email: str | None) -> bool:
        return not self.key.is_empty or (user_email is not None and not self.user.is_empty)


def usd_to_nano(value: float | Decimal | str) -> int:
    return int((Decimal(str(value)) * NANO_PER_USD).to_integral_value())


def _nano(value: float | None) -> int | None:
    return None if value is None else usd_to_nano(value)


def limits_from_key(row: VirtualKey) -> KeyLimits | None:
    """The row's limits, or None when it has none (the hot path then skips the limiter)."""
    key = Caps(_nano(row.budget_usd), row.budget_tokens, row.rpm, row.tpm, row.max_concurrent)
    user = Caps(
        _nano(row.user_budget_usd),
        row.user_budget_tokens,
        row.user_rpm,
        row.user_tpm,
        row.user_max_concurrent,
    )
    if key.is_empty and user.is_empty:
        return None
    period = Period.parse(row.budget_period) if row.budget_period else DEFAULT_PERIOD
    anchor = None
    if row.budget_rolling:
        moment = row.budget_anchor_at or row.created_at
        anchor = moment.timestamp()
    return KeyLimits(key, user, period, anchor)
