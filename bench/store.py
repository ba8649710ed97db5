"""Benchmark: ``find_orders`` (the lookup every surface calls) on a SQLite store holding a million orders.

Seeds ``--n`` orders (default 1,000,000) into a SQLite file migrated with the real migrations, using
raw ``executemany`` in large transactions, then times ``repo.find_orders`` over random references of
every kind (``#123``, ``123``, Gate UUID, external_ref, idempotency key, an external_ref typed in lower
case, a Gate id's first 8 characters, and misses — which run every fallback) and prints p50 /
p99 / max per kind, overall, and the database file size. The goal is p99 < 5 ms.

    $ python -m bench.store                 # 1,000,000 orders in a temporary directory
    $ python -m bench.store --n 200000 --lookups 5000
    $ python -m bench.store --db /tmp/orders.db --keep   # keep the file; a later run with --reuse skips seeding

Prints figures only; nothing asserts on them. Must not import Slack or the scheduler.
"""

from __future__ import annotations

import argparse
import base64
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.stats import percentile
from gatebot.config import Settings
from gatebot.runtime import build_database
from gatebot.store import repo
from gatebot.store.crypto import FernetCipher, seal_json
from gatebot.store.db import make_engine, upgrade

GOAL_P99_MS = 5.0
_MASK = (1 << 128) - 1
_GATE_MULT = 0x9E3779B97F4A7C15F39CC0605CEDC835
_KEY_MULT = 0xC2B2AE3D27D4EB4F165667B19E3779F9
T_END = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)

COLUMNS = (
    "id", "external_ref", "idempotency_key", "gate_order_id", "product_id", "product_name", "product_type",
    "currency", "amount", "quantity", "estimated_cost", "charged_amount", "balance_before", "balance_after",
    "status", "status_reason", "error_code", "is_test", "request_body_enc", "customer_account_enc",
    "order_content_enc", "requester", "origin_channel", "message_ts", "message_in_dm", "dm_sent", "attempts",
    "next_attempt_at",
    "created_at", "updated_at", "submitted_at", "completed_at", "failed_at",
)  # fmt: skip


# Deterministic, well-spread references derived from the order number (nothing to keep in memory).
def external_ref(i: int) -> str:
    return f"INV-{i:08d}"


def gate_id(i: int) -> str:
    return str(uuid.UUID(int=(i * _GATE_MULT) & _MASK))


def idempotency_key(i: int) -> str:
    return str(uuid.UUID(int=(i * _KEY_MULT + 12345) & _MASK))


_STATUSES = ["completed"] * 90 + ["failed"] * 4 + ["rejected"] * 3 + ["pending"] * 2 + ["waiting_funds"]


def status_of(i: int) -> str:
    """A deterministic status mix (90% completed); rejected orders never reached Gate, so have no Gate id."""
    return _STATUSES[(i * 7919) % len(_STATUSES)]


def _ts(moment: datetime) -> str:
    """SQLite storage format of ``UTCDateTime`` (UTC, no offset)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _rows(n: int, cipher: FernetCipher, rng: random.Random) -> Iterator[tuple[object, ...]]:
    body = seal_json(
        cipher,
        {
            "product_id": 456,
            "currency_code": "USD",
            "external_ref": "INV-00000000",
            "quantity": 1,
            "test": False,
            "topup_request": {"amount": "10.00", "customer_account": {"steam_login": "player123"}},
        },
    )
    account = seal_json(cipher, {"steam_login": "player123", "email": "user@example.com"})
    content = seal_json(cipher, {"vendor_order_id": "LC-123456", "voucher_code": "ABCD-EFGH-IJKL"})
    start = T_END - timedelta(minutes=n)
    for i in range(1, n + 1):
        created = start + timedelta(minutes=i)
        status = status_of(i)
        created_s = _ts(created)
        done_s = _ts(created + timedelta(seconds=90))
        has_gate = status != "rejected"
        yield (
            i, external_ref(i), idempotency_key(i), gate_id(i) if has_gate else None, 456, "Steam Wallet Top Up",
            "direct_top_up", "USD", "10.00", 1, "12.50", "12.50" if has_gate else None,
            "100.00" if has_gate else None, "87.50" if has_gate else None, status,
            "invalid_amount" if status == "rejected" else None, "invalid_amount" if status == "rejected" else None,
            0, body, account, content if status == "completed" else None, f"U{rng.randrange(200):05d}",
            "C0123456789", f"{1_700_000_000 + i}.000100", 0, 1, 1, None,
            created_s, done_s, created_s, done_s if status == "completed" else None,
            done_s if status in ("failed", "rejected") else None,
        )  # fmt: skip


def seed(path: Path, n: int, *, batch: int = 50_000, seed_value: int = 7) -> float:
    """Create the schema with the real migrations, then bulk-insert ``n`` orders. Returns seconds."""
    engine = make_engine(f"sqlite:///{path}")
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    cipher = FernetCipher([base64.urlsafe_b64encode(b"bench-key-bench-key-bench-key-32").decode()])
    rng = random.Random(seed_value)
    started = time.perf_counter()
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA synchronous=OFF")  # seeding only: the bot itself keeps the safe default
        conn.execute("PRAGMA cache_size=-262144")  # 256 MiB while building the indexes
        sql = f"INSERT INTO orders ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
        rows = _rows(n, cipher, rng)
        done = 0
        while done < n:
            chunk = [row for _, row in zip(range(batch), rows, strict=False)]
            conn.execute("BEGIN")
            conn.executemany(sql, chunk)
            conn.execute("COMMIT")
            done += len(chunk)
            print(f"\r  seeded {done:,}/{n:,}", end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)
        conn.execute("ANALYZE")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return time.perf_counter() - started


def _count(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT count(*) FROM orders").fetchone()[0])
    except sqlite3.Error:
        return 0
    finally:
        conn.close()


def _refs(n: int, rng: random.Random) -> dict[str, Callable[[], str]]:
    def pick() -> int:
        return rng.randint(1, n)

    def pick_with_gate_id() -> int:
        while True:
            i = pick()
            if status_of(i) != "rejected":
                return i

    return {
        "#number": lambda: f"#{pick()}",
        "number": lambda: str(pick()),
        "gate uuid": lambda: gate_id(pick_with_gate_id()),
        "external_ref": lambda: external_ref(pick()),
        "idempotency key": lambda: idempotency_key(pick()),
        "ref, lower case": lambda: external_ref(pick()).lower(),
        "gate id prefix": lambda: gate_id(pick_with_gate_id())[:8],
        "miss": lambda: f"NOPE-{rng.getrandbits(64):016x}",
    }


def measure(path: Path, n: int, lookups: int, *, seed_value: int = 11) -> dict[str, list[float]]:
    """Time ``find_orders`` (in ms) per reference kind; a few hundred warm-up lookups are not counted."""
    rng = random.Random(seed_value)
    kinds = _refs(n, rng)
    db = build_database(Settings(_env_file=None, database_url=f"sqlite:///{path}"))
    timings: dict[str, list[float]] = {kind: [] for kind in kinds}
    names = list(kinds)
    try:
        with db.session() as s:
            for _ in range(300):  # warm up connection, statement cache and pages
                repo.find_orders(s, kinds[rng.choice(names)]())
            s.expunge_all()
            for index in range(lookups):
                kind = names[index % len(names)]
                ref = kinds[kind]()
                t0 = time.perf_counter_ns()
                found = repo.find_orders(s, ref)
                elapsed = (time.perf_counter_ns() - t0) / 1e6
                if (not found) != (kind == "miss"):
                    raise AssertionError(f"lookup of a {kind} reference gave {found!r}")
                timings[kind].append(elapsed)
                if index % 1000 == 999:
                    s.expunge_all()  # keep the identity map from growing and caching
    finally:
        db.dispose()
    return timings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=1_000_000, help="orders to seed (default 1,000,000)")
    parser.add_argument("--lookups", type=int, default=20_000, help="find_orders calls to time (default 20,000)")
    parser.add_argument("--db", type=Path, help="SQLite file to use (default: a temporary directory)")
    parser.add_argument("--keep", action="store_true", help="keep the database file afterwards")
    parser.add_argument("--reuse", action="store_true", help="skip seeding when --db already holds --n orders")
    args = parser.parse_args(argv)
    if args.n < 1 or args.lookups < 1:
        parser.error("--n and --lookups must be positive")

    tmp = None if args.db else Path(tempfile.mkdtemp(prefix="gatebot-bench-"))
    path: Path = args.db or (tmp or Path()) / "orders.db"
    try:
        if args.reuse and path.exists() and _count(path) == args.n:
            print(f"reusing {path} ({args.n:,} orders)")
        else:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            print(f"seeding {args.n:,} orders into {path}")
            seconds = seed(path, args.n)
            print(f"seeded in {seconds:.1f} s ({args.n / seconds:,.0f} orders/s)")
        size = sum(Path(f"{path}{s}").stat().st_size for s in ("", "-wal") if Path(f"{path}{s}").exists())
        print(f"database size: {size / 2**20:,.1f} MiB ({size / args.n:,.0f} bytes/order)")

        timings = measure(path, args.n, args.lookups)
        print(f"\nfind_orders, {args.lookups:,} lookups (ms)")
        print(f"{'kind':<16}{'count':>8}{'p50':>9}{'p99':>9}{'max':>9}")
        everything: list[float] = []
        for kind, values in timings.items():
            everything += values
            print(
                f"{kind:<16}{len(values):>8,}{statistics.median(values):>9.3f}{percentile(values, 99):>9.3f}"
                f"{max(values):>9.3f}"
            )
        p99 = percentile(everything, 99)
        print(
            f"{'all':<16}{len(everything):>8,}{statistics.median(everything):>9.3f}{p99:>9.3f}{max(everything):>9.3f}"
        )
        verdict = "meets" if p99 < GOAL_P99_MS else "MISSES"
        print(f"\np99 {p99:.3f} ms {verdict} the goal of < {GOAL_P99_MS:.0f} ms")
        if args.keep:
            print(f"kept {path}")
    finally:
        if tmp is not None and not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
