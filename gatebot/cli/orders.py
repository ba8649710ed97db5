"""The order commands: ``order``, ``orders``, ``buy``, ``products``, ``recover``, ``balance``, ``export``."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from gatebot.cli.common import UsageError, clean, parse_since, print_err, run_core
from gatebot.config import Settings

if TYPE_CHECKING:
    from gatebot.orders import OrderInvalid
    from gatebot.runtime import Core


def cmd_order(args: argparse.Namespace, settings: Settings) -> int:
    from gatebot.textinput import MAX_REFERENCE
    from gatebot.textview import order_text, orders_table

    ref = clean(args.ref, limit=MAX_REFERENCE, what="the order reference")

    async def go(c: Core) -> int:
        matches = await c.orders.lookup(ref)
        if not matches and (batch := await c.bulk.find(ref)) is not None:  # B12: a bulk batch
            assert batch.id is not None
            from gatebot.cli.bulk import progress_line

            print(progress_line(await c.bulk.progress(batch.id)))
            return 0
        if not matches:
            print_err(f"no order matches {ref!r} (try our number like 12, a Gate order id or its first 8 "
                      "characters, an external_ref or an idempotency key)")
            return 1
        if len(matches) > 1:
            print(orders_table(matches))
            print_err(f"{len(matches)} orders match {ref!r}: give one's number, e.g. gatebot order {matches[0].id}")
            return 1
        (order,) = matches
        assert order.id is not None  # a stored row
        content = c.orders.content(order) if args.show_code else None
        print(order_text(order, await c.orders.history(order.id), content=content))
        return 0

    return run_core(settings, go)


def cmd_orders(args: argparse.Namespace, settings: Settings) -> int:
    from gatebot.store import repo
    from gatebot.store.models import OrderStatus
    from gatebot.textview import orders_table

    statuses = None
    if args.status:
        valid = {s.value for s in OrderStatus}
        statuses = [s.strip() for s in args.status.split(",")]
        bad = [s for s in statuses if s not in valid]
        if bad:
            raise UsageError(f"unknown status {', '.join(bad)}; use one of {', '.join(sorted(valid))}")
    since = parse_since(args.since) if args.since else None

    async def go(c: Core) -> int:
        rows = await c.db.run(lambda s: repo.list_orders(s, status=statuses, requester=args.requester, since=since,
                                                          limit=args.limit))
        print(orders_table(rows))
        return 0

    return run_core(settings, go)


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    from gatebot.finance.exports import ExportError, build_export, check_currency

    since = parse_since(args.since)
    until = parse_since(args.until, "--until") if args.until else datetime.now(UTC)
    try:
        currency = check_currency(args.currency)
    except ExportError as exc:
        raise UsageError(str(exc)) from None
    if until <= since:
        raise UsageError("--until must be after --since")

    async def go(c: Core) -> int:
        export = await c.db.run(lambda s: build_export(s, args.kind, since=since, until=until, currency=currency))
        if args.out in (None, "-"):
            sys.stdout.write(export.text)
        else:
            await asyncio.to_thread(_write_text, args.out, export.text)
            print(f"wrote {export.rows} row(s) to {args.out}", file=sys.stderr)
        return 0

    return run_core(settings, go)


def _write_text(path: str, text: str) -> None:
    try:
        with open(path, "w", encoding="utf-8", newline="") as out:  # the CSV carries its own \r\n
            out.write(text)
    except OSError as exc:
        raise UsageError(f"--out {path}: {exc.strerror or exc}; give a file in a folder you can write to "
                         "(or leave --out out for standard output)") from None


def cmd_balance(args: argparse.Namespace, settings: Settings) -> int:
    from gatebot.clock import format_utc
    from gatebot.finance.levels import balance_level
    from gatebot.orders import GateDown

    async def go(c: Core) -> int:
        try:
            snapshot = await c.orders.balances()
        except GateDown as exc:
            print_err(str(exc))
            return 1
        balances = snapshot.balances
        thresholds = settings.gatebot_low_balance
        for b in balances:
            money = b.money()
            level = thresholds.get(money.currency)
            status = ""
            if level is not None:
                status = {"critical": "CRITICAL", "warning": "LOW"}.get(lvl := balance_level(money, level), lvl)
                status = f"  [{status}: warning {level.warning.amount}, critical {level.critical.amount}]"
            print(f"{money.format():>20}{status}")
        if not balances:
            print("no balances")
        read_at = format_utc(snapshot.at)  # when, not Gate's updated_at
        if snapshot.cached:
            print_err(f"Gate did not answer: these are the balances gatebot last read, at {read_at}")
            return 1
        print(f"read from Gate at {read_at}")
        return 0

    return run_core(settings, go)


async def _load_catalog(c: Core, *, refresh: bool) -> bool:
    """Load the catalog from Gate when it was never loaded (or ``refresh``); False if that failed."""
    from gatebot.gate import GateError
    from gatebot.store import repo

    empty = await c.db.run(repo.catalog_refreshed_at) is None
    if empty or refresh:
        try:
            await c.orders.refresh_catalog()
        except GateError as exc:
            print_err(f"could not load the catalog from Gate: {exc.message}")
            return False
    return True


def cmd_buy(args: argparse.Namespace, settings: Settings) -> int:
    from gatebot.orders import GateDown, OrderDraft, OrderInvalid, parse_account_lines
    from gatebot.textview import order_text

    account, problems = parse_account_lines("\n".join(args.account or []))
    if problems:
        raise UsageError("--account: " + "; ".join(problems))
    requester = f"cli:{getpass.getuser()}"

    async def go(c: Core) -> int:
        if not await _load_catalog(c, refresh=args.refresh):
            return 1
        draft = OrderDraft(product=args.product, requester=requester, amount=args.amount,
                           quantity=args.quantity, account=account, external_ref=args.ref, test=args.test)
        try:
            quote = await c.orders.quote(draft)
        except OrderInvalid as exc:
            return _invalid_order(exc)
        except GateDown as exc:
            print_err(str(exc))
            return 1
        after = quote.balance_after
        print(f"{quote.product.name}: costs {quote.cost}"
              + (f", leaves {after}" if after is not None else ""))
        if quote.approval:
            print(f"Needs approval ({quote.approval}): it is saved, and sent only when an approver approves it.")
        if not args.yes:
            if not sys.stdin.isatty():
                raise UsageError("not a terminal: add --yes to place the order without confirming")
            answer = await asyncio.to_thread(input, "Place this order? [y/N] ")
            if answer.strip().lower() not in {"y", "yes"}:
                print("Nothing was sent.")
                return 1
        try:
            order = await c.orders.save_intent(quote, draft)
        except OrderInvalid as exc:  # e.g. the same --ref placed by another command just now
            return _invalid_order(exc)
        order_id = order.id
        assert order_id is not None  # saved
        order = await c.orders.submit(order_id, actor=requester)
        print(order_text(order, await c.orders.history(order_id), content=None))
        code = BUY_EXIT.get(str(order.status), 1)
        if code == EXIT_UNSETTLED:
            print_err(f"order #{order.id} is saved but not settled ({order.status}): do not place it again; "
                      + ("it is sent again, with the same key, when a deposit posts"
                         if order.status == "waiting_funds" else
                         f"an approver sends it with `gatebot approve {order.id} --as <id>`"
                         if order.status == "awaiting_approval" else
                         "`gatebot recover` settles it with the same key (no double charge)"))
        return code

    return run_core(settings, go)


#: ``gatebot buy`` exits 3 when the order is saved but Gate's answer is not final yet.
EXIT_UNSETTLED = 3
BUY_EXIT = {"pending": 0, "completed": 0, "unknown": EXIT_UNSETTLED, "submitting": EXIT_UNSETTLED,
            "waiting_funds": EXIT_UNSETTLED, "awaiting_approval": EXIT_UNSETTLED}
BUY_EXIT_CODES = """exit codes:
  0  Gate accepted the order (pending or completed)
  1  nothing was placed, or Gate refused it (rejected, failed, needs attention)
  2  bad usage: a wrong option or order field (nothing was sent), e.g. an --ref already used
  3  the order is saved but its outcome is not settled yet (Gate did not answer clearly, it
     waits for funds, or it waits for approval): do not place it again; `gatebot recover`
     settles it with the same key, `gatebot approve N --as ...` sends one awaiting approval"""


def _invalid_order(exc: OrderInvalid) -> int:
    for fld, msg in exc.errors.items():
        print_err(f"{fld.replace('account.', '--account ')}: {msg}")
    return 2


def cmd_products(args: argparse.Namespace, settings: Settings) -> int:
    from gatebot.orders import find_products
    from gatebot.textinput import MAX_QUERY
    from gatebot.textview import products_table

    query = clean(args.query or "", limit=MAX_QUERY, what="the search")

    async def go(c: Core) -> int:
        if not await _load_catalog(c, refresh=args.refresh):
            return 1
        rows = await c.db.run(lambda s: find_products(s, query, active_only=not args.all))
        print(products_table(rows))
        return 0

    return run_core(settings, go)


def cmd_recover(args: argparse.Namespace, settings: Settings) -> int:
    from gatebot.store import repo
    from gatebot.store.models import OrderStatus

    async def go(c: Core) -> int:
        n = await c.orders.recover(everything=True)
        result = await c.orders.track()
        print(f"re-drove {n} open order(s); tracked {result.checked} pending ({result.changed} changed)")
        stuck = await c.db.run(lambda s: repo.list_orders(s, status=[OrderStatus.NEEDS_ATTENTION], limit=20))
        for order in stuck:
            print(f"order #{order.id} ({order.external_ref}) needs attention: {order.status_reason}")
        return 0

    return run_core(settings, go)

