"""Limits as an operator gives them (CLI flags, `apply` files, the admin API), and how they
land on a key's row. A field left out changes nothing; `"off"` removes that limit."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from gatepass.limits.caps import DEFAULT_PERIOD
from gatepass.limits.periods import Period
from gatepass.store.models import VirtualKey

Off = Literal["off"]
Usd = Annotated[Decimal, Field(ge=0, le=10**9, decimal_places=6)] | Off | None
Tokens = Annotated[int, Field(ge=0, le=2**53)] | Off | None
Rate = Annotated[int, Field(ge=1, le=2**40)] | Off | None

# spec field → VirtualKey column
COLUMNS = {
    "budget_usd": "budget_usd",
    "budget_tokens": "budget_tokens",
    "rpm": "rpm",
    "tpm": "tpm",
    "max_concurrent": "max_concurrent",
    "per_user_budget_usd": "user_budget_usd",
    "per_user_budget_tokens": "user_budget_tokens",
    "per_user_rpm": "user_rpm",
    "per_user_tpm": "user_tpm",
    "per_user_max_concurrent": "user_max_concurrent",
}


class LimitSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    budget_usd: Usd = None
    budget_tokens: Tokens = None
    period: str | None = None  # 1m … 1mo; budgets default to 1mo
    reset: Literal["calendar", "rolling"] | None = None
    rpm: Rate = None
    tpm: Rate = None
    max_concurrent: Rate = None
    per_user_budget_usd: Usd = None
    per_user_budget_tokens: Tokens = None
    per_user_rpm: Rate = None
    per_user_tpm: Rate = None
    per_user_max_concurrent: Rate = None

    @field_validator("period")
    @classmethod
    def _period(cls, value: str | None) -> str | None:
        return None if value is None else str(Period.parse(value))

    @field_validator("*", mode="before")
    @classmethod
    def _off(cls, value: object) -> object:
        if isinstance(value, str) and value.strip().lower() in ("off", "none"):
            return "off"
        return value

    def is_empty(self) -> bool:
        return not self.model_fields_set

    def apply_to(self, key: VirtualKey, now: datetime) -> None:
        """Write the given limits onto `key`; a new rolling period starts from `now`."""
        before = (key.budget_period, key.budget_rolling)
        for name, column in COLUMNS.items():
            value = getattr(self, name)
            if value is None:
                continue
            if value == "off":
                setattr(key, column, None)
            elif isinstance(value, Decimal):
                setattr(key, column, float(value))
            else:
                setattr(key, column, value)
        if self.period is not None:
            key.budget_period = self.period
        if self.reset is not None:
            key.budget_rolling = self.reset == "rolling"
        changed = (key.budget_period, key.budget_rolling) != before
        if key.budget_rolling and (changed or key.budget_anchor_at is None):
            key.budget_anchor_at = now
        budgets = (key.budget_usd, key.budget_tokens, key.user_budget_usd, key.user_budget_tokens)
        if key.budget_period is None and any(b is not None for b in budgets):
            key.budget_period = str(DEFAULT_PERIOD)

    @staticmethod
    def describe(key: VirtualKey) -> dict[str, object]:
        """The key's limits as shown by `keys list --json` (only those that are set)."""
        shown: dict[str, object] = {}
        for name, column in COLUMNS.items():
            value = getattr(key, column)
            if value is not None:
                shown[name] = value
        if shown:
            shown["period"] = key.budget_period or str(DEFAULT_PERIOD)
            shown["reset"] = "rolling" if key.budget_rolling else "calendar"
        return shown
