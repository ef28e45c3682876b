"""Counters in Redis, shared by every replica: each admission and each settlement is one
EVALSHA of a Lua script (`lua`), so checks and reservations are atomic across replicas."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from gatepass.limits import lua
from gatepass.limits.backend import BackendUnavailable
from gatepass.limits.memory import KEEP_WINDOWS
from gatepass.limits.plan import REASON_CODES, Decision, Plan, Refusal, ScopePlan, Used


def _limit(value: int | None) -> str:
    return "" if value is None else str(value)


class RedisBackend:
    def __init__(self, url: str, *, prefix: str, timeout: float, connections: int) -> None:
        self._prefix = prefix
        # A burst beyond `connections` waits its turn (up to `timeout`): redis-py's default
        # pool refuses it instead, which would read as Redis being down and fail requests.
        pool = aioredis.BlockingConnectionPool.from_url(
            url,
            max_connections=connections,
            timeout=timeout,  # seconds to wait for a free connection
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 1),  # one immediate retry: a pooled socket may be stale
        )
        self._client: aioredis.Redis = aioredis.Redis.from_pool(pool)
        self._admit = self._client.register_script(lua.ADMIT)
        self._settle = self._client.register_script(lua.SETTLE)
        self._seed = self._client.register_script(lua.SEED)

    def _keys(self, plan: Plan, scope: ScopePlan) -> list[str]:
        base = self._prefix + scope.name
        return [f"{base}:res", f"{base}:b:{scope.window_id}", f"{base}:m:{plan.minute}"]

    def _budget_ttl_ms(self, plan: Plan, scope: ScopePlan) -> str:
        return str(int((scope.window[1] - plan.now + KEEP_WINDOWS) * 1000))

    async def _run(self, script: Any, keys: list[str], args: list[str]) -> Any:
        try:
            return await script(keys=keys, args=args)
        except (RedisError, OSError) as exc:
            raise BackendUnavailable(f"{exc.__class__.__name__}: {exc}") from exc

    async def _evaluate(self, plan: Plan, peek: bool) -> Decision:
        now_ms = int(plan.now * 1000)
        keys: list[str] = []
        args = [
            str(now_ms),
            plan.request_id,
            str(int((plan.now + plan.lease) * 1000)),
            str(plan.tokens),
            str(plan.nano),
            str(plan.minute),
            str((plan.minute + 60) * 1000),
            str(len(plan.scopes)),
            "1" if peek else "0",
        ]
        for scope in plan.scopes:
            keys += self._keys(plan, scope)
            caps = scope.caps
            args += [
                _limit(caps.max_concurrent),
                _limit(caps.rpm),
                _limit(caps.tpm),
                _limit(caps.budget_tokens),
                _limit(caps.budget_nano),
                scope.window_id,
                str(scope.window[1] * 1000),
                str(int(plan.lease * 1000)),
            ]
        reply = await self._run(self._admit, keys, args)
        try:
            allowed, unseeded, used, refusals = reply
            return Decision(
                allowed=allowed == 1,
                used=[Used(int(used[i]), int(used[i + 1])) for i in range(0, len(used), 2)],
                refusals=[
                    Refusal(
                        int(refusals[i]), REASON_CODES[int(refusals[i + 1])], int(refusals[i + 2])
                    )
                    for i in range(0, len(refusals), 3)
                ],
                unseeded=[int(i) for i in unseeded],
            )
        except (ValueError, TypeError, IndexError) as exc:
            raise BackendUnavailable(
                f"unexpected reply from the admission script: {reply!r}"
            ) from exc

    async def admit(self, plan: Plan) -> Decision:
        return await self._evaluate(plan, peek=False)

    async def peek(self, plan: Plan) -> Decision:
        return await self._evaluate(plan, peek=True)

    async def settle(self, plan: Plan, tokens: int, nano: int, *, first: bool = True) -> None:
        keys: list[str] = []
        args = [
            plan.request_id,
            "1" if first else "0",
            str(tokens),
            str(nano),
            str(len(plan.scopes)),
        ]
        for scope in plan.scopes:
            keys += self._keys(plan, scope)
            args += [
                "1" if scope.caps.has_budget else "0",
                "1" if scope.caps.tpm is not None else "0",
                self._budget_ttl_ms(plan, scope),
            ]
        await self._run(self._settle, keys, args)

    async def seed(self, plan: Plan, scope: int, used: Used) -> None:
        target = plan.scopes[scope]
        key = self._keys(plan, target)[1]
        args = [str(used.tokens), str(used.nano), self._budget_ttl_ms(plan, target)]
        await self._run(self._seed, [key], args)

    async def close(self) -> None:
        await self._client.aclose()
