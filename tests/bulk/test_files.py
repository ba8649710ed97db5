"""Invalid bulk files: each gets a clear report by row and column, and nothing is saved or charged.

Row numbers are the spreadsheet's: the header is row 1, the first order row 2.
"""

from __future__ import annotations

import pytest
from sqlmodel import func, select

from gatebot.bulk import MAX_ROWS, BulkInvalid, Problem, read_csv
from gatebot.store.models import Batch, Order

from .conftest import HEADER, Bulk, csv_bytes, topup_rows, voucher_rows


async def refused(bulk: Bulk, data: bytes) -> list[Problem]:
    with pytest.raises(BulkInvalid) as info:
        await bulk.service.plan(data, requester="U123", source_name="bad.csv")
    assert bulk.p.creates() == 0  # the sandbox saw no order
    with bulk.p.db.session() as s:
        assert s.exec(select(func.count()).select_from(Batch)).one() == 0
        assert s.exec(select(func.count()).select_from(Order)).one() == 0
    return info.value.problems


def texts(problems: list[Problem]) -> list[str]:
    return [str(p) for p in problems]


async def test_a_missing_required_column_is_named(bulk: Bulk) -> None:
    problems = await refused(bulk, csv_bytes(["101,1,"], header="product,quantity,amount"))
    assert texts(problems) == ["row 1, external_ref: The header has no external_ref column; it is required."]


async def test_an_unknown_product_is_reported_on_its_row(bulk: Bulk) -> None:
    rows = voucher_rows(3)
    rows[1] = "no-such-card,1,,REF-00002,,"
    problems = await refused(bulk, csv_bytes(rows))
    assert texts(problems) == ["row 3, product: There is no product 'no-such-card' in the catalog."]


async def test_a_duplicate_reference_in_the_file_and_one_taken_in_the_store(bulk: Bulk) -> None:
    from gatebot.orders import OrderDraft

    await bulk.p.service.place(OrderDraft(product=101, requester="U9", external_ref="INV-7"))
    creates = bulk.p.creates()
    rows = [*voucher_rows(2), "101,1,,ref-00001,,", "101,1,,INV-7,,"]
    with pytest.raises(BulkInvalid) as info:
        await bulk.service.plan(csv_bytes(rows), requester="U123", source_name="dup.csv")
    assert bulk.p.creates() == creates
    assert [(p.row, p.column) for p in info.value.problems] == [(4, "external_ref"), (5, "external_ref")]
    assert "already used by row 2 of this file" in info.value.problems[0].message
    assert "INV-7 is already used by order #1" in info.value.problems[1].message


async def test_a_bad_amount_on_row_4317_of_5000_rows_is_the_one_problem(bulk: Bulk) -> None:
    rows = topup_rows(5000)
    rows[4317 - 2] = rows[4317 - 2].replace(",10,", ",7.50,")
    problems = await refused(bulk, csv_bytes(rows))
    assert texts(problems) == [
        "row 4,317, amount: The amount must go in steps of USD 1.00 — e.g. USD 7.00 or USD 8.00."]


async def test_every_problem_of_a_file_is_listed_at_once(bulk: Bulk) -> None:
    rows = [*topup_rows(2), "steam-wallet,,500,TOP-9,bad login!,nope", "101,2,20,REF-1,,",
            "itunes-gift-card-15-eur,,,R,,"]
    problems = await refused(bulk, csv_bytes(rows))
    assert [(p.row, p.column) for p in problems] == [
        (4, "amount"), (4, "email"), (4, "steam_login"), (5, "amount"), (6, "product")]


async def test_binary_junk_an_empty_file_and_no_header(bulk: Bulk) -> None:
    assert "binary data" in texts(await refused(bulk, b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"))[0]
    assert "not UTF-8" in texts(await refused(bulk, "product,external_ref\n101,caf\xe9\n".encode("latin-1")))[0]
    assert texts(await refused(bulk, b"")) == [
        "The file is empty: it needs a header row and at least one order."]
    assert texts(await refused(bulk, b" \r\n\r\n")) == [
        "The file is empty: it needs a header row and at least one order."]
    assert "must be a header" in texts(await refused(bulk, b"101,1,,REF-1\n102,1,,REF-2\n"))[0]
    assert texts(await refused(bulk, csv_bytes([]))) == [
        "The file has a header but no orders: add one row per order."]


async def test_5001_rows_are_refused_5000_are_read(bulk: Bulk) -> None:
    problems = await refused(bulk, csv_bytes(voucher_rows(MAX_ROWS + 1)))
    assert texts(problems) == ["The file has 5,001 orders; at most 5,000 fit in one batch. Split it into several "
                               "files."]
    assert len(read_csv(csv_bytes(voucher_rows(MAX_ROWS))).rows) == MAX_ROWS


async def test_an_account_column_no_product_takes_is_an_unknown_column(bulk: Bulk) -> None:
    problems = await refused(bulk, csv_bytes([topup_rows(1)[0] + ",DE89"], header=HEADER + ",iban"))
    assert texts(problems) == ["row 1, iban: No top-up in this file takes a iban field (they take email, "
                               "steam_login); rename or delete the column.",
                               "row 2: Steam Wallet Top Up does not take iban; its fields are email, "
                               "steam_login."]


async def test_a_voucher_row_filling_a_top_up_column_is_told(bulk: Bulk) -> None:
    problems = await refused(bulk, csv_bytes([*topup_rows(1), "101,1,,REF-1,player_1,"]))
    assert texts(problems) == ["row 3, steam_login: Steam Gift Card 20 USD is a voucher: it takes no customer "
                               "account; leave this empty."]


def test_bom_semicolons_blank_lines_and_quoted_values_are_read() -> None:
    data = ("\ufeffProduct;Quantity;Amount;External_Ref;steam_login\r\n\r\n"
            '456;;"10";"INV;1";player_1\r\n101;2;;INV-2;\r\n').encode()
    file = read_csv(data)
    assert file.columns == ("product", "quantity", "amount", "external_ref", "steam_login")
    assert [(r.number, r.values["external_ref"]) for r in file.rows] == [(3, "INV;1"), (4, "INV-2")]


def test_header_problems_are_all_listed() -> None:
    with pytest.raises(BulkInvalid) as info:
        read_csv(b"product,product,,bad name!\n101,101,,x\n")
    assert [str(p) for p in info.value.problems] == [
        "row 1, product: This column appears twice: keep one.",
        "Column 3 has no name: name it or delete it.".join(["row 1: ", ""]),
        "row 1, bad name!: Not a column name gatebot knows: use product, quantity, amount, external_ref, or an "
        "account field name (letters, digits, _ . -).",
        "row 1, external_ref: The header has no external_ref column; it is required.",
    ]
    with pytest.raises(BulkInvalid, match="row 3: This row has 5 values but the header names 4 columns"):
        read_csv(b"product,quantity,amount,external_ref\n101,1,,A\n101,1,,B,extra\n")
