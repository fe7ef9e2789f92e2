"""The encrypted personal data space (design.md "Personal data space").

Each citizen has a random 256-bit data key, stored only wrapped (AES-256-GCM) under the service's wallet key;
each item is sealed under the data key with the citizen and item ids as associated data, so no item can be
moved to another citizen or row. Erasure deletes the wrapped key first, then the rows: after that nothing of
the citizen can be decrypted, even from a backup taken before.
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, delete
from sqlmodel import Session, col, select

from kernel.db import writer
from kernel.errors import Conflict, NotFound
from kernel.sealing import KEY_BYTES, seal, unseal
from wallet_api.tables import Citizen, VaultItem


class Vault:
    def __init__(
        self,
        engine: Engine,
        wrapping_key: bytes,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._engine = writer(engine)
        self._reader = engine  # reads need no write lock (SQLite BEGIN IMMEDIATE would serialise them)
        self._kek = wrapping_key
        self._clock = clock

    def create_citizen(self) -> str:
        citizen_id = uuid.uuid4().hex
        data_key = secrets.token_bytes(KEY_BYTES)
        row = Citizen(
            id=citizen_id,
            wrapped_key=seal(self._kek, data_key, aad=b"citizen:" + citizen_id.encode()),
            created_at=self._clock(),
        )
        with Session(self._engine) as s:
            s.add(row)
            s.commit()
        return citizen_id

    def citizen(self, citizen_id: str) -> Citizen:
        with Session(self._reader, expire_on_commit=False) as s:
            row = s.get(Citizen, citizen_id)
        if row is None or row.status == "erased":
            raise NotFound("No such citizen.", slug="citizen-not-found")
        return row

    def set_status(self, citizen_id: str, status: str) -> None:
        with Session(self._engine) as s:
            row = s.get(Citizen, citizen_id)
            if row is None:
                raise NotFound("No such citizen.", slug="citizen-not-found")
            row.status = status
            s.add(row)
            s.commit()

    def _data_key(self, citizen_id: str) -> bytes:
        row = self.citizen(citizen_id)
        if row.wrapped_key is None:
            raise Conflict("This data space was erased.", slug="citizen-erased")
        return unseal(self._kek, row.wrapped_key, aad=b"citizen:" + citizen_id.encode())

    def put(self, citizen_id: str, kind: str, data: dict[str, Any], *, item_id: str | None = None) -> str:
        item_id = item_id or uuid.uuid4().hex
        blob = seal(
            self._data_key(citizen_id),
            json.dumps(data, ensure_ascii=False).encode(),
            aad=_item_aad(citizen_id, item_id, kind),
        )
        with Session(self._engine) as s:
            existing = s.get(VaultItem, item_id)
            if existing is not None and existing.citizen_id != citizen_id:
                raise NotFound("No such item.", slug="vault-item-not-found")
            created = (
                existing.created_at if existing is not None else self._clock()
            )  # updates keep their place
            s.merge(VaultItem(id=item_id, citizen_id=citizen_id, kind=kind, sealed=blob, created_at=created))
            s.commit()
        return item_id

    def put_many(self, items: Sequence[tuple[str, str, dict[str, Any], str]]) -> list[str]:
        """Store ``(citizen_id, kind, data, item_id)`` items in one transaction (one fsync for all: the consent
        worker writes a round of access-history entries so). Items of an erased or unknown data space, and
        ids taken by another citizen's item, are skipped, as ``put`` would refuse them; returns the ids stored.
        """
        keys: dict[str, bytes | None] = {}
        sealed: list[tuple[str, str, str, bytes]] = []
        for citizen_id, kind, data, item_id in items:
            if citizen_id not in keys:
                try:
                    keys[citizen_id] = self._data_key(citizen_id)
                except (NotFound, Conflict):
                    keys[citizen_id] = None
            key = keys[citizen_id]
            if key is None:
                continue
            plain = json.dumps(data, ensure_ascii=False).encode()
            sealed.append(
                (citizen_id, kind, item_id, seal(key, plain, aad=_item_aad(citizen_id, item_id, kind)))
            )
        stored: list[str] = []
        with Session(self._engine) as s:
            existing = {
                row.id: row
                for row in s.exec(
                    select(VaultItem).where(col(VaultItem.id).in_([i for _, _, i, _ in sealed]))
                )
            }
            for citizen_id, kind, item_id, blob in sealed:
                old = existing.get(item_id)
                if old is not None and old.citizen_id != citizen_id:
                    continue
                if old is None:
                    row = VaultItem(
                        id=item_id, citizen_id=citizen_id, kind=kind, sealed=blob, created_at=self._clock()
                    )
                    s.add(row)
                    existing[item_id] = row  # (the same id later in the batch sees its owner)
                else:  # an update keeps its place (created_at)
                    old.kind, old.sealed = kind, blob
                    s.add(old)
                stored.append(item_id)
            s.commit()
        return stored

    def get(self, citizen_id: str, item_id: str, kind: str) -> dict[str, Any]:
        """One item of ``citizen_id``; ``NotFound`` for anything else (never tells that it exists elsewhere)."""
        with Session(self._reader, expire_on_commit=False) as s:
            row = s.get(VaultItem, item_id[:64])
        if row is None or row.citizen_id != citizen_id or row.kind != kind:
            raise NotFound("No such item.", slug="vault-item-not-found")
        return self._open(citizen_id, row)

    def items(self, citizen_id: str, kind: str, *, limit: int = 1000) -> list[tuple[str, dict[str, Any]]]:
        with Session(self._reader, expire_on_commit=False) as s:
            rows = s.exec(
                select(VaultItem)
                .where(col(VaultItem.citizen_id) == citizen_id, col(VaultItem.kind) == kind)
                .order_by(col(VaultItem.created_at).desc())
                .limit(limit)
            ).all()
        key = self._data_key(citizen_id)
        return [(r.id, self._open(citizen_id, r, key)) for r in rows]

    def _open(self, citizen_id: str, row: VaultItem, key: bytes | None = None) -> dict[str, Any]:
        key = key or self._data_key(citizen_id)
        data: dict[str, Any] = json.loads(
            unseal(key, row.sealed, aad=_item_aad(citizen_id, row.id, row.kind))
        )
        return data

    def erase(self, citizen_id: str) -> None:
        """Crypto-shred: drop the wrapped data key, then the sealed rows."""
        with Session(self._engine) as s:
            row = s.get(Citizen, citizen_id)
            if row is None:
                raise NotFound("No such citizen.", slug="citizen-not-found")
            row.wrapped_key = None
            row.status = "erased"
            row.erased_at = self._clock()
            s.add(row)
            s.exec(delete(VaultItem).where(col(VaultItem.citizen_id) == citizen_id))
            s.commit()


def _item_aad(citizen_id: str, item_id: str, kind: str) -> bytes:
    """An item's associated data: sealed to its citizen, row and kind, so that it cannot be moved."""
    return f"{citizen_id}:{item_id}:{kind}".encode()
