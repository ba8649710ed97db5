"""The order service: the pipeline's public face, assembled from its parts, plus catalog and lookups.

Must not import Slack or the scheduler.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.exc import IntegrityError

from gatebot.orders.approvals import Approvals
from gatebot.orders.tracking import Tracking
from gatebot.store import repo
from gatebot.store.models import CatalogProduct, Order, OrderHistory

log = logging.getLogger(__name__)


class OrderService(Tracking, Approvals):
    """The order pipeline over one store and one Gate client. Safe to share across tasks."""

    # -- catalog ------------------------------------------------------------------------------------
    async def refresh_catalog(self) -> int:
        """Fetch product types and every product (active or not) into the cached catalog."""
        types = {t.id: t.code for t in await self.gate.list_product_types()}
        products = [p async for p in self.gate.iter_products(page_size=100)]
        for attempt in (1, 2):
            now = self.clock.now()
            try:
                await self.db.run(lambda s: repo.replace_catalog(s, products, types, now=now))  # noqa: B023
                break
            except IntegrityError:
                # Another process (e.g. a parallel `gatebot buy` on an empty store) inserted the
                # same products first: start again over its rows, which then are updates.
                if attempt == 2:
                    raise
        log.info("catalog refreshed: %d products", len(products))
        return len(products)

    async def product(self, ref: int | str) -> CatalogProduct | None:
        """A cached product by id or slug."""
        return await self.db.run(lambda s: repo.get_product(s, ref))

    async def catalog_loaded(self) -> bool:
        """Whether the catalog was ever loaded from Gate."""
        return await self.db.run(lambda s: repo.catalog_refreshed_at(s) is not None)

    # -- lookups ----------------------------------------------------------------------------------------
    async def find(self, ref: str) -> Order | None:
        """Find an order by our number, Gate id, external_ref or idempotency key."""
        return await self.db.run(lambda s: repo.find_order(s, ref))

    async def lookup(self, ref: str) -> list[Order]:
        """The orders ``ref`` may mean, as a person types it: the exact match alone, else the external_ref
        in any case and Gate ids starting with it (several are listed by the caller, never guessed)."""
        return await self.db.run(lambda s: repo.find_orders(s, ref))

    async def history(self, order_id: int) -> list[OrderHistory]:
        return await self.db.run(lambda s: repo.history(s, order_id))

    def account(self, order: Order) -> dict[str, Any] | None:
        """The decrypted customer account of a top-up (``None`` for a voucher). Callers mask it for channels."""
        return order.account(self.cipher)

    def content(self, order: Order) -> dict[str, Any] | None:
        """The decrypted ``order_content`` (voucher codes!). Callers decide who may see it."""
        return order.content(self.cipher)

