"""Planning a batch: a bulk file in, every problem out — or a ``planned`` batch and its summary.

Every row goes through the single order's validation (``OrderService.validate_many``: the same rules,
the store's facts loaded once for the whole file). On top, the rules only a file has: each row needs its
own ``external_ref``, unique in the file (in any case: lookups ignore case) as in the store; an account
column no product of the file takes is an unknown column. The approvals policy applies to the batch's
total per currency, and so do the daily limits (a batch over a limit the policy refuses is invalid) — here
early, and again under the spending lock in the unit of work that confirms the batch (``Lifecycle``).
Nothing is saved while any row is invalid; a valid file is saved as a ``planned`` batch (the file itself
encrypted: it holds customer accounts) so that a confirmation — a button pressed twice, a retried
command — names that one batch.

Must not import Slack, the scheduler, ``gatebot.slack``, ``gatebot.jobs``, ``gatebot.demo`` or
``gatebot.emulator``.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from gatebot.bulk.base import BulkBase
from gatebot.bulk.csvfile import CsvFile, CsvRow, read_csv
from gatebot.bulk.model import BulkInvalid, BulkPlan, Problem, ProductCount
from gatebot.gate.models import ProductKind
from gatebot.money import Money
from gatebot.orders import OrderDraft, OrderInvalid, OverLimit, Quote
from gatebot.store import repo
from gatebot.store.crypto import open_json, seal_json
from gatebot.store.models import Batch, BatchStatus

__all__ = ["Planning", "ValidFile"]

#: How the error keys of a single order's validation name a column of the file.
_FIELD_COLUMNS = {"product": "product", "amount": "amount", "quantity": "quantity", "external_ref": "external_ref"}


@dataclass(frozen=True, slots=True)
class ValidFile:
    """A file whose every row passed validation: each row with its quote (product, exact body, cost)."""

    file: CsvFile
    quotes: tuple[tuple[CsvRow, OrderDraft, Quote], ...]

    def totals(self) -> dict[str, Money]:
        totals: dict[str, Money] = {}
        for _, _, quote in self.quotes:
            cur = quote.cost.currency
            totals[cur] = totals[cur] + quote.cost if cur in totals else quote.cost
        return totals


class Planning(BulkBase):
    """File → problems, or a planned batch."""

    async def plan(self, data: bytes, *, requester: str, source_name: str,
                   requester_roles: Iterable[str] = (), origin_channel: str | None = None, test: bool = False,
                   balance_wait: float | None = None) -> BulkPlan:
        """Validate a bulk file; save it as a ``planned`` batch and say what confirming it would do.

        Raises :class:`~gatebot.bulk.BulkInvalid` with every problem (nothing saved, nothing sent), or
        :class:`~gatebot.orders.GateDown` when Gate is down (circuit open) or the balance cannot be read and
        none is known. ``balance_wait`` bounds the wait for Gate's balance (a Slack modal has 3 s).
        """
        await self.orders._require_gate()
        roles = frozenset(requester_roles)
        valid = await self.validate_file(data, requester=requester, roles=roles, origin_channel=origin_channel,
                                         test=test)
        totals = valid.totals()
        now = self.clock.now()  # the early check: confirm() checks again, under the spending lock
        approval = await self.db.run(lambda s: self._batch_approval(s, totals, requester, roles, now=now, lock=False))
        snapshot = await self.orders.balances(max_wait=balance_wait)
        counts = Counter(quote.product.id for _, _, quote in valid.quotes)
        names = {quote.product.id: quote.product.name for _, _, quote in valid.quotes}
        source = seal_json(self.cipher, {"csv": data.decode("utf-8-sig"), "test": test})

        def save(s: Session) -> Batch:
            batch = Batch(requester=requester, requester_roles=repo.roles_column(set(roles)),
                          origin_channel=origin_channel, status=BatchStatus.PLANNED, source_name=source_name[:255],
                          source_digest=hashlib.sha256(data).hexdigest(), source_enc=source,
                          rows=len(valid.quotes), totals_json="{}", approval_reason=approval,
                          created_at=now, updated_at=now)
            batch.set_totals(totals)
            return repo.add_batch(s, batch)

        batch = await self.db.run(save)
        assert batch.id is not None
        return BulkPlan(batch_id=batch.id, rows=len(valid.quotes),
                        products=tuple(ProductCount(pid, names[pid], n) for pid, n in counts.most_common()),
                        totals=totals, balances={cur: snapshot.get(cur) for cur in totals},
                        balance_cached=snapshot.cached, approval=approval, source_name=source_name)

    async def validate_file(self, data: bytes, *, requester: str, roles: frozenset[str] = frozenset(),
                            origin_channel: str | None = None, test: bool = False) -> ValidFile:
        """Every row of ``data`` through the single order's validation, plus the file's own rules.
        Raises :class:`~gatebot.bulk.BulkInvalid` with every problem found, by row and column."""
        file = read_csv(data)
        drafts = [OrderDraft(product=row.values["product"], requester=requester,
                             amount=row.values.get("amount") or None, quantity=row.values.get("quantity") or None,
                             account={c: row.values[c] for c in file.account_columns if row.values[c]},
                             external_ref=row.values["external_ref"] or None, test=test,
                             origin_channel=origin_channel, requester_roles=roles) for row in file.rows]
        judged = await self.orders.validate_many(drafts)
        problems = _ref_problems(file.rows)
        quotes: list[tuple[CsvRow, OrderDraft, Quote]] = []
        for row, draft, result in zip(file.rows, drafts, judged, strict=True):
            if isinstance(result, OrderInvalid):
                problems.extend(_row_problems(row, result))
                continue
            product, request, cost = result
            quotes.append((row, draft, Quote(product=product, request=request, cost=cost)))
        problems.extend(await self._column_problems(file, quotes))
        if problems:
            raise BulkInvalid(sorted(problems, key=lambda p: (p.row or 0, p.column or "")))
        return ValidFile(file=file, quotes=tuple(quotes))

    def _batch_approval(self, s: Session, totals: dict[str, Money], requester: str, roles: frozenset[str], *,
                        now: datetime, lock: bool) -> str | None:
        """The approvals policy on the batch's total per currency, as a step of the caller's unit of work: why
        it waits for a second person (``None``: it starts once confirmed). The daily limits are the single
        order's rule (``OrderService.over_limits``; ``lock`` as there); over one the policy refuses:
        :class:`BulkInvalid`."""
        reasons: list[str] = []
        for cur, total in sorted(totals.items()):
            if (reason := self.orders.approval_policy.threshold_reason(total)) is not None:
                reasons.append(reason.replace("it costs", f"the batch's {cur} total is", 1))
            try:
                reasons.extend(self.orders.over_limits(s, total, requester, roles, now=now, lock=lock))
            except OverLimit as over:
                raise BulkInvalid([Problem(None, None, over.use.message(total).replace("This order", "This batch", 1)
                                           + " Ask finance to raise it, or split the file.")]) from None
        return "; ".join(reasons) or None

    async def _column_problems(self, file: CsvFile,
                               quotes: Sequence[tuple[CsvRow, OrderDraft, Quote]]) -> list[Problem]:
        """Account columns with values that no top-up named in the file takes (one without known fields takes
        any; an empty column is harmless), and the cells a voucher row fills that a voucher has no use for
        (its price is fixed; it has no customer account)."""
        problems: list[Problem] = []
        for row, _, quote in quotes:
            product = quote.product
            if product.kind is not ProductKind.TOP_UP:
                if row.values.get("amount"):
                    problems.append(Problem(row.number, "amount", f"{product.name} has a fixed price: leave the "
                                                                  "amount empty (use quantity for several)."))
                problems.extend(Problem(row.number, c, f"{product.name} is a voucher: it takes no customer "
                                                       "account; leave this empty.")
                                for c in file.account_columns if row.values[c])
        keys = {row.values["product"] for row in file.rows if row.values["product"]}
        named = await self.db.run(lambda s: [repo.get_product(s, key) for key in sorted(keys)])
        taken: set[str] = set()
        for top_up in named:
            if top_up is None or top_up.kind is not ProductKind.TOP_UP:
                continue
            fields = self.orders.fields_for(top_up)
            if fields is None:
                return problems  # a top-up without known fields takes any column
            taken |= {f.name for f in fields}
        used = {c for row in file.rows for c in file.account_columns if row.values[c]}
        problems.extend(Problem(1, column, f"No top-up in this file takes a {column} field (they take "
                                           f"{', '.join(sorted(taken)) or 'none'}); rename or delete the column.")
                        for column in file.account_columns if column not in taken and column in used)
        return problems

    def source_file(self, batch: Batch) -> CsvFile:
        """The batch's file, read again from its encrypted copy (the results repeat its columns)."""
        return read_csv(self._source(batch)[0])

    async def _revalidate(self, batch: Batch) -> ValidFile:
        """The batch's file through validation again, against the store as it is now (confirmation)."""
        data, test = self._source(batch)
        roles = frozenset(r for r in (batch.requester_roles or "").split(",") if r)
        return await self.validate_file(data, requester=batch.requester, roles=roles,
                                        origin_channel=batch.origin_channel, test=test)

    def _source(self, batch: Batch) -> tuple[bytes, bool]:
        if batch.source_enc is None:
            raise BulkInvalid([Problem(None, None, f"Batch {batch.number} no longer holds its file (it expired); "
                                                   "upload the file again.")])
        source = open_json(self.cipher, batch.source_enc)
        return str(source["csv"]).encode("utf-8"), bool(source.get("test"))


def _ref_problems(rows: Sequence[CsvRow]) -> list[Problem]:
    """Every row needs its own external_ref, unique in the file (in any case)."""
    problems: list[Problem] = []
    first: dict[str, int] = {}
    for row in rows:
        ref = row.values["external_ref"]
        if not ref:
            problems.append(Problem(row.number, "external_ref", "Empty: every row needs its own reference "
                                                                "(so the same file cannot be ordered twice)."))
            continue
        seen = first.setdefault(ref.lower(), row.number)
        if seen != row.number:
            problems.append(Problem(row.number, "external_ref", f"{ref} is already used by row {seen:,} of this "
                                                                "file; each row needs its own reference."))
    return problems


def _row_problems(row: CsvRow, invalid: OrderInvalid) -> list[Problem]:
    problems = []
    for key, message in invalid.errors.items():
        if key.startswith("account."):
            column: str | None = key.removeprefix("account.")
        else:
            column = _FIELD_COLUMNS.get(key)
        problems.append(Problem(row.number, column, message))
    return problems

