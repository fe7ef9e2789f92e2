"""``Vault.put_many``: a round of items in one transaction, with the refusals of ``put`` as skips."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from imi import migrate
from kernel.db import make_engine
from kernel.errors import NotFound
from wallet_api.vault import Vault


@pytest.fixture
def vault(database_url: str) -> Iterator[Vault]:
    engine = make_engine(database_url)  # SQLite file, or a fresh PostgreSQL schema (tests/conftest.py)
    migrate.upgrade(engine)
    yield Vault(engine, secrets.token_bytes(32))
    engine.dispose()


def test_put_many_stores_updates_and_skips(vault: Vault) -> None:
    alice, bob, gone = vault.create_citizen(), vault.create_citizen(), vault.create_citizen()
    vault.erase(gone)
    first = vault.put(alice, "history", {"n": 0}, item_id="a-0")
    stored = vault.put_many(
        [
            (alice, "history", {"n": 1}, "a-0"),  # an update of Alice's own item
            (alice, "history", {"n": 2}, "a-1"),
            (bob, "history", {"n": 3}, "b-0"),
            (gone, "history", {"n": 4}, "g-0"),  # erased: nothing to write, nobody to tell
            (bob, "history", {"n": 5}, "a-1"),  # Alice's id: never overwritten by another citizen's item
            ("nobody", "history", {"n": 6}, "x-0"),
        ]
    )
    assert first == "a-0"
    assert stored == ["a-0", "a-1", "b-0"]
    assert sorted(d["n"] for _, d in vault.items(alice, "history")) == [1, 2]
    assert [d["n"] for _, d in vault.items(bob, "history")] == [3]
    with pytest.raises(NotFound):
        vault.get(bob, "a-1", "history")
    assert vault.put_many([]) == []
