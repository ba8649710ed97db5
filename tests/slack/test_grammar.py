"""The /gate grammar: every subcommand, Slack's escaped mentions and links, errors with usage lines,
the role-filtered usage table, and order references found in free text."""

import pytest

from gatebot.slack import ids
from gatebot.slack.grammar import (
    GENERAL_USAGE,
    USAGE,
    Command,
    GrammarError,
    allowed_usage,
    find_references,
    parse,
    reference_kind,
)

UUID = "3f2b8c1e-7d4a-4b9e-8f00-1234567890ab"
KEY = "gbk_" + "0123456789abcdef" * 2


@pytest.mark.parametrize("text", ["", "   ", "\n"])
def test_empty_text_is_help(text):
    assert parse(text) == Command("help")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("help", Command("help")),
        ("HELP orders", Command("help", ("orders",))),
        ("?", Command("help")),
        ("balance", Command("balance")),
        ("  Balance  ", Command("balance")),
        ("deposits", Command("deposits")),
        ("health", Command("health")),
        ("order #42", Command("order", ("#42",))),
        ("order 42", Command("order", ("42",))),
        (f"order {UUID}", Command("order", (UUID,))),
        (f"order {KEY}", Command("order", (KEY,))),
        ("order INV-1001", Command("order", ("INV-1001",))),
        ("orders", Command("orders")),
        ("orders pending", Command("orders", ("pending",))),
        ("orders FAILED", Command("orders", ("failed",))),
        ("orders mine", Command("orders", ("mine",))),
        ("buy", Command("buy")),
        ("buy steam wallet", Command("buy", ("steam", "wallet"))),
        ("products", Command("products")),
        ("products google play", Command("products", ("google", "play"))),
    ],
)
def test_every_subcommand_parses(text, expected):
    assert parse(text) == expected


def test_mentions_and_channel_links_fill_user_and_channel_ids():
    assert parse("orders <@U0123ABCD|alice>") == Command("orders", ("user",), user_id="U0123ABCD")
    assert parse("orders <@W0123ABCD>") == Command("orders", ("user",), user_id="W0123ABCD")
    assert parse("orders <#C0123ABCD|ops-orders>") == Command("orders", ("channel",), channel_id="C0123ABCD")


def test_entities_are_unescaped_and_links_become_their_label():
    assert parse("buy m&amp;m &lt;gift&gt;").query == "m&m <gift>"
    assert parse("products <https://example.com/steam|steam wallet>").query == "steam wallet"
    assert parse("order <https://gate.example.com/orders/x>").args == ("https://gate.example.com/orders/x",)


def test_auto_linked_emails_and_phone_numbers_read_as_typed():
    assert parse("products <mailto:a@example.com|a@example.com>").query == "a@example.com"
    assert parse("order <tel:+14155550123|+14155550123>").args == ("+14155550123",)


def test_search_query_joins_words_and_is_empty_without_any():
    assert parse("buy  steam   wallet ").query == "steam wallet"
    assert parse("products").query == ""


def test_command_usage_row_matches_its_name():
    assert parse("balance").usage is USAGE["balance"]


def _error(text: str) -> GrammarError:
    with pytest.raises(GrammarError) as info:
        parse(text)
    return info.value


def test_unknown_subcommand_says_what_was_wrong_and_suggests_the_closest():
    err = _error("balnce")
    assert "`balnce`" in err.message and "Did you mean `balance`?" in err.message
    assert err.usage == GENERAL_USAGE
    assert "Usage: " + GENERAL_USAGE in str(err)
    assert "Did you mean" not in _error("frobnicate").message


@pytest.mark.parametrize(
    ("text", "name", "fragment"),
    [
        ("order", "order", "Which order?"),
        ("order #1 #2", "order", "one order"),
        ("order <@U0123ABCD>", "order", "not an order reference"),
        ("order " + "x" * 101, "order", "too long"),
        ("orders soon", "orders", "Unknown filter `soon`"),
        ("orders pending mine", "orders", "one filter"),
        ("orders <!subteam^S0123|@ops>", "orders", "user group"),
        ("orders @bob", "orders", "couldn't recognise the person `@bob`"),
        ("orders <!here>", "orders", "Unknown filter `@here`"),
        ("balance USD", "balance", "takes no arguments"),
        ("deposits all", "deposits", "takes no arguments"),
        ("health now", "health", "takes no arguments"),
        ("buy <@U0123ABCD>", "buy", "can't contain `@U0123ABCD`"),
        ("products " + "steam " * 30, "products", "too long"),
        ("help nothing", "help", "no command `nothing`"),
        ("help balance orders", "help", "at most one"),
    ],
)
def test_bad_arguments_name_the_problem_and_carry_the_subcommand_usage(text, name, fragment):
    err = _error(text)
    assert fragment in err.message
    assert err.usage == USAGE[name].syntax


def test_a_mention_in_place_of_a_command_is_refused_with_the_general_usage():
    err = _error("<@U0123ABCD> balance")
    assert err.usage == GENERAL_USAGE


def test_error_messages_do_not_echo_backticks_or_huge_input():
    err = _error("orders `" + "x" * 500)
    assert len(err.message) < 200 and "``" not in err.message


def test_usage_table_covers_every_subcommand_with_example_and_role():
    assert set(USAGE) == {"help", "balance", "order", "orders", "buy", "bulk", "products", "deposits", "health",
                          "approvals", "export"}
    for row in USAGE.values():
        assert row.syntax.startswith(ids.COMMAND + " " + row.name)
        parse(row.example.removeprefix(ids.COMMAND))  # every example really parses
    assert {n: USAGE[n].role for n in USAGE} == {
        "help": None,
        "order": "support",
        "orders": "support",
        "balance": "finance",
        "deposits": "finance",
        "buy": "ops",
        "bulk": "ops",  # as much money as many single orders: the same role as buy
        "products": "ops",
        "health": None,
        "approvals": None,
        "export": "finance",
    }


@pytest.mark.parametrize(
    ("roles", "expected"),
    [
        ((), {"help", "health", "approvals"}),
        (("support",), {"help", "health", "approvals", "order", "orders"}),
        (("finance",), {"help", "health", "approvals", "balance", "deposits", "export"}),
        (("ops",), {"help", "health", "approvals", "buy", "bulk", "products"}),
        (("ops", "finance"), {"help", "health", "approvals", "buy", "bulk", "products", "balance", "deposits",
                              "export"}),
        (("admin",), set(USAGE)),
    ],
)
def test_allowed_usage_follows_roles_and_admins_see_everything(roles, expected):
    rows = allowed_usage(roles)
    assert {u.name for u in rows} == expected
    assert [u.name for u in rows] == [n for n in USAGE if n in expected]  # table order kept


# -- find_references -------------------------------------------------------------------------------


def test_find_references_extracts_every_kind_in_order_without_duplicates():
    text = (
        f"Customer says order #123 failed, Gate id {UUID.upper()} (key {KEY}), "
        "invoice INV-1001 / ticket GB-20261124-7K3Q; see #123 again and INV-1001."
    )
    assert find_references(text) == ["#123", UUID, KEY, "INV-1001", "GB-20261124-7K3Q"]


@pytest.mark.parametrize(
    "text",
    [
        "Meeting on 2026-11-24 at 10:00",  # dates are not refs
        "please e-mail the follow-up",  # no digits
        "<#C0123ABCD|general> and #general",  # channels
        "<@U0123ABCD> <!subteam^S0123|@ops-2> <!here>",
        "https://api-2.example.com/status",  # host names
    ],
)
def test_find_references_ignores_dates_channels_mentions_and_hosts(text):
    refs = find_references(text)
    assert "#general" not in refs and "2026-11-24" not in refs and "api-2" not in refs
    assert refs == []


def test_find_references_errs_on_the_side_of_candidates():
    # Indistinguishable from an external ref: harmless, the lookup just finds nothing for it.
    assert find_references("price was USD-10 off") == ["USD-10"]


def test_find_references_reads_refs_in_link_urls_and_labels_and_entities():
    text = (
        f"<https://gate.example.com/orders/{UUID}|the order> &amp; <https://crm.example.com/t/INV-77|INV-77>"
    )
    assert find_references(text) == [UUID, "INV-77"]


def test_find_references_accepts_bare_hex_keys_and_sentence_punctuation():
    assert find_references(f"key: {'ab' * 16}.") == ["ab" * 16]
    assert find_references("(#7), [INV-9]!") == ["#7", "INV-9"]


def test_find_references_is_bounded():
    text = " ".join(f"#{n}" for n in range(50))
    assert find_references(text) == [f"#{n}" for n in range(10)]
    assert len(find_references(text, limit=3)) == 3
    assert find_references("X-" + "1" * 70) == []  # longer than any external ref


@pytest.mark.parametrize(
    ("ref", "kind"),
    [
        ("#42", "number"),
        ("42", "number"),
        (UUID, "uuid"),
        (UUID.upper(), "uuid"),
        (KEY, "key"),
        ("ab" * 16, "key"),
        ("INV-1001", "external_ref"),
        ("GB-20261124-7K3Q", "external_ref"),
        ("#x", "external_ref"),
    ],
)
def test_reference_kind(ref, kind):
    assert reference_kind(ref) == kind


@pytest.mark.parametrize(("text", "args"), [
    ("export ledger", ("ledger", "", "", "")),
    ("export ORDERS 2026-11-01 2026-12-01 usd", ("orders", "2026-11-01", "2026-12-01", "USD")),
    ("export deposits 7d", ("deposits", "7d", "", "")),
])
def test_export_takes_a_kind_up_to_two_times_and_a_currency(text, args):
    assert parse(text) == Command("export", args)


@pytest.mark.parametrize(("text", "message"), [
    ("export", "Which export? Use `orders`, `deposits` or `ledger`."),
    ("export sales", "Which export? Use `orders`, `deposits` or `ledger`."),
    ("export ledger yesterday", "`yesterday` is not a time: use a date like 2026-11-24"),
    ("export ledger 1d 2d 3d", "Give at most two times: since and until."),
])
def test_bad_export_arguments_are_explained(text, message):
    with pytest.raises(GrammarError) as err:
        parse(text)
    assert err.value.message.startswith(message)


# -- hostile text (ISSUE 10 hole 8): the one sanitiser runs before anything else ----------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("order INV-1\x00", Command("order", ("INV-1",))),
    ("order\x00 INV-1", Command("order", ("INV-1",))),
    ("order INV-1\ud800", Command("order", ("INV-1",))),
    ("products steam\x07\tgift", Command("products", ("steam", "gift"))),
])
def test_control_characters_never_reach_an_argument(text, expected):
    assert parse(text) == expected


def test_a_huge_command_is_one_clear_error():
    err = _error("products " + "steam " * 20_000)
    assert err.message == "That command is too long (at most 1000 characters)."
    assert err.usage == GENERAL_USAGE
