"""The one catalog search rule: which cached products a search finds, and in what order.

Used by the order modal's type-ahead, ``/gate products``, ``/gate buy <search>`` and the CLI's
``gatebot products``; the Slack blocks and the CLI table only render what it returns.

Rule: every word of the query must appear in the product's name, slug, region, kind, type code,
currency or id (case-insensitive); results are active products first, then by name, then by id, so
the same search always lists the same products. The store's name/slug query
(``repo.search_products``) narrows the rows read; when it finds nothing (a search by kind, region or
currency, e.g. ``top-up GBP``) up to :data:`FULL_SCAN` rows are read and matched here.

Must not import Slack or the scheduler.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, TypeVar

from sqlmodel import Session

from gatebot.store import repo
from gatebot.store.models import CatalogProduct

__all__ = ["FULL_SCAN", "SearchableProduct", "find_products", "match_products"]

#: Products read for a search the store's name/slug query cannot answer (kind, region, currency).
FULL_SCAN = 5000
#: Rows the store's name/slug query returns before matching.
_NARROW_LIMIT = 100


class SearchableProduct(Protocol):
    """What the search reads of a catalog product (``CatalogProduct`` or a test double)."""

    @property
    def id(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def slug(self) -> str | None: ...
    @property
    def region_code(self) -> str | None: ...
    @property
    def kind(self) -> str: ...
    @property
    def type_code(self) -> str | None: ...
    @property
    def currency(self) -> str: ...
    @property
    def is_active(self) -> bool: ...


P = TypeVar("P", bound=SearchableProduct)


def match_products(products: Iterable[P], query: str, *, active_only: bool = False) -> list[P]:
    """The products of ``products`` that ``query`` finds, in the search's order (see the module)."""
    words = query.lower().split()
    found = []
    for product in products:
        if active_only and not product.is_active:
            continue
        haystack = " ".join((product.name, product.slug or "", product.region_code or "",
                             product.kind, product.type_code or "", product.currency, str(product.id))).lower()
        if all(word in haystack for word in words):
            found.append(product)
    return sorted(found, key=lambda p: (not p.is_active, p.name.lower(), p.id))


def find_products(s: Session, query: str, *, active_only: bool) -> list[CatalogProduct]:
    """The cached products ``query`` finds (an empty query: all of them, up to 100), in order."""
    found = repo.search_products(s, query, limit=_NARROW_LIMIT, active_only=active_only)
    if not found and query.strip():
        found = repo.search_products(s, "", limit=FULL_SCAN, active_only=active_only)
    return match_products(found, query, active_only=active_only)
