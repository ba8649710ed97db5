"""``gatebot bulk``: place a CSV file of orders, and look after a batch (status, pause, resume, cancel,
approve, reject, results).

A thin edge over :mod:`gatebot.bulk`: read the file, print the problems or the plan, confirm, place at
``GATEBOT_BULK_RATE`` with a progress line, wait a little for Gate to deliver, write the results file.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Final

from gatebot.cli.common import UsageError, clean, print_err, run_core
from gatebot.config import Settings

if TYPE_CHECKING:
    from gatebot.bulk import BatchProgress, BulkPlan
    from gatebot.runtime import Core

__all__ = ["BULK_ACTIONS", "BULK_EPILOG", "batch_number", "cmd_bulk", "progress_line"]

BULK_ACTIONS: Final = ("status", "pause", "resume", "cancel", "approve", "reject", "results")
BULK_EPILOG: Final = """FILE.csv: a header row, then one order per row. Columns: product (id or slug) and
external_ref (each row its own) are required; quantity (vouchers), amount (top-ups) and one column
per customer-account field (steam_login, email, ...) as the products need them. UTF-8, ',' or ';'.
Up to 5,000 rows. Problems are listed by spreadsheet row (the header is row 1) and column.

  gatebot bulk june.csv --out june-results.csv      # check, confirm, place, write the results
  gatebot bulk status B12 | pause B12 | resume B12 | cancel B12
  gatebot bulk approve B12 --as U02FINANCE | reject B12 --reason "..." --as cli:bob
  gatebot bulk results B12 --out june-results.csv   # the results again, while they are kept

exit codes (placing a file):
  0  every row was placed (Gate accepted it)
  1  nothing was placed (not confirmed), or some rows were refused or failed
  2  bad usage or an invalid file (every problem listed; nothing was saved or charged)
  3  rows are saved but not settled yet (waiting for approval, for funds, or for a clear answer from
     Gate): do not upload the file again; `gatebot bulk status B12` follows it, the jobs finish it"""

_SETTLE_POLL: Final = 2.0


def batch_number(text: str) -> int:
    """``type=`` for a batch: ``B12`` or ``12``."""
    from gatebot.bulk import parse_batch_ref

    value = text.strip()
    number = parse_batch_ref(value) or (int(value) if value.isdigit() and len(value) < 10 else None)
    if not number:
        raise argparse.ArgumentTypeError(f"must be a batch number like B12, got {text!r}")
    return number


def cmd_bulk(args: argparse.Namespace, settings: Settings) -> int:
    if args.what in BULK_ACTIONS:
        if args.batch is None:
            raise UsageError(f"bulk {args.what}: name the batch, e.g. gatebot bulk {args.what} B12")
        try:
            number = batch_number(args.batch)
        except argparse.ArgumentTypeError as exc:
            raise UsageError(f"bulk {args.what}: {exc}") from None
        return _batch_action(args, settings, number)
    if args.batch is not None:
        raise UsageError(f"unrecognized arguments: {args.batch} (see `gatebot bulk --help`)")
    return _place_file(args, settings)


def _who(args: argparse.Namespace) -> str:
    return str(args.who) if args.who else f"cli:{getpass.getuser()}"


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as source:
            return source.read()
    except OSError as exc:
        raise UsageError(f"{path}: {exc.strerror or exc}; give the path of a CSV file") from None


def _place_file(args: argparse.Namespace, settings: Settings) -> int:
    from gatebot.bulk import BulkInvalid
    from gatebot.cli.approvals import _approver_roles
    from gatebot.cli.orders import _load_catalog
    from gatebot.orders import GateDown

    data = _read(args.what)
    who = _who(args)
    out = Path(args.out) if args.out else None
    if out is not None and not out.parent.is_dir():
        raise UsageError(f"--out {out}: no directory {out.parent}; give a file in a folder you can write to")

    async def go(c: Core) -> int:
        if not await _load_catalog(c, refresh=args.refresh):
            return 1
        roles = await _approver_roles(settings, who)
        try:
            plan = await c.bulk.plan(data, requester=who, requester_roles=roles, source_name=Path(args.what).name,
                                     test=args.test)
        except BulkInvalid as exc:
            for problem in exc.problems:
                print_err(f"{args.what}: {problem}")
            return 2
        except GateDown as exc:
            print_err(str(exc))
            return 1
        print(_plan_text(plan))
        if not args.yes:
            if not sys.stdin.isatty():
                raise UsageError("not a terminal: add --yes to place the batch without confirming")
            answer = await asyncio.to_thread(input, f"Place these {plan.rows:,} orders? [y/N] ")
            if answer.strip().lower() not in {"y", "yes"}:
                print("Nothing was sent.")
                return 1
        try:
            batch = await c.bulk.confirm(plan.batch_id, who)
        except BulkInvalid as exc:  # e.g. a reference taken by another command since the check
            for problem in exc.problems:
                print_err(f"{args.what}: {problem}")
            return 2
        progress = await _place(c, plan.batch_id)
        progress = await _settle(c, plan.batch_id, progress, wait=args.wait)
        print(progress_line(progress))
        if out is not None and batch.confirmed_at is not None:
            await _write_results(c, plan.batch_id, who, out)
        return _exit_code(progress)

    return run_core(settings, go)


async def _place(c: Core, batch_id: int) -> BatchProgress:
    """Place the batch here, printing a progress line about once a second."""
    tty = sys.stdout.isatty()
    while True:
        progress = await c.bulk.run_batch(batch_id, until=c.clock.now() + timedelta(seconds=1))
        if tty:
            print("\r" + progress_line(progress), end="", flush=True)
        if progress.status.value != "running" or progress.eta is None:
            if tty:
                print()
            return progress


async def _settle(c: Core, batch_id: int, progress: BatchProgress, *, wait: float) -> BatchProgress:
    """Track the batch's pending rows for up to ``wait`` seconds, so the results hold their codes."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while progress.status.value == "running" and loop.time() < deadline:
        await asyncio.sleep(min(_SETTLE_POLL, wait))
        await c.orders.recover()
        await c.orders.track()
        progress = await c.bulk.settle(batch_id)
    return progress


async def _write_results(c: Core, batch_id: int, who: str, out: Path) -> None:
    data = await c.bulk.results_csv(batch_id, who)

    def write() -> None:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # voucher codes: the owner only
        with os.fdopen(fd, "wb") as sink:
            os.fchmod(sink.fileno(), 0o600)
            sink.write(data)

    try:
        await asyncio.to_thread(write)
    except OSError as exc:
        raise UsageError(f"--out {out}: {exc.strerror or exc}; give a file in a folder you can write to") from None
    print(f"wrote the results of B{batch_id} to {out} (it holds voucher codes: keep it private)", file=sys.stderr)


def _exit_code(progress: BatchProgress) -> int:
    if progress.waiting or progress.status.value in ("awaiting_approval", "waiting_funds", "paused"):
        return 3
    if progress.failed or progress.cancelled or progress.attention:
        return 1
    return 0


def _plan_text(plan: BulkPlan) -> str:
    lines = [f"Batch {plan.number}: {plan.rows:,} orders from {plan.source_name}"]
    lines += [f"  {p.rows:>6,} row(s): {p.name} (id {p.product_id})" for p in plan.products]
    for cur, total in plan.totals.items():
        have, after = plan.balances.get(cur), plan.balances_after.get(cur)
        balance = f"balance {have} → {after}" if have is not None else f"no {cur} balance at Gate"
        lines.append(f"  total {total}  ({balance}{', last known' if plan.balance_cached else ''})")
    for cur, missing in plan.short.items():
        lines.append(f"  not enough {cur} (short by {missing}): the batch waits for funds when Gate says so, "
                     "and goes on when a deposit posts")
    if plan.approval:
        lines.append(f"  needs approval ({plan.approval}): it is saved, and placed when an approver approves it")
    return "\n".join(lines)


def progress_line(p: BatchProgress) -> str:
    """One line about a batch: ``B12 running: placed 40/200, ...``."""
    cost = ", ".join(str(m) for m in p.cost.values()) or "nothing yet"
    eta = f", about {int(p.eta.total_seconds()) + 1} s left" if p.eta else ""
    return (f"{p.number} {p.status.value}: placed {p.placed:,}/{p.rows:,}, completed {p.completed:,}, failed "
            f"{p.failed:,}, waiting {p.waiting:,}, not sent {p.cancelled:,}; charged {cost}{eta}")


def _batch_action(args: argparse.Namespace, settings: Settings, number: int) -> int:
    from gatebot.bulk import BatchRefused
    from gatebot.cli.approvals import _approver_roles
    from gatebot.orders import GateDown

    who = _who(args)
    reason = clean(args.reason or "", limit=500, what="--reason")
    if args.what == "reject" and not reason:
        raise UsageError("--reason: say why the batch is rejected (the requester is told)")
    if args.what in ("approve", "reject") and not args.who:
        raise UsageError(f"bulk {args.what}: the following arguments are required: --as")
    out = Path(args.out) if args.out else None
    if args.what == "results" and out is None:
        raise UsageError("bulk results: give --out FILE (the results hold voucher codes: never on a terminal)")

    async def go(c: Core) -> int:
        roles = await _approver_roles(settings, who)
        try:
            if args.what == "pause":
                await c.bulk.pause(number, who, roles=roles)
            elif args.what == "resume":
                await c.bulk.resume(number, who, roles=roles)
            elif args.what == "cancel":
                await c.bulk.cancel(number, who, roles=roles)
            elif args.what == "approve":
                await c.bulk.approve(number, who, roles=roles)
            elif args.what == "reject":
                await c.bulk.reject(number, who, reason, roles=roles)
            elif args.what == "results":
                assert out is not None
                await _write_results(c, number, who, out)
                return 0
            print(progress_line(await c.bulk.progress(number)))
        except (BatchRefused, GateDown) as exc:  # refused, or Gate down: the request stays open
            print_err(str(exc))
            return 1
        return 0

    return run_core(settings, go)
