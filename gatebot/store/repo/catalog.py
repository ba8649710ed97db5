"""The cached Gate catalog: refresh it from Gate's product list, read a product, search it.

Must not import Slack, the scheduler, the Gate client or ``db``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from sqlalchemy import and_, func, or_
from sqlmodel import Session, col, select

from gatebot.gate.models import Product
from gatebot.store.models import (
    CatalogProduct,
)
from gatebot.store.repo._sql import like_escape as _like_escape
from gatebot.store.repo.kv import kv_get, kv_set
from gatebot.textinput import MAX_QUERY, clean_text

#: kv key under which replace_catalog records when the catalog was last refreshed.
CATALOG_REFRESHED_KEY: Final = "store.catalog_refreshed_at"


# -- catalog ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CatalogChanges:
    """What a catalog refresh changed (ids are Gate product ids)."""

    added: list[int] = field(default_factory=list)
    deactivated: list[int] = field(default_factory=list)
    reactivated: list[int] = field(default_factory=list)
    active: int = 0


def _account_fields_json(product: Product) -> str | None:
    if product.customer_account_fields is None:
        return None
    fields = [
        {"name": f.name, "label": f.label, "type": f.type, "required": f.required, "pattern": f.pattern}
        for f in product.customer_account_fields
    ]
    return json.dumps(fields, ensure_ascii=False)


def _search_name(name: str, slug: str) -> str:
    return f"{name} {slug}".lower()


def replace_catalog(
    s: Session, products: Sequence[Product], type_codes: dict[int, str], now: datetime
) -> CatalogChanges:
    """Make the cache match Gate's product list: upsert every product, deactivate the ones that vanished.

    ``type_codes`` maps Gate product-type ids to codes (``{3: "direct_top_up"}``); an unmapped type is
    stored as ``"unknown"``. Vanished products are kept (orders refer to them) but marked inactive.
    Run it from one process at a time (the scheduler's lease holder).
    """
    existing = {row.id: row for row in s.exec(select(CatalogProduct)).all()}
    added: list[int] = []
    reactivated: list[int] = []
    seen: set[int] = set()
    for product in products:
        row = existing.get(product.id)
        if row is None:
            row = CatalogProduct(
                id=product.id,
                name=product.name,
                slug=product.slug,
                type_code="unknown",
                currency=product.currency_code,
                search_name="",
                refreshed_at=now,
            )
            existing[product.id] = row
            s.add(row)
            added.append(product.id)
        elif not row.is_active and product.is_active and product.id not in seen:
            reactivated.append(product.id)
        seen.add(product.id)
        type_id = product.product_type_id
        row.name = product.name
        row.slug = product.slug
        row.type_code = type_codes.get(type_id, "unknown") if type_id is not None else "unknown"
        row.category_id = product.category_id
        row.currency = product.currency_code
        row.region_code = product.region_code
        row.price = product.price
        row.min_amount = product.min_amount
        row.max_amount = product.max_amount
        row.step = product.step
        row.margin = product.margin
        row.is_active = product.is_active
        row.account_fields_json = _account_fields_json(product)
        row.description = product.description
        row.search_name = _search_name(product.name, product.slug)
        row.refreshed_at = now
    deactivated: list[int] = []
    for product_id, row in existing.items():
        if product_id not in seen and row.is_active:
            row.is_active = False
            row.refreshed_at = now
            deactivated.append(product_id)
    s.flush()
    kv_set(s, CATALOG_REFRESHED_KEY, now, now)
    active = sum(1 for row in existing.values() if row.is_active)
    return CatalogChanges(added=added, deactivated=sorted(deactivated), reactivated=reactivated, active=active)


def get_product(s: Session, id_or_slug: int | str) -> CatalogProduct | None:
    """A cached product by Gate id (``456``/``"456"``) or slug (exact, then any case); active or not."""
    if isinstance(id_or_slug, int):
        return s.get(CatalogProduct, id_or_slug)
    text = id_or_slug.strip()
    if not text:
        return None
    if text.isdigit() and len(text) <= 10:
        by_id = s.get(CatalogProduct, int(text))
        if by_id is not None:
            return by_id
    exact = s.exec(select(CatalogProduct).where(col(CatalogProduct.slug) == text)).first()
    if exact is not None:
        return exact
    return s.exec(
        select(CatalogProduct)
        .where(func.lower(col(CatalogProduct.slug)) == text.lower())
        .order_by(col(CatalogProduct.id))
    ).first()


def search_products(s: Session, query: str, *, limit: int = 100, active_only: bool = True) -> list[CatalogProduct]:
    """Products whose name or slug contains every word of ``query`` (case-insensitive), by name.

    An empty query lists everything; a number also matches the product with that id.
    """
    query = clean_text(query, limit=MAX_QUERY, clip=True)  # a 20,000-word paste must not build the SQL
    words = list(dict.fromkeys(query.lower().split()))
    statement = select(CatalogProduct)
    if active_only:
        statement = statement.where(col(CatalogProduct.is_active).is_(True))
    if words:
        text_match = and_(
            *(col(CatalogProduct.search_name).like(f"%{_like_escape(word)}%", escape="\\") for word in words)
        )
        stripped = query.strip()
        if stripped.isdigit() and len(stripped) <= 10:
            statement = statement.where(or_(text_match, col(CatalogProduct.id) == int(stripped)))
        else:
            statement = statement.where(text_match)
    statement = statement.order_by(col(CatalogProduct.search_name), col(CatalogProduct.id)).limit(limit)
    return list(s.exec(statement).all())


def catalog_refreshed_at(s: Session) -> datetime | None:
    """When :func:`replace_catalog` last ran (``None``: never)."""
    value = kv_get(s, CATALOG_REFRESHED_KEY)
    return value if isinstance(value, datetime) else None
