"""Encryption at rest: Fernet with rotation, the plain fallback, key parsing, exact JSON."""

from __future__ import annotations

from decimal import Decimal

import pytest

from gatebot.store.crypto import (
    KEY_HELP,
    CipherError,
    FernetCipher,
    PlainCipher,
    cipher_from_key,
    dumps_exact,
    open_json,
    seal_json,
)
from tests.store.conftest import KEY_A, KEY_B

SECRET = "ABCD-EFGH-IJKL"


def test_fernet_round_trip_hides_plaintext() -> None:
    cipher = FernetCipher([KEY_A])
    stored = cipher.encrypt(SECRET)
    assert stored.startswith("f1:")
    assert SECRET not in stored
    assert cipher.decrypt(stored) == SECRET


def test_fernet_encrypts_unicode_and_empty_text() -> None:
    cipher = FernetCipher([KEY_A])
    for text in ("", "José — ✓ 10€"):
        assert cipher.decrypt(cipher.encrypt(text)) == text


def test_rotation_old_values_readable_new_values_use_first_key() -> None:
    old = FernetCipher([KEY_A])
    written_with_a = old.encrypt(SECRET)
    rotated = FernetCipher([KEY_B, KEY_A])
    assert rotated.decrypt(written_with_a) == SECRET
    written_with_b = rotated.encrypt(SECRET)
    assert FernetCipher([KEY_B]).decrypt(written_with_b) == SECRET
    with pytest.raises(CipherError, match="not among the configured keys"):
        old.decrypt(written_with_b)


def test_rotate_reencrypts_with_first_key_so_old_key_can_go() -> None:
    written_with_a = FernetCipher([KEY_A]).encrypt(SECRET)
    rotated = FernetCipher([KEY_B, KEY_A]).rotate(written_with_a)
    assert FernetCipher([KEY_B]).decrypt(rotated) == SECRET
    plain = PlainCipher().encrypt(SECRET)
    upgraded = FernetCipher([KEY_B]).rotate(plain)
    assert upgraded.startswith("f1:") and SECRET not in upgraded
    with pytest.raises(CipherError):
        FernetCipher([KEY_B]).rotate(FernetCipher([KEY_A]).encrypt(SECRET))


def test_plain_cipher_prefix_and_refuses_encrypted_values() -> None:
    plain = PlainCipher()
    stored = plain.encrypt(SECRET)
    assert stored == "p1:" + SECRET
    assert plain.decrypt(stored) == SECRET
    encrypted = FernetCipher([KEY_A]).encrypt(SECRET)
    with pytest.raises(CipherError, match="GATEBOT_ENCRYPTION_KEY is not set"):
        plain.decrypt(encrypted)


def test_fernet_reads_values_written_before_a_key_was_configured() -> None:
    assert FernetCipher([KEY_A]).decrypt(PlainCipher().encrypt(SECRET)) == SECRET


@pytest.mark.parametrize(
    ("stored", "problem"),
    [
        ("ABCD", "no known prefix"),
        ("x1:abc", "no known prefix"),
        ("f1:not-a-token", "not among the configured"),
    ],
)
def test_unknown_or_corrupt_values_raise_cipher_error(stored: str, problem: str) -> None:
    with pytest.raises(CipherError, match=problem):
        FernetCipher([KEY_A]).decrypt(stored)


def test_cipher_from_key_unset_means_plain() -> None:
    assert isinstance(cipher_from_key(None), PlainCipher)
    assert isinstance(cipher_from_key("  "), PlainCipher)


def test_cipher_from_key_comma_separated_keys_rotate() -> None:
    cipher = cipher_from_key(f" {KEY_B} , {KEY_A} ")
    assert isinstance(cipher, FernetCipher)
    assert cipher.key_count == 2
    assert cipher.decrypt(FernetCipher([KEY_A]).encrypt(SECRET)) == SECRET
    assert FernetCipher([KEY_B]).decrypt(cipher.encrypt(SECRET)) == SECRET


@pytest.mark.parametrize("secret", ["not-a-key", f"{KEY_A},short", f"{KEY_A},,{KEY_B}"])
def test_invalid_key_names_the_variable_and_how_to_make_one(secret: str) -> None:
    with pytest.raises(ValueError, match="GATEBOT_ENCRYPTION_KEY") as info:
        cipher_from_key(secret)
    message = str(info.value)
    assert KEY_HELP in message
    assert "Fernet.generate_key()" in message
    assert "not-a-key" not in message and "short" not in message.replace(KEY_HELP, "")


def test_fernet_cipher_needs_a_list() -> None:
    with pytest.raises(TypeError):
        FernetCipher(KEY_A)
    with pytest.raises(ValueError, match="at least one key"):
        FernetCipher([])


def test_repr_never_shows_keys() -> None:
    assert KEY_A not in repr(FernetCipher([KEY_A]))


def test_seal_and_open_json_are_exact() -> None:
    cipher = FernetCipher([KEY_A])
    value = {
        "voucher_code": SECRET,
        "amount": Decimal("12.50"),
        "rate": Decimal("1E-7"),
        "big": Decimal("12345678901234567890.123456789"),
        "nested": {"list": [1, True, None, "x"]},
    }
    stored = seal_json(cipher, value)
    assert SECRET not in stored
    opened = open_json(cipher, stored)
    assert opened == value
    assert str(opened["amount"]) == "12.50"
    assert str(opened["big"]) == "12345678901234567890.123456789"


def test_dumps_exact_refuses_floats_and_non_json() -> None:
    with pytest.raises(TypeError, match="float"):
        dumps_exact({"amount": 12.5})
    with pytest.raises(TypeError):
        dumps_exact({"when": object()})
    with pytest.raises(TypeError):
        dumps_exact({1: "non-string key"})
    with pytest.raises(ValueError):
        dumps_exact({"amount": Decimal("NaN")})
    with pytest.raises(TypeError):
        seal_json(PlainCipher(), ["not", "an", "object"])  # type: ignore[arg-type]


def test_dumps_exact_matches_json_for_plain_values() -> None:
    assert (
        dumps_exact({"a": 'é\n"', "b": [1, 2], "c": None, "d": False}) == '{"a":"é\\n\\"","b":[1,2],"c":null,"d":false}'
    )


def test_open_json_rejects_non_objects() -> None:
    with pytest.raises(CipherError, match="not a JSON object"):
        open_json(PlainCipher(), "p1:[1,2]")
    with pytest.raises(CipherError, match="not valid JSON"):
        open_json(PlainCipher(), "p1:{oops")
