"""Key store: created once, sealed at rest, addressed by kid, rotatable with old keys still resolvable."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from imi import migrate
from kernel.db import make_engine
from kernel.errors import VerificationFailed
from kernel.keystore import KeyAlg, KeyStore, ServiceKey
from kernel.sealing import load_master_key


def test_keys_are_sealed_stable_and_rotatable(database_url: str, tmp_path: Path) -> None:
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    master = load_master_key(tmp_path, None)
    assert load_master_key(tmp_path, None) == master
    assert (tmp_path / "master.key").stat().st_mode & 0o777 == 0o600
    store = KeyStore(engine, master)
    first = store.active("issuer", KeyAlg.ES256)
    assert KeyStore(engine, master).active("issuer", KeyAlg.ES256).kid == first.kid
    with engine.connect() as conn:
        sealed = conn.execute(select(ServiceKey.sealed_private)).scalars().all()  # type: ignore[call-overload]
    raw = first.private_key.private_numbers().private_value.to_bytes(32, "big")  # type: ignore[union-attr]
    assert all(raw not in blob for blob in sealed)
    second = store.rotate("issuer", KeyAlg.ES256)
    assert second.kid != first.kid
    assert store.active("issuer").kid == second.kid
    assert [k.kid for k in store.all("issuer")] == [first.kid, second.kid]
    assert store.get(first.kid).retired_at is not None
    other = KeyStore(engine, load_master_key(tmp_path / "elsewhere", None))
    with pytest.raises(VerificationFailed) as info:
        other.get(first.kid)
    assert info.value.slug == "sealed-data-invalid"
    engine.dispose()
