"""Counters in this process's memory: exact, and atomic because admission never awaits.

For one process (the SQLite deployment). Spent budgets survive restarts because each budget
window is seeded from the request log the first time it is used.
"""

from __future__ import annotations

from dataclasses import dataclass

from gatepass.limits.backend import seconds_until
from gatepass.limits.plan import Decision, Plan, Reason, Refusal, Used

GC_EVERY = 60.0  # seconds between sweeps of finished windows and minutes
KEEP_WINDOWS = 86400  # seconds a finished budget window is kept for late settlements


@dataclass(slots=True)
class _Hold:
    expires: float
    window_id: str
    minute: int
    tokens: int
    nano: int


@dataclass(slots=True)
class _Window:
    end: int
    tokens: int = 0
    nano: int = 0
    seeded: bool = False


def _check(
    count: int, held: int, want: int, limit: int | None, reason: Reason, reset: float, now: float
) -> tuple[Reason, int] | None:
    """A counter's refusal, if any: spent, or the rest held by requests in flight."""
    if limit is None:
        return None
    if count >= limit:
        return reason, seconds_until(reset, now)
    if held > 0 and count + held + want > limit:
        return "held", 1
    return None


class MemoryBackend:
    def __init__(self) -> None:
        self._holds: dict[str, dict[str, _Hold]] = {}
        self._windows: dict[tuple[str, str], _Window] = {}
        self._minutes: dict[tuple[str, int], list[int]] = {}  # [requests, tokens]
        self._swept = 0.0

    async def admit(self, plan: Plan) -> Decision:
        return self.admit_now(plan)

    def admit_now(self, plan: Plan) -> Decision:
        """`admit` without the coroutine: the check and the reservation in one step."""
        self._sweep(plan.now)
        decision = self.peek_now(plan)
        if decision.unseeded:
            return decision
        now, minute_end = plan.now, plan.minute + 60
        for index, scope in enumerate(plan.scopes):
            caps, used = scope.caps, decision.used[index]
            holds = self._live(scope.name, now)
            found: list[tuple[Reason, int] | None] = []
            if caps.max_concurrent is not None and len(holds) >= caps.max_concurrent:
                found.append(("concurrency", 1))
            counts = self._minutes.get((scope.name, plan.minute), [0, 0])
            if caps.rpm is not None and counts[0] >= caps.rpm:
                found.append(("rpm", seconds_until(minute_end, now)))
            if caps.tpm is not None:
                held = sum(h.tokens for h in holds.values() if h.minute == plan.minute)
                found.append(_check(counts[1], held, plan.tokens, caps.tpm, "tpm", minute_end, now))
            if caps.has_budget:
                mine = [h for h in holds.values() if h.window_id == scope.window_id]
                reset = scope.window[1]
                held_tokens = sum(h.tokens for h in mine)
                held_nano = sum(h.nano for h in mine)
                found.append(
                    _check(
                        used.tokens,
                        held_tokens,
                        plan.tokens,
                        caps.budget_tokens,
                        "budget_tokens",
                        reset,
                        now,
                    )
                )
                found.append(
                    _check(
                        used.nano, held_nano, plan.nano, caps.budget_nano, "budget_usd", reset, now
                    )
                )
            decision.refusals += [Refusal(index, *f) for f in found if f is not None]
        if decision.refusals:
            return decision
        for scope in plan.scopes:
            self._holds.setdefault(scope.name, {})[plan.request_id] = _Hold(
                now + plan.lease, scope.window_id, plan.minute, plan.tokens, plan.nano
            )
            if scope.caps.rpm is not None:
                self._minutes.setdefault((scope.name, plan.minute), [0, 0])[0] += 1
        decision.allowed = True
        return decision

    async def settle(self, plan: Plan, tokens: int, nano: int, *, first: bool = True) -> None:
        for scope in plan.scopes:
            hold = self._holds.get(scope.name, {}).pop(plan.request_id, None)
            if hold is None and not first:
                continue
            if scope.caps.has_budget:
                window = self._window(scope.name, scope.window_id, scope.window[1])
                window.tokens += tokens
                window.nano += nano
            if scope.caps.tpm is not None:
                self._minutes.setdefault((scope.name, plan.minute), [0, 0])[1] += tokens

    async def seed(self, plan: Plan, scope: int, used: Used) -> None:
        target = plan.scopes[scope]
        window = self._window(target.name, target.window_id, target.window[1])
        if not window.seeded:
            window.tokens += used.tokens
            window.nano += used.nano
            window.seeded = True

    async def peek(self, plan: Plan) -> Decision:
        return self.peek_now(plan)

    def peek_now(self, plan: Plan) -> Decision:
        decision = Decision(False)
        for index, scope in enumerate(plan.scopes):
            window = self._windows.get((scope.name, scope.window_id))
            if scope.caps.has_budget and (window is None or not window.seeded):
                decision.unseeded.append(index)
            decision.used.append(Used() if window is None else Used(window.tokens, window.nano))
        return decision

    async def close(self) -> None:
        return None

    def _window(self, name: str, window_id: str, end: int) -> _Window:
        return self._windows.setdefault((name, window_id), _Window(end))

    def _live(self, name: str, now: float) -> dict[str, _Hold]:
        holds = self._holds.get(name)
        if holds is None:
            return {}
        for request_id in [r for r, h in holds.items() if h.expires <= now]:
            del holds[request_id]
        return holds

    def _sweep(self, now: float) -> None:
        if now - self._swept < GC_EVERY:
            return
        self._swept = now
        for window in [k for k, w in self._windows.items() if w.end + KEEP_WINDOWS < now]:
            del self._windows[window]
        for minute in [k for k in self._minutes if k[1] + 120 < now]:
            del self._minutes[minute]
        for name in [n for n, holds in self._holds.items() if not holds]:
            del self._holds[name]
