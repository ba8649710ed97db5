"""A ``gatebot clock``-like process for the lease test: :meth:`gatebot.runtime.Runtime.run` with every default
job (built-in sandbox, the database from ``DATABASE_URL``), plus a ``beat`` job every 0.2 s, on a short
lease. It prints (stdout, one line each, prefixed with ``time.monotonic()``, which is system-wide on Linux):

* ``LEADER <name>`` / ``FOLLOWER <name>`` on every leadership change,
* ``RAN <name>`` for every beat,
* the scheduler's own ``... started with N jobs`` log line once its first lease attempt is done.

SIGTERM stops it cleanly (running jobs finish, the lease is released).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from datetime import timedelta

from gatebot.config import load_settings
from gatebot.jobs import JobContext, JobSpec, default_jobs
from gatebot.monitor import LogPoster
from gatebot.runtime import build_core, build_runtime, until_stopped


def say(*parts: str) -> None:
    print(f"{time.monotonic():.3f}", *parts, flush=True)


class Started(logging.Handler):
    """Turns the scheduler's "started" log line into ``LOG <name> scheduler started``."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.worker = name

    def emit(self, record: logging.LogRecord) -> None:
        if "started with" in record.getMessage():
            say("LOG", self.worker, "scheduler", "started")


async def main(name: str, ttl: float) -> None:
    settings = load_settings()

    async def beat(ctx: JobContext) -> None:
        say("RAN", name)

    jobs = [*default_jobs(settings), JobSpec("beat", beat, timedelta(seconds=0.2), watched=False)]
    rt = build_runtime(build_core(settings), jobs=True, job_specs=jobs, poster=LogPoster(), lease_ttl=ttl,
                       notifier=False, on_leadership=lambda leader, _why: say("LEADER" if leader else "FOLLOWER", name))
    await rt.run(until_stopped)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--name", required=True)
    parser.add_argument("--ttl", type=float, default=2.0)
    args = parser.parse_args()
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    jobs_log = logging.getLogger("gatebot.scheduler")
    jobs_log.setLevel(logging.INFO)
    jobs_log.addHandler(Started(args.name))
    asyncio.run(main(args.name, args.ttl))
