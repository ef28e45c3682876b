"""What callers see of their limits: standing headers, refusals, and the usage document.

Header shapes are those of Claude Code's gateway contract ("Usage-limit headers"): the
caller's fullest budget is described; upstream `anthropic-ratelimit-*` headers are dropped
wherever Gatepass sends its own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gatepass.limits.plan import Decision, Plan, Refusal, ScopePlan, Used
from gatepass.limits.pricing import NANO_PER_CENT, NANO_PER_USD
from gatepass.proxy.errors import GatewayError

WARN_AT = (0.95, 0.75)  # utilisation thresholds the client shows a notice past
Headers = list[tuple[bytes, bytes]]


@dataclass(frozen=True, slots=True)
class Standing:
    scope: ScopePlan
    utilization: float  # fraction of the fullest of the scope's budgets
    used: Used


def standings(plan: Plan, used: list[Used]) -> list[Standing]:
    """One entry per scope that has a budget."""
    out = []
    for scope, spent in zip(plan.scopes, used, strict=True):
        caps = scope.caps
        fractions = [
            spent.tokens / caps.budget_tokens if caps.budget_tokens else None,
            spent.nano / caps.budget_nano if caps.budget_nano else None,
        ]
        known = [f for f in fractions if f is not None]
        if caps.has_budget:
            full = max(known) if known else 1.0  # a zero budget is full
            out.append(Standing(scope, full, spent))
    return out


def _h(name: str, value: str | int | float) -> tuple[bytes, bytes]:
    return (f"anthropic-ratelimit-unified-{name}".encode(), str(value).encode())


def standing_headers(plan: Plan, used: list[Used]) -> Headers:
    """Headers for a successful response; empty for a caller with no budget."""
    rows = standings(plan, used)
    if not rows:
        return []
    fullest = max(rows, key=lambda s: s.utilization)
    utilization = fullest.utilization
    status = "allowed_warning" if utilization >= WARN_AT[-1] else "allowed"
    reset = fullest.scope.window[1]
    headers = [
        _h("status", status),
        _h("representative-claim", "overage"),
        _h("overage-status", status),
        _h("overage-utilization", f"{min(math.floor(utilization * 100) / 100, 0.99):.2f}"),
        _h("reset", reset),
        _h("overage-reset", reset),
    ]
    passed = next((t for t in WARN_AT if utilization >= t), None)
    if passed is not None:
        headers.append(_h("overage-surpassed-threshold", passed))
    return headers


def _when(moment: int) -> str:
    at = datetime.fromtimestamp(moment, UTC)
    day = f"{at:%b} {at.day}"
    return day if (at.hour, at.minute) == (0, 0) else f"{day}, {at:%H:%M} UTC"


def _usd(nano: int) -> str:
    return f"${nano / NANO_PER_USD:,.2f}"


def refusal(plan: Plan, decision: Decision, help_text: str) -> GatewayError:
    """The 429 for a refused admission: `billing_error` for a spent budget, else throttling."""
    worst = decision.worst()
    scope = plan.scopes[worst.scope]
    if worst.billing:
        return _billing(plan, scope, worst, help_text)
    caps = scope.caps
    who = scope.label
    seconds = worst.retry_after
    messages = {
        "concurrency": f"Too many requests in progress for {who} (at most {caps.max_concurrent})",
        "rpm": f"Request rate limit for {who} reached ({caps.rpm} per minute)",
        "tpm": f"Token rate limit for {who} reached ({caps.tpm:,} tokens per minute)"
        if caps.tpm is not None
        else "",
        "held": f"What is left of the limits of {who} is held by requests in progress",
    }
    message = f"{messages[worst.reason]}; retry in {seconds} s"
    return GatewayError(
        429, "rate_limit_error", message, headers=[(b"retry-after", str(seconds).encode())]
    )


def _billing(plan: Plan, scope: ScopePlan, worst: Refusal, help_text: str) -> GatewayError:
    caps = scope.caps
    every = plan.period.describe()
    if worst.reason == "budget_usd" and caps.budget_nano is not None:
        what = f"spend limit of {_usd(caps.budget_nano)} per {every}"
    else:
        what = f"token limit of {caps.budget_tokens or 0:,} tokens per {every}"
    owner = f"the budget {scope.label} shares" if scope.group_pool else scope.label
    reset = scope.window[1]
    message = f"{what.capitalize()} reached for {owner} · resets {_when(reset)} · {help_text}"
    headers: Headers = [
        (b"retry-after", str(worst.retry_after).encode()),
        _h("status", "rejected"),
        _h("reset", reset),
        _h("overage-reset", reset),
        _h("overage-utilization", 1),
        _h("overage-surpassed-threshold", 1),
        _h("overage-period", plan.period.overage_period),
        _h("overage-disabled-reason", "org_spend_cap_reached"),
    ]
    if scope.group_pool:
        headers.append(_h("overage-scope", "group_pool"))
    return GatewayError(429, "billing_error", message, headers=headers, retry=False)


def unavailable() -> GatewayError:
    return GatewayError(
        503,
        "api_error",
        "Usage limits cannot be checked right now (the limits store is unreachable); "
        "try again shortly",
        headers=[(b"retry-after", b"1")],
    )


def _cents(nano: int) -> float:
    return round(nano / NANO_PER_CENT, 2)


def _iso(moment: int) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def usage_with_caps(plan: Plan, used: list[Used]) -> dict[str, Any] | None:
    """`GET /api/oauth/usage` for a caller with USD budgets; None when they have none."""
    rows = [s for s in standings(plan, used) if s.scope.caps.budget_nano is not None]
    if not rows:
        return None
    fullest = max(rows, key=lambda s: s.used.nano / (s.scope.caps.budget_nano or 1))
    limits = []
    for row in rows:
        limit = row.scope.caps.budget_nano or 0
        percent = math.floor(row.used.nano * 100 / limit) if limit else 100
        limits.append(
            {
                "kind": "spend",
                "group": plan.period.overage_period,
                "percent": percent,
                "resets_at": _iso(row.scope.window[1]),
                "severity": "normal" if percent < 75 else "warning",
                "is_active": row is fullest,
            }
        )
    limit = fullest.scope.caps.budget_nano or 0
    return {
        "extra_usage": {
            "is_enabled": True,
            "monthly_limit": _cents(limit),
            "used_credits": _cents(fullest.used.nano),
            "utilization": math.floor(fullest.used.nano * 100 / limit) if limit else 100,
            "currency": "USD",
        },
        "limits": limits,
    }


def usage_without_caps(month: int, day: int, week: int) -> dict[str, Any]:
    """`GET /api/oauth/usage` for a caller with no USD budget: spend in cents, no limit."""
    return {
        "extra_usage": {
            "is_enabled": True,
            "monthly_limit": None,
            "used_credits": _cents(month),
            "utilization": None,
            "currency": "USD",
            "daily": {"limit": None, "used_credits": _cents(day), "utilization": None},
            "weekly": {"limit": None, "used_credits": _cents(week), "utilization": None},
        },
        "limits": [],
    }
