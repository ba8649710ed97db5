"""Encryption at rest for the order store's sensitive columns.

What lives here: the :class:`Cipher` protocol, :class:`FernetCipher` (cryptography's ``MultiFernet``:
the first key encrypts, every key decrypts, so keys can be rotated), :class:`PlainCipher` (used when
``GATEBOT_ENCRYPTION_KEY`` is unset), :func:`cipher_from_key`, and :func:`seal_json` / :func:`open_json`
which turn a JSON object into a stored string and back.

Every stored value carries a prefix saying how it was written: ``f1:`` (Fernet) or ``p1:`` (plain).
That is what lets a deployment start without a key and add one later (old ``p1:`` values stay readable,
new ones are encrypted, :meth:`FernetCipher.rotate` re-encrypts them), and it is why a ``f1:`` value
read without a key fails with a message naming the missing setting instead of returning garbage.

JSON here is exact (:mod:`gatebot.exact_json`): ``Decimal`` is written as a JSON number with all its
digits and read back as ``Decimal``; floats are refused. Error messages never contain the plaintext or a key.

Must not import Slack, the scheduler, or any other gatebot module but the leaf :mod:`gatebot.exact_json`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from gatebot import exact_json

__all__ = [
    "FERNET_PREFIX",
    "KEY_HELP",
    "PLAIN_PREFIX",
    "Cipher",
    "CipherError",
    "FernetCipher",
    "PlainCipher",
    "cipher_from_key",
    "dumps_exact",
    "open_json",
    "seal_json",
]

FERNET_PREFIX = "f1:"
PLAIN_PREFIX = "p1:"

#: How to make a key; quoted in every error about a bad or missing key.
KEY_HELP = 'make one with: python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'


class CipherError(Exception):
    """A stored value cannot be decrypted (no key, wrong key, or not a value this module wrote)."""


@runtime_checkable
class Cipher(Protocol):
    """Turns text into the string stored in the database and back."""

    def encrypt(self, plaintext: str) -> str: ...

    def decrypt(self, stored: str) -> str: ...


def _split(stored: str) -> tuple[str, str]:
    if not isinstance(stored, str):
        raise CipherError(f"stored value must be a string, got {type(stored).__name__}")
    for prefix in (FERNET_PREFIX, PLAIN_PREFIX):
        if stored.startswith(prefix):
            return prefix, stored[len(prefix) :]
    raise CipherError("stored value has no known prefix (expected 'f1:' or 'p1:'); was it written by gatebot?")


class PlainCipher:
    """No encryption: values are stored as ``p1:<plaintext>``. Used when no key is configured."""

    encrypts = False

    def encrypt(self, plaintext: str) -> str:
        return PLAIN_PREFIX + plaintext

    def decrypt(self, stored: str) -> str:
        prefix, body = _split(stored)
        if prefix == FERNET_PREFIX:
            raise CipherError(
                "this value is encrypted but GATEBOT_ENCRYPTION_KEY is not set: "
                "set it to the key the data was written with"
            )
        return body

    def __repr__(self) -> str:
        return "PlainCipher()"


class FernetCipher:
    """Fernet encryption with rotation: ``keys[0]`` encrypts, every key in ``keys`` decrypts.

    To rotate: put the new key first and keep the old one after it (``GATEBOT_ENCRYPTION_KEY=new,old``),
    re-encrypt stored values with :meth:`rotate`, then drop the old key.
    """

    encrypts = True

    def __init__(self, keys: Sequence[str]) -> None:
        if isinstance(keys, str):
            raise TypeError("FernetCipher takes a list of keys; use cipher_from_key() for a comma-separated string")
        if not keys:
            raise ValueError(f"GATEBOT_ENCRYPTION_KEY: at least one key is needed; {KEY_HELP}")
        fernets: list[Fernet] = []
        for position, key in enumerate(keys, start=1):
            try:
                fernets.append(Fernet(key.strip()))
            except (ValueError, TypeError):
                which = f"key {position} of {len(keys)}" if len(keys) > 1 else "the key"
                raise ValueError(
                    f"GATEBOT_ENCRYPTION_KEY: {which} is not a valid Fernet key "
                    f"(32 url-safe base64-encoded bytes); {KEY_HELP}"
                ) from None
        self._fernet = MultiFernet(fernets)
        self.key_count = len(fernets)

    def encrypt(self, plaintext: str) -> str:
        return FERNET_PREFIX + self._fernet.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def decrypt(self, stored: str) -> str:
        prefix, body = _split(stored)
        if prefix == PLAIN_PREFIX:
            return body  # written before a key was configured
        try:
            return self._fernet.decrypt(body.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError):
            raise CipherError(
                "cannot decrypt a stored value with GATEBOT_ENCRYPTION_KEY: the key it was written with "
                "is not among the configured keys (keep old keys after the new one while rotating)"
            ) from None

    def rotate(self, stored: str) -> str:
        """Re-encrypt ``stored`` (``f1:`` with any known key, or ``p1:``) with the first key."""
        prefix, body = _split(stored)
        if prefix == PLAIN_PREFIX:
            return self.encrypt(body)
        try:
            return FERNET_PREFIX + self._fernet.rotate(body.encode("ascii")).decode("ascii")
        except InvalidToken:
            raise CipherError(
                "cannot re-encrypt a stored value: the key it was written with is not configured"
            ) from None

    def __repr__(self) -> str:
        return f"FernetCipher(<{self.key_count} key(s)>)"


def cipher_from_key(secret: str | None) -> FernetCipher | PlainCipher:
    """The cipher for ``GATEBOT_ENCRYPTION_KEY``: unset/empty -> plain; ``new,old,...`` -> Fernet, rotating.

    Raises ``ValueError`` naming the variable (never echoing the key) when a key is malformed.
    """
    if secret is None or not secret.strip():
        return PlainCipher()
    keys = [part.strip() for part in secret.split(",")]
    if any(not key for key in keys):
        raise ValueError(f"GATEBOT_ENCRYPTION_KEY: empty key in the comma-separated list; {KEY_HELP}")
    return FernetCipher(keys)


# -- exact JSON ------------------------------------------------------------------------------------------


def dumps_exact(value: Any) -> str:
    """Compact JSON where ``Decimal`` is written as a number with every digit; floats are refused.

    ``json.loads(text, parse_float=Decimal)`` reads such a number back as the same ``Decimal`` (a
    Decimal with no fractional part or exponent, e.g. ``Decimal("10")``, reads back as the int ``10``).
    The bytes are what gets sealed and replayed, so they never change: see :mod:`gatebot.exact_json`.
    """
    return exact_json.dumps(value)


def seal_json(cipher: Cipher, value: Mapping[str, Any]) -> str:
    """Encode a JSON object exactly (see :func:`dumps_exact`) and encrypt it with ``cipher``."""
    if not isinstance(value, Mapping):
        raise TypeError(f"seal_json stores a JSON object (dict), got {type(value).__name__}")
    return cipher.encrypt(dumps_exact(value))


def open_json(cipher: Cipher, stored: str) -> dict[str, Any]:
    """Decrypt and decode a value written by :func:`seal_json` (fractional numbers become ``Decimal``)."""
    text = cipher.decrypt(stored)
    try:
        value = exact_json.loads(text)
    except ValueError:
        raise CipherError("a stored encrypted value is not valid JSON") from None
    if not isinstance(value, dict):
        raise CipherError(f"a stored encrypted value is not a JSON object but {type(value).__name__}")
    return value
