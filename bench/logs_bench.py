"""`/logs` at scale: p50/p99 of the admin request-log viewer's queries over N request-log rows.

    python bench/logs_bench.py --rows 50000          # a quick look; prints one JSON object
    python bench/run.py                              # the full harness runs it with 1,000,000

A fresh SQLite store (the default) is migrated with the real Alembic chain, then seeded:

- `request_log`: `rows` rows over the past week, in time order (ids grow with time, as they
  do when the proxy writes them), inserted with raw sqlite3 executemany in one transaction.
  ~1,000 keys and
  ~5,000 users with a skewed spread (a few heavy users and keys, a long tail), four in five
  requests from signed-in users of team keys and the rest from service keys without a user,
  three models, statuses mostly 200 with some 4xx/5xx, request ids like the proxy's
  (`req_gp_` + 24 hex digits, time first).
- `request_body`: the captured conversation text of every `rows // bodies`-th request, written
  with the app's own `admin_queries.insert_request_bodies`, so the migration's triggers fill
  the FTS5 index `request_body_fts` just as they do in production.

Then every query the `/logs` page runs is timed through the app's own code on an async
SQLAlchemy session (`gatepass.store.db`): `LogsPage._filter` (query string to `LogFilter`,
and the content search when `q` is given), then `admin_queries.search_request_logs` (the
newest page) and `admin_queries.request_log_totals` (the totals line), each figure being one
page load. Parameters vary per iteration, drawn with the same skew as the traffic (so heavy
keys and users come up as often as they would in real use). `/logs` filters by one exact
status, so "errors" are 429, 529, 400 or 500 in turn. No ANALYZE is run: the app never runs
one, so SQLite plans from the schema alone.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

KEYS = 1000
TEAM_KEYS = 800  # keys that signed-in users go through; the other 200 are service keys
USERS = 5000
USER_SHARE = 0.8  # requests made by signed-in users (the rest: service keys, no user)
MODELS = ("claude-sonnet-4-6", "claude-haiku-4-5", "claude-opus-4-7")
MODEL_WEIGHTS = (0.6, 0.3, 0.1)
STATUSES = (200, 429, 529, 400, 500, 401, 413)
STATUS_WEIGHTS = (0.95, 0.02, 0.01, 0.008, 0.005, 0.004, 0.003)
ERROR_STATUSES = (429, 529, 400, 500)  # what an admin filters by when looking for errors
SPAN = timedelta(days=7)
BODY_FRACTION = 10  # one request in ten has a captured body: 100,000 bodies for 1,000,000 rows
ITERATIONS = 200
SEARCH_ITERATIONS = 100
WARM_UP = 3
PAGE_SIZE = 100  # what /logs shows (checked against gatepass.admin.logs_page when measuring)

VOCABULARY = 6000
SYLLABLES = [c + v for c in "bdfgklmnprstvz" for v in ("a", "e", "i", "o", "u", "ai", "ou")]


def _zipf_cumulative(n: int, s: float) -> list[float]:
    """Cumulative weights of ranks 1..n under Zipf's law with exponent `s`."""
    total, out = 0.0, []
    for rank in range(1, n + 1):
        total += 1 / rank**s
        out.append(total)
    return out


def _words(rng: random.Random) -> list[str]:
    """`VOCABULARY` distinct pronounceable words (a stand-in for prose, FTS5 tokenises it)."""
    seen: dict[str, None] = {}
    while len(seen) < VOCABULARY:
        seen["".join(rng.choices(SYLLABLES, k=rng.choice((2, 2, 3, 3, 4))))] = None
    return list(seen)


def _stamp(moment: float) -> str:
    """A Unix time in SQLAlchemy's SQLite format for UTC columns (as the app stores it)."""
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _percentiles(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    rank = max(1, math.ceil(0.99 * len(ordered)))  # nearest rank
    return {
        "p50_ms": round(ordered[len(ordered) // 2] * 1000, 2),
        "p99_ms": round(ordered[rank - 1] * 1000, 2),
    }


class Traffic:
    """Who sends what: the skewed spread of keys, users, models and statuses."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.user_weights = _zipf_cumulative(USERS, 0.9)
        self.service_weights = _zipf_cumulative(KEYS - TEAM_KEYS, 0.9)
        self.users = list(range(USERS))
        random.Random(1).shuffle(self.users)  # the heaviest user is not user 0 (same every run)
        self.services = list(range(TEAM_KEYS, KEYS))

    def who(self) -> tuple[int, str | None]:
        """(key index, user email or None) of one request."""
        rng = self.rng
        if rng.random() < USER_SHARE:
            user = rng.choices(self.users, cum_weights=self.user_weights)[0]
            return user % TEAM_KEYS, f"user{user}@corp.example"
        return rng.choices(self.services, cum_weights=self.service_weights)[0], None


def seed_logs(db: Path, rows: int, every: int, rng: random.Random, now: float) -> list[Any]:
    """`rows` request-log rows over the week before `now`, oldest first, in one transaction.

    Returns (request_id, created_at) of every `every`-th row (0: none), for the bodies."""
    traffic = Traffic(rng)
    start = now - SPAN.total_seconds()
    step = SPAN.total_seconds() / rows
    captured = []
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA synchronous=OFF")
        for first in range(0, rows, 50_000):
            batch = []
            for i in range(first, min(rows, first + 50_000)):
                moment = start + i * step + rng.random() * step  # strictly increasing
                key, email = traffic.who()
                status = rng.choices(STATUSES, STATUS_WEIGHTS)[0]
                ok = status == 200
                inputs = int(rng.lognormvariate(8, 1.2) if ok else rng.lognormvariate(7, 1))
                outputs = int(rng.lognormvariate(6, 1)) if ok else 0
                cache_read = int(inputs * rng.random() * 3) if ok and rng.random() < 0.6 else 0
                latency = rng.lognormvariate(7.5, 0.8) if ok else rng.lognormvariate(4, 1)
                request_id = f"req_gp_{int(moment * 1_000_000):013x}{rng.getrandbits(44):011x}"
                created_at = _stamp(moment)
                batch.append((
                    created_at, request_id, f"req_011C{rng.getrandbits(64):016x}", "POST",
                    "/v1/messages", key + 1, f"key-{key}", email,
                    rng.choices(MODELS, MODEL_WEIGHTS)[0], "anthropic", status,
                    rng.random() < 0.7, round(latency, 1), round(latency * 0.3, 1) if ok else None,
                    inputs, outputs, 0, cache_read,
                    round((inputs * 3 + outputs * 15) / 1e6, 6) if ok else None,
                    None if ok else ("rate_limit_error" if status == 429 else "api_error"),
                    None if ok else f"upstream answered {status}", False,
                ))  # fmt: skip
                if every and i % every == 0:
                    captured.append((request_id, created_at))
            conn.executemany(
                "INSERT INTO request_log (created_at, request_id, upstream_request_id, method,"
                " path, key_id, key_name, user_email, model, provider, status, stream,"
                " latency_ms, ttfb_ms, input_tokens, output_tokens, cache_creation_input_tokens,"
                " cache_read_input_tokens, cost_usd, error_type, error_message,"
                " client_disconnected) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                batch,
            )
    return captured


class Prose:
    """Conversation text drawn from a Zipf-distributed vocabulary, so that some words are in
    a large share of bodies and others in a handful (what content search meets in practice)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.words = _words(rng)
        self.weights = _zipf_cumulative(VOCABULARY, 1.0)

    def text(self, words: int) -> str:
        chosen = self.rng.choices(self.words, cum_weights=self.weights, k=words)
        return " ".join(chosen).capitalize() + "."


async def seed_bodies(sessions: Any, captured: list[tuple[str, str]]) -> int:
    """Captured text of the given requests, written through the app's own insert."""
    from gatepass.store import admin_queries

    prose = Prose(random.Random(11))
    rng = prose.rng
    count = 0
    batch: list[dict[str, Any]] = []
    for request_id, created_at in captured:
        batch.append(
            {
                "request_id": request_id,
                "created_at": datetime.fromisoformat(created_at).replace(tzinfo=UTC),
                "request_text": prose.text(rng.randint(20, 120)),
                "response_text": prose.text(rng.randint(30, 200)),
            }
        )
        if len(batch) == 500:  # the app's log writer inserts a batch like this one at a time
            async with sessions() as session:
                await admin_queries.insert_request_bodies(session, rows=batch)
                await session.commit()
            count += len(batch)
            batch = []
    if batch:
        async with sessions() as session:
            await admin_queries.insert_request_bodies(session, rows=batch)
            await session.commit()
        count += len(batch)
    return count


def _search_words(db: Path, prose: Prose) -> tuple[list[str], list[str], dict[str, int]]:
    """Common words (each in 10-40% of bodies) and the 20 rarest (each in a few hundred of
    100,000 bodies), counted from the FTS index itself."""
    with sqlite3.connect(db) as conn:
        bodies = conn.execute("SELECT count(*) FROM request_body").fetchone()[0]
        conn.execute(
            "CREATE VIRTUAL TABLE temp.fts_vocab USING fts5vocab(main, request_body_fts, row)"
        )
        counts = dict(conn.execute("SELECT term, doc FROM temp.fts_vocab"))
    common = [w for w in prose.words if 0.10 <= counts.get(w, 0) / max(bodies, 1) <= 0.40]
    rare = sorted((w for w in prose.words if counts.get(w)), key=lambda w: counts[w])
    return common[:20], rare[:20], counts


async def measure(db: Path, prose: Prose) -> dict[str, Any]:
    from gatepass.admin import logs_page
    from gatepass.admin.logs_page import LogsPage
    from gatepass.store import admin_queries
    from gatepass.store.db import create_engine, session_maker

    assert logs_page.PAGE_SIZE == PAGE_SIZE, "update PAGE_SIZE here"
    common, rare, doc_counts = _search_words(db, prose)
    rng = random.Random(5)
    traffic = Traffic(rng)
    end = datetime.now(UTC)
    engine = create_engine(f"sqlite+aiosqlite:///{db}")
    sessions = session_maker(engine)
    page = LogsPage(SimpleNamespace(sessions=sessions), None)  # type: ignore[arg-type]

    def key() -> dict[str, str]:
        return {"key": f"key-{traffic.who()[0]}"}

    def user() -> dict[str, str]:
        while True:
            email = traffic.who()[1]
            if email:
                return {"user": email}

    def user_model_window() -> dict[str, str]:
        since = end - SPAN + timedelta(seconds=rng.random() * (SPAN.total_seconds() - 86400))
        return {
            **user(),
            "model": rng.choices(MODELS, MODEL_WEIGHTS)[0],
            "since": since.isoformat(),
            "until": (since + timedelta(days=1)).isoformat(),
        }

    scenarios: dict[str, tuple[Callable[[], dict[str, str]], int]] = {
        "newest_page": (dict, ITERATIONS),
        "by_key": (key, ITERATIONS),
        "by_user": (user, ITERATIONS),
        "user_model_window": (user_model_window, ITERATIONS),
        "errors_by_status": (lambda: {"status": str(rng.choice(ERROR_STATUSES))}, ITERATIONS),
        "by_model": (lambda: {"model": rng.choices(MODELS, MODEL_WEIGHTS)[0]}, ITERATIONS),
        "all_time": (lambda: {"since": "3650d"}, ITERATIONS),  # a whole-table view, asked for
        "search_rare_word": (lambda: {"q": rng.choice(rare)}, SEARCH_ITERATIONS),
        "search_common_word": (lambda: {"q": rng.choice(common)}, SEARCH_ITERATIONS),
    }
    out: dict[str, Any] = {}
    try:
        for name, (params_of, iterations) in scenarios.items():
            pages, searches, rows_times, totals_times, matched = [], [], [], [], []
            for i in range(WARM_UP + iterations):
                params = params_of()
                t0 = time.perf_counter()
                # as the page applies them (its default window), then the search when `q` is set
                chosen = await page._filter(logs_page.windowed(params))
                t1 = t2 = t1_rows = time.perf_counter()
                totals = {"requests": 0}
                if chosen is not None:
                    async with sessions() as session:
                        t1 = time.perf_counter()
                        await admin_queries.search_request_logs(
                            session, chosen, limit=logs_page.PAGE_SIZE
                        )
                        t1_rows = time.perf_counter()
                        totals = await admin_queries.request_log_totals(session, chosen)
                    t2 = time.perf_counter()
                if i < WARM_UP:
                    continue
                pages.append(t2 - t0)
                searches.append(t1 - t0)
                rows_times.append(t1_rows - t1)
                totals_times.append(t2 - t1_rows)
                matched.append(totals["requests"])
            whole = _percentiles(pages)
            out[name] = {
                **whole,
                **({"search": _percentiles(searches)} if name.startswith("search") else {}),
                "rows": _percentiles(rows_times),
                "totals": _percentiles(totals_times),
                "iterations": iterations,
                "matched_median": sorted(matched)[len(matched) // 2],
                "matched_max": max(matched),
            }
            print(
                f"  {name}: p50 {whole['p50_ms']} ms, p99 {whole['p99_ms']} ms",
                file=sys.stderr,
                flush=True,
            )
    finally:
        await engine.dispose()
    out["search_words"] = {
        "common": {"words": len(common), "bodies_each_median": _median(doc_counts, common)},
        "rare": {"words": len(rare), "bodies_each_median": _median(doc_counts, rare)},
    }
    return out


def _median(counts: dict[str, int], words: list[str]) -> int:
    values = sorted(counts.get(w, 0) for w in words)
    return values[len(values) // 2] if values else 0


def log_queries(
    workdir: Path, rows: int, bodies: int | None = None, *, keep: bool = False
) -> dict[str, Any]:
    """Seed `rows` request-log rows (and `bodies` captured bodies, default one in ten) into a
    fresh SQLite store under `workdir`, then time the `/logs` page's queries (p50/p99 ms).
    The store (~730 MiB for 1,000,000 rows) is deleted afterwards unless `keep`."""
    from gatepass.store.db import create_engine, session_maker
    from gatepass.store.migrate import upgrade

    bodies = rows // BODY_FRACTION if bodies is None else bodies
    every = max(1, rows // bodies) if bodies else 0
    db = workdir / "logs.db"
    db.unlink(missing_ok=True)
    upgrade(f"sqlite:///{db}")
    started = time.perf_counter()
    captured = seed_logs(db, rows, every, random.Random(3), time.time())
    logs_seeded = time.perf_counter() - started

    async def fill() -> int:
        engine = create_engine(f"sqlite+aiosqlite:///{db}")
        try:
            return await seed_bodies(session_maker(engine), captured)
        finally:
            await engine.dispose()

    stored = asyncio.run(fill())
    seeded = time.perf_counter() - started
    print(
        f"  seeded {rows:,} rows in {logs_seeded:.1f} s, {stored:,} bodies in "
        f"{seeded - logs_seeded:.1f} s",
        file=sys.stderr,
        flush=True,
    )
    prose = Prose(random.Random(11))  # the same vocabulary seed_bodies drew from
    timed = asyncio.run(measure(db, prose))  # no ANALYZE: the app never runs one either
    size = db.stat().st_size
    if not keep:
        for path in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
            path.unlink(missing_ok=True)
    return {
        "rows": rows,
        "bodies": stored,
        "bodies_of": f"every {every}th request" if every else "none",
        "seed_seconds": round(seeded, 1),
        "store": "sqlite",
        "db_mib": round(size / 2**20, 1),
        "page_size": PAGE_SIZE,
        **timed,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--bodies", type=int, help="captured bodies (default rows / 10)")
    parser.add_argument("--workdir", type=Path, help="default: a new temporary directory")
    parser.add_argument("--keep", action="store_true", help="keep the store (workdir/logs.db)")
    args = parser.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="gatepass-logs-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    json.dump(log_queries(workdir, args.rows, args.bodies, keep=args.keep), sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
