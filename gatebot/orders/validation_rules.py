"""Pure validation helpers: account-field lines, the product's account fields, reference patterns.

Must not import Slack or the scheduler.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

from gatebot.gate.models import CustomerAccountField
from gatebot.store.models import CatalogProduct

log = logging.getLogger(__name__)


_REF_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/#-]{0,63}$")
_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
_PHONE_RE = re.compile(r"^\+?[0-9][0-9 ()-]{5,20}[0-9]$")


def parse_account_lines(text: str) -> tuple[dict[str, str], list[str]]:
    """Free-form customer-account lines → (fields, problems): the one rule for the modal and the CLI.

    A line is ``key=value`` (or ``key: value`` when it has no ``=``); the value may contain ``=`` and
    ``:``. Blank lines and ``#`` comments are skipped. Keys are letters, digits, ``_ . -`` starting with
    a letter or ``_`` (what :class:`~gatebot.orders.validation.Validator` accepts). One problem per bad
    line, each naming the line and how to fix it; a key in a problem is cut to 30 characters.
    """
    fields: dict[str, str] = {}
    problems: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        sep = "=" if "=" in line else ":" if ":" in line else None
        if sep is None:
            problems.append(f"line {number} has no '=': write it as key=value")
            continue
        key, value = (part.strip() for part in line.split(sep, 1))
        if not _KEY_RE.match(key):
            shown = key if len(key) <= 30 else key[:29] + "…"
            problems.append(f"line {number}: {shown!r} is not a valid field name (letters, digits, _ . -)")
        elif not value:
            problems.append(f"line {number}: {key} has no value")
        elif key in fields:
            problems.append(f"line {number}: {key} is given twice")
        else:
            fields[key] = value
    return fields, problems


def account_fields_for(product: CatalogProduct,
                       configured: Mapping[str, list[dict[str, Any]]]) -> list[CustomerAccountField] | None:
    """The customer-account fields of a product: published by Gate, else configured, else ``None``.

    ``None`` means the fields are unknown and the user types free-form ``key=value`` pairs.
    """
    published = product.account_fields()
    if published is not None:
        return published
    raw = configured.get(str(product.id)) or (configured.get(product.slug) if product.slug else None)
    if raw is None:
        return None
    return [CustomerAccountField.model_validate(item) for item in raw]


def _full_match(pattern: str, value: str) -> bool:
    try:
        return re.fullmatch(pattern, value) is not None
    except re.error:
        log.warning("ignoring an invalid account-field pattern")
        return True

