"""The ``/gate`` command grammar and order-reference extraction — pure text in, values out.

``parse(text)`` turns the text Slack sends with a slash command (``should_escape: true``, so
mentions arrive as ``<@U123|name>``, channels as ``<#C123|name>``, user groups as
``<!subteam^S123|@ops>``, links as ``<https://x|label>``, and ``& < >`` as entities) into a
:class:`Command`, or raises :class:`GrammarError` saying what was wrong together with the usage line.
:data:`USAGE` is the table ``help`` is built from, filtered by the viewer's roles.

:func:`find_references` pulls order references (``#123``, Gate order UUIDs, external refs such as
``GB-20261124-7K3Q`` / ``INV-1001``, idempotency keys ``gbk_<32 hex>``) out of arbitrary message text
for the "Look up order" shortcut.

Checking roles against a user is not done here (that needs Slack user groups); this module only knows
which role each subcommand requires. Must not import Slack libraries, the store or anything doing I/O.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Literal

from gatebot.clock import TimeArgumentError, parse_when
from gatebot.slack import ids
from gatebot.textinput import MAX_QUERY, MAX_REFERENCE, InputTooLong, clean_text

__all__ = [
    "GENERAL_USAGE",
    "ROLES",
    "ROLE_ADMIN",
    "ROLE_FINANCE",
    "ROLE_OPS",
    "ROLE_SUPPORT",
    "USAGE",
    "Command",
    "GrammarError",
    "ReferenceKind",
    "Usage",
    "allowed_usage",
    "find_references",
    "parse",
    "reference_kind",
]

ROLE_ADMIN = "admin"
ROLE_OPS = "ops"
ROLE_FINANCE = "finance"
ROLE_SUPPORT = "support"
ROLES = (ROLE_ADMIN, ROLE_OPS, ROLE_FINANCE, ROLE_SUPPORT)

#: Longest command text looked at; every argument has its own, smaller limit (MAX_QUERY, MAX_REFERENCE).
MAX_COMMAND = 1000

C = ids.COMMAND


@dataclass(frozen=True, slots=True)
class Usage:
    """One row of the help table: how to call a subcommand and who may."""

    name: str
    syntax: str
    example: str
    summary: str
    #: Role needed to run it; ``None`` = anyone. Admins may run everything.
    role: str | None

    def allowed_for(self, roles: Iterable[str]) -> bool:
        have = set(roles)
        return self.role is None or ROLE_ADMIN in have or self.role in have


USAGE: Mapping[str, Usage] = MappingProxyType({
    u.name: u for u in (
        # ``help`` is open to everyone (the brief listed it under support): a person without the support
        # role must still be able to learn which commands they can run.
        Usage("help", f"{C} help [command]", f"{C} help orders", "Show the commands you can use", None),
        Usage("order", f"{C} order <ref>", f"{C} order #42",
              "Look up one order by #number, Gate order id, external ref or idempotency key (or a bulk batch: B12)",
              ROLE_SUPPORT),
        Usage("orders", f"{C} orders [pending|failed|mine|@person|#channel]", f"{C} orders pending",
              "List recent orders, optionally filtered", ROLE_SUPPORT),
        Usage("balance", f"{C} balance", f"{C} balance",
              "Show the Gate balance per currency against its alert thresholds", ROLE_FINANCE),
        Usage("deposits", f"{C} deposits", f"{C} deposits", "Show recent deposits", ROLE_FINANCE),
        Usage("buy", f"{C} buy [product search]", f"{C} buy steam", "Open the order form", ROLE_OPS),
        # Bulk orders charge as much as hundreds of single orders: the same role as ``buy``.
        Usage("bulk", f"{C} bulk", f"{C} bulk", "Order many vouchers and top-ups from one CSV file", ROLE_OPS),
        Usage("products", f"{C} products [search]", f"{C} products google play", "Search the catalog",
              ROLE_OPS),
        Usage("health", f"{C} health", f"{C} health", "Check the Gate API and gatebot's jobs", None),
        Usage("approvals", f"{C} approvals", f"{C} approvals",
              "List the approval requests waiting for you (and your own)", None),
        Usage("export", f"{C} export orders|deposits|ledger [since] [until] [currency]",
              f"{C} export ledger 2026-11-01 2026-12-01 USD",
              "Get a finance CSV by DM (since defaults to 7d, until to now)", ROLE_FINANCE),
    )
})  # fmt: skip

#: One line naming every subcommand, shown with errors that are not about one subcommand.
GENERAL_USAGE = f"{C} " + " | ".join(u.syntax.removeprefix(f"{C} ") for u in USAGE.values())

_ALIASES = {"?": "help", "-h": "help", "--help": "help", "product": "products", "deposit": "deposits",
            "balances": "balance", "status": "health",
            "approval": "approvals"}


def allowed_usage(roles: Iterable[str]) -> list[Usage]:
    """The usage rows a person with ``roles`` may run, in table order (for ``help``)."""
    have = set(roles)
    return [u for u in USAGE.values() if u.allowed_for(have)]


class GrammarError(ValueError):
    """The command text could not be understood. ``message`` says why; ``usage`` shows the right form."""

    def __init__(self, message: str, usage: str) -> None:
        super().__init__(f"{message}\nUsage: {usage}")
        self.message = message
        self.usage = usage


@dataclass(frozen=True, slots=True)
class Command:
    """A parsed ``/gate`` command.

    ``args`` per subcommand:

    - ``help``: ``()`` or ``(subcommand,)``
    - ``order``: ``(ref,)`` as typed (see :func:`reference_kind`)
    - ``orders``: ``()``, ``("pending",)``, ``("failed",)``, ``("mine",)``, ``("user",)`` with
      :attr:`user_id` set, or ``("channel",)`` with :attr:`channel_id` set
    - ``buy`` / ``products``: the search words (``query`` joins them)
    - ``balance`` / ``deposits`` / ``health`` / ``bulk``: ``()``
    - ``export``: ``(kind, since, until, currency)``, ``""`` for each one not given
    """

    name: str
    args: tuple[str, ...] = ()
    user_id: str | None = None
    channel_id: str | None = None

    @property
    def query(self) -> str:
        """The search text of ``buy`` / ``products`` (``""`` when none was given)."""
        return " ".join(self.args)

    @property
    def usage(self) -> Usage:
        return USAGE[self.name]


# -- tokenising ----------------------------------------------------------------------------------

_TOKEN_RE = re.compile(r"<[^<>]*>|[^\s<]+")
_USER_RE = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")
_CHANNEL_RE = re.compile(r"<#([CG][A-Z0-9]+)(?:\|[^>]*)?>")
_SUBTEAM_RE = re.compile(r"<!subteam\^([A-Z0-9]+)(?:\|[^>]*)?>")
_SPECIAL_RE = re.compile(r"<!([a-z]+)(?:\^[^|>]*)?(?:\|[^>]*)?>")
#: Any URL Slack auto-links (``https:``, ``mailto:`` for e-mail addresses, ``tel:``…).
_LINK_RE = re.compile(r"<([a-zA-Z][a-zA-Z0-9+.\-]*:[^|>]*)(?:\|([^>]*))?>")


@dataclass(frozen=True, slots=True)
class _Token:
    kind: Literal["word", "user", "channel", "usergroup", "special", "link"]
    text: str  # the word, the id, or the link's label (else its URL)


def unescape(text: str) -> str:
    """Undo Slack's ``&amp; &lt; &gt;`` escaping."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _tokens(text: str) -> list[_Token]:
    out: list[_Token] = []
    for raw in _TOKEN_RE.findall(text):
        if m := _USER_RE.fullmatch(raw):
            out.append(_Token("user", m.group(1)))
        elif m := _CHANNEL_RE.fullmatch(raw):
            out.append(_Token("channel", m.group(1)))
        elif m := _SUBTEAM_RE.fullmatch(raw):
            out.append(_Token("usergroup", m.group(1)))
        elif m := _LINK_RE.fullmatch(raw):
            out.append(_Token("link", unescape(m.group(2) or m.group(1))))
        elif m := _SPECIAL_RE.fullmatch(raw):
            out.append(_Token("special", m.group(1)))
        else:
            out.append(_Token("word", unescape(raw)))
    return out


# -- parsing ---------------------------------------------------------------------------------------


def parse(text: str) -> Command:
    """Parse the text after ``/gate``. Empty text means ``help``.

    Raises :class:`GrammarError` for an unknown subcommand or a bad argument.
    """
    try:  # the one sanitiser: no NUL or other control character reaches a lookup or a search
        text = clean_text(text, limit=MAX_COMMAND, what="That command")
    except InputTooLong as exc:
        raise GrammarError(str(exc), GENERAL_USAGE) from None
    tokens = _tokens(text)
    if not tokens:
        return Command("help")
    head, rest = tokens[0], tokens[1:]
    if head.kind != "word":
        raise GrammarError("Start with a command, for example `balance` or `orders`.", GENERAL_USAGE)
    name = head.text.lower()
    name = _ALIASES.get(name, name)
    if name not in USAGE:
        close = difflib.get_close_matches(name, list(USAGE), n=1, cutoff=0.6)
        hint = f" Did you mean `{close[0]}`?" if close else ""
        raise GrammarError(f"I don't know the command `{_shorten(head.text)}`.{hint}", GENERAL_USAGE)
    usage = USAGE[name].syntax
    if name == "help":
        return _parse_help(rest, usage)
    if name == "order":
        return _parse_order(rest, usage)
    if name == "orders":
        return _parse_orders(rest, usage)
    if name in ("buy", "products"):
        return _parse_search(name, rest, usage)
    if name == "export":
        return _parse_export(rest, usage)
    if rest:  # balance, deposits, health, approvals, bulk take no arguments
        raise GrammarError(f"`{name}` takes no arguments (got `{_shorten(_describe(rest[0]))}`).", usage)
    return Command(name)


def _parse_help(rest: list[_Token], usage: str) -> Command:
    if not rest:
        return Command("help")
    if len(rest) > 1 or rest[0].kind != "word":
        raise GrammarError("`help` takes at most one command name.", usage)
    topic = _ALIASES.get(rest[0].text.lower(), rest[0].text.lower())
    if topic not in USAGE:
        raise GrammarError(f"There is no command `{_shorten(rest[0].text)}` to explain.", usage)
    return Command("help", (topic,))


def _parse_order(rest: list[_Token], usage: str) -> Command:
    if not rest:
        raise GrammarError(
            "Which order? Give its #number, Gate order id, external ref or idempotency key.", usage)
    if len(rest) > 1:
        raise GrammarError("`order` looks up one order; to list several use `orders`.", usage)
    token = rest[0]
    if token.kind not in ("word", "link"):
        raise GrammarError(f"`{_shorten(_describe(token))}` is not an order reference.", usage)
    ref = token.text.strip()
    if not ref or len(ref) > MAX_REFERENCE:
        raise GrammarError("That order reference is too long to be one of ours.", usage)
    return Command("order", (ref,))


_ORDER_FILTERS = ("pending", "failed", "mine")


def _parse_orders(rest: list[_Token], usage: str) -> Command:
    if not rest:
        return Command("orders")
    if len(rest) > 1:
        raise GrammarError("`orders` takes one filter at most.", usage)
    token = rest[0]
    if token.kind == "user":
        return Command("orders", ("user",), user_id=token.text)
    if token.kind == "channel":
        return Command("orders", ("channel",), channel_id=token.text)
    if token.kind == "usergroup":
        raise GrammarError("`orders` lists one person's orders; a user group can't be used here.", usage)
    word = token.text.lower()
    if token.kind == "word" and word in _ORDER_FILTERS:
        return Command("orders", (word,))
    if token.kind == "word" and word.startswith("@"):
        raise GrammarError(
            f"I couldn't recognise the person `{_shorten(token.text)}`: pick them from Slack's "
            "autocomplete so the command carries a real mention.", usage)
    raise GrammarError(f"Unknown filter `{_shorten(_describe(token))}`: "
                       "use pending, failed, mine, @person or #channel.", usage)


def _parse_search(name: str, rest: list[_Token], usage: str) -> Command:
    for token in rest:
        if token.kind not in ("word", "link"):
            raise GrammarError(f"Search text can't contain `{_shorten(_describe(token))}`.", usage)
    words = tuple(t.text for t in rest)
    if len(" ".join(words)) > MAX_QUERY:
        raise GrammarError(f"That search is too long (at most {MAX_QUERY} characters).", usage)
    return Command(name, words)


EXPORT_KINDS = ("orders", "deposits", "ledger")
_CURRENCY_RE = re.compile(r"[A-Za-z]{3}")
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def _parse_export(rest: list[_Token], usage: str) -> Command:
    """``export <kind> [since] [until] [currency]`` → ``args = (kind, since, until, currency)``, ``""`` for
    what was not given (the listener applies the defaults with its clock)."""
    if not rest or rest[0].kind != "word" or rest[0].text.lower() not in EXPORT_KINDS:
        raise GrammarError("Which export? Use `orders`, `deposits` or `ledger`.", usage)
    kind = rest[0].text.lower()
    times: list[str] = []
    currency = ""
    for token in rest[1:]:
        if token.kind != "word":
            raise GrammarError(f"`{_shorten(_describe(token))}` is not a date or a currency.", usage)
        if _CURRENCY_RE.fullmatch(token.text) and not currency:
            currency = token.text.upper()
            continue
        try:
            parse_when(token.text, now=_EPOCH)
        except TimeArgumentError:
            raise GrammarError(f"`{_shorten(token.text)}` is not a time: use a date like 2026-11-24, a time like "
                               "2026-11-24T09:00, or an age like 2h or 7d.", usage) from None
        times.append(token.text)
    if len(times) > 2:
        raise GrammarError("Give at most two times: since and until.", usage)
    since, until = [*times, "", ""][:2]
    return Command("export", (kind, since, until, currency))


def _describe(token: _Token) -> str:
    """How a token is shown back in an error (ids rather than re-escaped Slack markup)."""
    return {"user": "@{}", "channel": "#{}", "usergroup": "@group {}", "special": "@{}"}.get(
        token.kind, "{}").format(token.text)


def _shorten(text: str, limit: int = 40) -> str:
    text = text.replace("`", "'")
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- order references --------------------------------------------------------------------------------

ReferenceKind = Literal["number", "uuid", "key", "external_ref"]

_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_NUMBER_RE = re.compile(r"#?(\d{1,12})")
_UUID_RE = re.compile(_UUID)
_KEY_RE = re.compile(r"gbk_[0-9a-fA-F]{32}|[0-9a-fA-F]{32}")

_FIND_RE = re.compile(
    r"(?P<number>(?<![\w&#])#\d{1,12}(?!\w))"
    rf"|(?P<uuid>(?<![\w-]){_UUID}(?![\w-]))"
    r"|(?P<key>(?<![\w-])(?:gbk_[0-9a-fA-F]{32}|[0-9a-fA-F]{32})(?![\w-]))"
    r"|(?P<ref>(?<![\w.@#&-])[A-Za-z][A-Za-z0-9]*(?:[-_][A-Za-z0-9]+)+(?![\w-])(?!\.\w))"
)
#: Slack markup that never holds a reference of ours: mentions, channels, user groups, specials.
_MARKUP_RE = re.compile(r"<[@#!][^<>]*>")


def reference_kind(ref: str) -> ReferenceKind:
    """What an order reference looks like: our ``#number``, a UUID (a Gate order id, or a key some other
    client generated), one of our idempotency keys, or else an external ref."""
    ref = ref.strip()
    if _NUMBER_RE.fullmatch(ref):
        return "number"
    if _UUID_RE.fullmatch(ref):
        return "uuid"
    if _KEY_RE.fullmatch(ref):
        return "key"
    return "external_ref"


def find_references(text: str, *, limit: int = 10) -> list[str]:
    """Order references in free message text, in order of appearance, without duplicates.

    Returns ``#123`` for our numbers, lower-cased UUIDs and keys, and external refs as written: a word
    starting with a letter that has a dash and a digit (``INV-1001``, ``GB-20261124-7K3Q``) — dates
    (``2026-11-24``) and words without digits (``e-mail``) are not references.
    """
    text = unescape(_MARKUP_RE.sub(" ", text))
    found: list[str] = []
    for m in _FIND_RE.finditer(text):
        kind = m.lastgroup
        value = m.group()
        if kind in ("uuid", "key"):
            value = value.lower()
        elif kind == "ref" and not ("-" in value and any(ch.isdigit() for ch in value) and len(value) <= 64):
            continue
        if value not in found:
            found.append(value)
            if len(found) >= limit:
                break
    return found
