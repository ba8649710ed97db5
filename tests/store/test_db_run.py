"""``Database.run``: the store's work happens on a worker thread, never on the event loop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import Session, text

from gatebot.store.db import Database


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database.from_url(f"sqlite:///{tmp_path / 'run.db'}")
    with database.session() as s:
        s.execute(text("CREATE TABLE t (n INTEGER)"))
    yield database
    database.dispose()


async def test_work_runs_off_the_loop_and_commits(db: Database) -> None:
    loop_thread = threading.get_ident()

    def work(s: Session) -> int:
        assert threading.get_ident() != loop_thread
        s.execute(text("INSERT INTO t VALUES (1)"))
        return 7

    assert await db.run(work) == 7
    with db.session() as s:
        assert s.execute(text("SELECT count(*) FROM t")).scalar_one() == 1


async def test_a_failing_unit_rolls_back(db: Database) -> None:
    def work(s: Session) -> None:
        s.execute(text("INSERT INTO t VALUES (1)"))
        raise ValueError("no")

    with pytest.raises(ValueError, match="no"):
        await db.run(work)
    with db.session() as s:
        assert s.execute(text("SELECT count(*) FROM t")).scalar_one() == 0


async def test_the_loop_keeps_running_while_the_database_is_slow(db: Database) -> None:
    release = threading.Event()
    ticks = 0

    def slow(s: Session) -> None:
        release.wait(5)  # stands in for a slow query

    async def ticker() -> None:
        nonlocal ticks
        while not release.is_set():
            ticks += 1
            if ticks == 20:
                release.set()
            await asyncio.sleep(0)

    job = asyncio.create_task(db.run(slow))
    await ticker()
    await job
    assert ticks >= 20  # the loop ran other tasks while the query was held
    assert not db.busy
