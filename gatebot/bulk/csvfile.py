"""Reading a bulk file: bytes in, a header and rows of text out, or every problem with the file itself.

The format (README, "Bulk orders"): UTF-8 with or without a BOM; ``,`` or ``;`` between values (the
header line decides); a header row naming the columns ``product`` (id or slug, required),
``external_ref`` (required: every row needs its own reference, so the same file uploaded twice is
refused instead of ordered twice), ``quantity`` and ``amount`` (as the product needs them), and one
column per customer-account field (``steam_login``, ``email``...). Up to :data:`MAX_ROWS` orders. Blank
lines are skipped. Row numbers are the spreadsheet's: the header is row 1, the first order row 2.

Whether a value is right (the product exists, the amount fits, an account column belongs to the product)
is the order validation's business (``gatebot.bulk.planning``), not this module's.

Pure: no I/O. Must not import Slack, the scheduler or the store.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from gatebot.bulk.model import FIRST_DATA_ROW, BulkInvalid, Problem

__all__ = ["ACCOUNT_KEY_RE", "BASE_COLUMNS", "MAX_BYTES", "MAX_ROWS", "REQUIRED_COLUMNS", "CsvFile", "CsvRow",
           "read_csv"]

#: Most orders in one file.
MAX_ROWS: Final = 5000
#: Largest file read (5,000 rows of a few hundred characters fit many times over).
MAX_BYTES: Final = 10 * 1024 * 1024
BASE_COLUMNS: Final = ("product", "quantity", "amount", "external_ref")
REQUIRED_COLUMNS: Final = ("product", "external_ref")
#: What a customer-account column may be called (the same shape as a free-form account key).
ACCOUNT_KEY_RE: Final = re.compile(r"[A-Za-z][A-Za-z0-9_.\-]{0,63}")
_MAX_CELL: Final = 1000


@dataclass(frozen=True, slots=True)
class CsvRow:
    """One order row: its spreadsheet row number and its values by column (stripped; ``""`` when empty)."""

    number: int
    values: dict[str, str]


@dataclass(frozen=True, slots=True)
class CsvFile:
    """A readable bulk file: the columns as named in the header (base columns lower-cased) and the rows."""

    columns: tuple[str, ...]
    rows: tuple[CsvRow, ...]

    @property
    def account_columns(self) -> tuple[str, ...]:
        return tuple(c for c in self.columns if c not in BASE_COLUMNS)


def read_csv(data: bytes) -> CsvFile:
    """The header and rows of ``data``, or :class:`BulkInvalid` with every problem of the file's form."""
    text = _decode(data)
    lines = text.splitlines()
    first = next((line for line in lines if line.strip()), None)
    if first is None:
        raise BulkInvalid([Problem(None, None, "The file is empty: it needs a header row and at least one order.")])
    delimiter = ";" if first.count(";") > first.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = next(reader)
        while not any(cell.strip() for cell in header):
            header = next(reader)
    except (csv.Error, StopIteration):
        raise BulkInvalid([Problem(1, None, "The header row cannot be read as CSV.")]) from None
    columns = _columns(header)
    rows, problems = _rows(reader, columns)
    if not rows and not problems:
        problems.append(Problem(None, None, "The file has a header but no orders: add one row per order."))
    if problems:
        raise BulkInvalid(problems)
    return CsvFile(columns=columns, rows=tuple(rows))


def _decode(data: bytes) -> str:
    if not data.strip():
        raise BulkInvalid([Problem(None, None, "The file is empty: it needs a header row and at least one order.")])
    if len(data) > MAX_BYTES:
        raise BulkInvalid([Problem(None, None, f"The file is {len(data):,} bytes; at most {MAX_BYTES:,} are read. "
                                               f"Split it into files of at most {MAX_ROWS:,} orders.")])
    if b"\x00" in data:
        raise BulkInvalid([Problem(None, None, "This is not a CSV text file (it holds binary data). Save the "
                                               "spreadsheet as CSV (UTF-8) and upload that.")])
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BulkInvalid([Problem(None, None, f"The file is not UTF-8 text (byte {exc.start + 1:,} cannot be read). "
                                               "Save it as CSV UTF-8 and upload it again.")]) from None


def _columns(header: list[str]) -> tuple[str, ...]:
    """The header's column names, or every problem with them (a header that looks like an order row
    says so: the first line must name the columns)."""
    names = [cell.strip() for cell in header]
    canonical = [n.lower() if n.lower() in BASE_COLUMNS else n for n in names]
    problems: list[Problem] = []
    if not any(n in BASE_COLUMNS for n in canonical):
        sample = ", ".join(n for n in names[:4] if n)[:60]
        raise BulkInvalid([Problem(1, None, f"The first row must be a header naming the columns "
                                            f"({', '.join(BASE_COLUMNS)} and the account fields); it reads "
                                            f"{sample!r}. Add a header row.")])
    seen: set[str] = set()
    for index, name in enumerate(canonical, start=1):
        if not name:
            problems.append(Problem(1, None, f"Column {index} has no name: name it or delete it."))
        elif name in seen:
            problems.append(Problem(1, name, "This column appears twice: keep one."))
        elif name not in BASE_COLUMNS and not ACCOUNT_KEY_RE.fullmatch(name):
            problems.append(Problem(1, name[:40], "Not a column name gatebot knows: use product, quantity, amount, "
                                                  "external_ref, or an account field name (letters, digits, _ . -)."))
        seen.add(name)
    for required in REQUIRED_COLUMNS:
        if required not in canonical:
            problems.append(Problem(1, required, f"The header has no {required} column; it is required."))
    if problems:
        raise BulkInvalid(problems)
    return tuple(canonical)


def _rows(reader: Iterator[list[str]], columns: tuple[str, ...]) -> tuple[list[CsvRow], list[Problem]]:
    rows: list[CsvRow] = []
    problems: list[Problem] = []
    number = FIRST_DATA_ROW - 1  # the header's row (blank lines before it are not counted)
    try:
        for record in reader:
            number += 1
            if not any(cell.strip() for cell in record):
                continue
            if len(rows) == MAX_ROWS:
                total = MAX_ROWS + 1 + sum(1 for r in reader if any(c.strip() for c in r))
                return rows, [Problem(None, None, f"The file has {total:,} orders; at most {MAX_ROWS:,} fit in one "
                                                  "batch. Split it into several files.")]
            if len(record) > len(columns):
                problems.append(Problem(number, None, f"This row has {len(record)} values but the header names "
                                                      f"{len(columns)} columns."))
                continue
            values = {col: (record[i].strip() if i < len(record) else "") for i, col in enumerate(columns)}
            long = [col for col, value in values.items() if len(value) > _MAX_CELL]
            for col in long:
                problems.append(Problem(number, col, f"The value is longer than {_MAX_CELL} characters."))
            rows.append(CsvRow(number=number, values=values))
    except csv.Error as exc:
        problems.append(Problem(number + 1, None, f"The row cannot be read as CSV ({exc}); check its quotes."))
    return rows, problems
