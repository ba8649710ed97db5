"""The agent's money in the sandbox: balances per currency and deposits (seeded, posted, rejected).

:class:`Ledger` holds both and answers the balance and deposit endpoints; orders charge and refund
through it. It does no locking and no time-keeping of its own: the
:class:`~gatebot.sandbox.simulator.Simulator` holds the lock and passes the clock's ``now``.

Must not import Slack, the scheduler, HTTP libraries (starlette, uvicorn, httpx) or gatebot.gate.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gatebot.money import Money, MoneyError
from gatebot.sandbox.catalog import Catalog
from gatebot.sandbox.contract import (
    DEPOSIT_STATUSES,
    SandboxError,
    check_external_ref,
    invalid,
)
from gatebot.sandbox.jsonio import iso
from gatebot.sandbox.state import BalanceState, DepositState

__all__ = ["Balance", "Deposit", "Ledger", "admin_money"]


@dataclass(slots=True)
class Balance:
    available: Money
    updated_at: datetime

    def to_api(self) -> dict[str, Any]:
        return {"currency_code": self.available.currency, "available": self.available.as_api(),
                "updated_at": iso(self.updated_at)}


@dataclass(slots=True)
class Deposit:
    id: int
    amount: Money
    method: str
    status: str
    external_ref: str | None
    created_at: datetime
    posted_at: datetime | None = None

    def to_api(self) -> dict[str, Any]:
        return {"id": self.id, "currency_code": self.amount.currency, "amount": self.amount.as_api(),
                "method": self.method, "status": self.status, "external_ref": self.external_ref,
                "created_at": iso(self.created_at), "posted_at": iso(self.posted_at)}


class Ledger:
    """Balances and deposits of one agent."""

    def __init__(self, balances: dict[str, Balance], deposits: dict[int, Deposit]) -> None:
        self.balances = balances
        self.deposits = deposits

    @classmethod
    def seeded(cls, catalog: Catalog, now: datetime) -> Ledger:
        """The opening state: the catalog's deposits (aged from ``now``) and balances."""
        deposits: dict[int, Deposit] = {}
        last_posting: dict[str, datetime] = {}
        for spec in catalog.deposits:
            created = now - spec.age
            posted = created + spec.posted_after if spec.status == "posted" else None
            amount = Money.parse(spec.amount, spec.currency_code)
            deposits[spec.id] = Deposit(spec.id, amount, spec.method, spec.status, spec.external_ref,
                                        created, posted)
            if posted is not None:
                last_posting[spec.currency_code] = max(posted, last_posting.get(spec.currency_code, posted))
        balances = {
            currency: Balance(Money.parse(amount, currency), last_posting.get(currency, now))
            for currency, amount in catalog.balances.items()
        }
        return cls(balances, deposits)

    @classmethod
    def restored(cls, balances: list[BalanceState], deposits: list[DepositState]) -> Ledger:
        return cls({b.available.currency: Balance(b.available, b.updated_at) for b in balances},
                   {d.id: Deposit(d.id, d.amount, d.method, d.status, d.external_ref, d.created_at, d.posted_at)
                    for d in deposits})

    def snapshot(self) -> tuple[list[BalanceState], list[DepositState]]:
        return ([BalanceState(available=b.available, updated_at=b.updated_at)
                 for _, b in sorted(self.balances.items())],
                [DepositState(id=d.id, amount=d.amount, method=d.method, status=d.status,
                              external_ref=d.external_ref, created_at=d.created_at, posted_at=d.posted_at)
                 for d in self.deposits.values()])

    # -- balances ----------------------------------------------------------------------------------------

    def available(self, currency: str) -> Money:
        balance = self.balances.get(currency)
        return balance.available if balance is not None else Money.zero(currency)

    def set(self, available: Money, at: datetime) -> dict[str, Any]:
        self.balances[available.currency] = Balance(available, at)
        return self.balances[available.currency].to_api()

    def refund(self, charge: Money, at: datetime) -> None:
        """A failed order gives its charge back (the balance's time does not go backwards)."""
        balance = self.balances[charge.currency]
        self.balances[charge.currency] = Balance(balance.available + charge, max(balance.updated_at, at))

    def balance(self) -> dict[str, Any]:
        return {"items": [self.balances[c].to_api() for c in sorted(self.balances)]}

    # -- deposits ----------------------------------------------------------------------------------------

    def list_deposits(self, status: str | None) -> list[dict[str, Any]]:
        if status is not None and status not in DEPOSIT_STATUSES:
            raise invalid(f"status must be one of {', '.join(DEPOSIT_STATUSES)}")
        deposits = sorted(self.deposits.values(), key=lambda d: (d.created_at, d.id), reverse=True)
        return [d.to_api() for d in deposits if status is None or d.status == status]

    def add_deposit(self, money: Money, *, status: Any, method: Any, external_ref: Any,
                    now: datetime) -> dict[str, Any]:
        if status not in ("posted", "pending"):
            raise invalid("status must be posted or pending")
        if method not in ("bank_wire", "manual"):
            raise invalid("method must be bank_wire or manual")
        ref = check_external_ref(external_ref)
        deposit = Deposit(max(self.deposits, default=0) + 1, money, method, "pending", ref, now)
        self.deposits[deposit.id] = deposit
        if status == "posted":
            self.post(deposit, now)
        return deposit.to_api()

    def pending_deposit(self, deposit_id: int) -> Deposit:
        deposit = self.deposits.get(deposit_id)
        if deposit is None:
            raise SandboxError(404, "not_found", f"deposit {deposit_id} not found")
        if deposit.status != "pending":
            raise SandboxError(409, "invalid_state", f"deposit {deposit_id} is already {deposit.status}")
        return deposit

    def post(self, deposit: Deposit, now: datetime) -> None:
        deposit.status = "posted"
        deposit.posted_at = now
        currency = deposit.amount.currency
        self.balances[currency] = Balance(self.available(currency) + deposit.amount, now)


def admin_money(currency_code: Any, amount: Any, *, allow_zero: bool) -> Money:
    if not isinstance(currency_code, str):
        raise invalid("currency_code must be a 3-letter code such as USD")
    if isinstance(amount, float):
        raise invalid('amounts are strings such as "500.00"')
    try:
        money = Money.parse(amount, currency_code)
    except MoneyError as exc:
        raise invalid(str(exc)) from None
    if money.is_negative() or (not allow_zero and money.amount == 0):
        raise invalid("the amount must be positive" if not allow_zero else "the amount must not be negative")
    return money
