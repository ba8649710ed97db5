"""Fixtures for bulk orders: the order pipeline's store, sandbox and clock, with a bulk service whose runner
sleeps in virtual time (its ``sleep`` advances the ManualClock), and CSV builders."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import pytest

from gatebot.bulk import BulkService
from gatebot.events import Event
from gatebot.store.db import Database
from tests.orders.conftest import Pipeline
from tests.orders.conftest import pipeline as pipeline  # the fixture, shared

HEADER = "product,quantity,amount,external_ref,steam_login,email"


@dataclass
class Bulk:
    service: BulkService
    p: Pipeline
    events: list[Event]
    slept: list[float]

    @property
    def kinds(self) -> list[str]:
        return [e.kind for e in self.events]


def voucher_rows(n: int, *, start: int = 1, product: str = "101") -> list[str]:
    return [f"{product},1,,REF-{i:05d},," for i in range(start, start + n)]


def topup_rows(n: int, *, start: int = 1, amount: str = "10") -> list[str]:
    return [f"steam-wallet,,{amount},TOP-{i:05d},player_{i},p{i}@example.com" for i in range(start, start + n)]


def csv_bytes(rows: list[str], header: str = HEADER) -> bytes:
    return ("\r\n".join([header, *rows]) + "\r\n").encode()


@pytest.fixture
async def bulk(pipeline: Pipeline, database: Database) -> AsyncIterator[Bulk]:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        pipeline.clock.advance(timedelta(seconds=seconds))

    seen: list[Event] = []

    async def record(event: Event) -> None:
        seen.append(event)

    pipeline.service.events.subscribe("batch.", record)
    yield Bulk(service=BulkService(orders=pipeline.service, rate=5.0, sleep=sleep), p=pipeline, events=seen,
               slept=slept)
