"""A failed statement never carries its parameters into an exception (and so into a traceback or log)."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import IntegrityError

from gatebot.store import repo
from gatebot.store.crypto import PlainCipher
from gatebot.store.db import Database
from tests.store.conftest import build_order


def test_a_unique_violation_names_the_statement_not_its_values(database: Database) -> None:
    cipher = PlainCipher()  # no encryption key: the customer account is stored as plain text
    with database.session() as s:
        repo.add_order(s, build_order(cipher, 1, external_ref="SAME"))  # type: ignore[arg-type]
    loser = build_order(cipher, 2, external_ref="SAME", requester="U-LOSER")  # type: ignore[arg-type]
    loser.set_secret_fields(cipher, account={"steam_login": "player-secret-42"})
    with pytest.raises(IntegrityError) as info, database.session() as s:
        repo.add_order(s, loser)
    text = str(info.value)
    assert "player-secret-42" not in text and "U-LOSER" not in text
    assert "hidden due to hide_parameters" in text
