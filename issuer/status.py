"""Bitstring Status Lists in the database: random slot allocation, flips, and the signed list credential.

Indexes are drawn at random (herd privacy: a slot says nothing about issuance order) and claimed through a
unique row, so concurrent processes can never hand out one slot twice. A flip rewrites the 16 KB bitstring
under the database's write lock and bumps ``version``, which is the published ETag.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from sqlalchemy import Engine, insert, update
from sqlalchemy import select as sa_select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from issuer.credentials import xsd_datetime
from issuer.tables import StatusAllocation, StatusList
from kernel.db import writer
from kernel.errors import Conflict, NotFound
from kernel.jose import sign_jws
from kernel.keystore import KeyPair
from kernel.statuslist import (
    MIN_ENTRIES,
    Bitstring,
    encode_list,
    status_entry,
    status_list_credential_subject,
)

Purpose = Literal["revocation", "suspension"]
LIST_TTL_SECONDS = 300  # how long verifiers may cache a list (Cache-Control max-age)
FILL_LIMIT = 0.8  # start a new list once this share is used: random draws stay cheap
LIST_VALIDITY = timedelta(days=1)  # validUntil of a signed status list credential


@dataclass(frozen=True)
class Slot:
    list_id: str
    index: int


@dataclass(frozen=True)
class PublishedList:
    jwt: str
    version: int
    etag: str
    kid: str = ""
    refresh_at: datetime | None = None  # re-signed from then on, well before the list credential expires


class StatusRegistry:
    def __init__(
        self,
        engine: Engine,
        *,
        list_url: Callable[[str], str],
        size: int = MIN_ENTRIES,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._engine = writer(engine)
        self._list_url = list_url
        self._size = size
        self._clock = clock
        self._published: dict[str, PublishedList] = {}

    def allocate(self, purpose: Purpose, *, rng: Callable[[int], int] = secrets.randbelow) -> Slot:
        """Claim a random free slot in the current list for ``purpose`` (a new list when it fills up)."""
        for _ in range(64):
            list_id = self._current_list(purpose)
            index = rng(self._size)
            try:
                with Session(self._engine, expire_on_commit=False) as s:
                    s.add(StatusAllocation(list_id=list_id, idx=index))
                    s.execute(
                        update(StatusList)
                        .where(col(StatusList.id) == list_id)
                        .values(allocated=col(StatusList.allocated) + 1)
                    )
                    s.commit()
            except IntegrityError:
                continue  # taken: draw again
            return Slot(list_id, index)
        raise Conflict("No free status slot found.", slug="status-list-full")

    def allocate_many(
        self, purpose: Purpose, count: int, *, rng: Callable[[int], int] = secrets.randbelow
    ) -> list[Slot]:
        """``count`` random free slots of one list, claimed in one transaction."""
        if count <= 0:
            return []
        for _ in range(16):
            list_id = self._current_list(purpose)
            try:
                with Session(self._engine, expire_on_commit=False) as s:
                    picks: set[int] = set()
                    while len(picks) < count:
                        picks.update(rng(self._size) for _ in range(count - len(picks)))
                        taken = s.exec(
                            select(StatusAllocation.idx).where(
                                col(StatusAllocation.list_id) == list_id, col(StatusAllocation.idx).in_(picks)
                            )
                        ).all()
                        picks.difference_update(taken)
                    chosen = list(picks)
                    s.execute(insert(StatusAllocation), [{"list_id": list_id, "idx": i} for i in chosen])
                    s.execute(
                        update(StatusList)
                        .where(col(StatusList.id) == list_id)
                        .values(allocated=col(StatusList.allocated) + count)
                    )
                    s.commit()
            except IntegrityError:
                continue
            return [Slot(list_id, i) for i in chosen]
        raise Conflict("No free status slots found.", slug="status-list-full")

    def _current_list(self, purpose: Purpose) -> str:
        with Session(self._engine, expire_on_commit=False) as s:
            rows = s.exec(
                select(StatusList)
                .where(col(StatusList.purpose) == purpose)
                .order_by(col(StatusList.id).desc())
            ).all()
            for row in rows:
                if row.allocated < self._size * FILL_LIMIT:
                    return row.id
            number = len(rows) + 1
            list_id = f"{purpose[:3]}-{number}"
            try:
                s.add(
                    StatusList(
                        id=list_id,
                        purpose=purpose,
                        size=self._size,
                        bits=bytes(self._size // 8),
                        updated_at=datetime.now(UTC),
                    )
                )
                s.commit()
            except IntegrityError:
                pass  # another process created it
            return list_id

    def set(self, slot: Slot, value: bool) -> None:
        """Set the bit of ``slot`` (1 = revoked/suspended) atomically."""
        with self._engine.connect() as raw:
            conn = raw.execution_options(sqlite_begin="IMMEDIATE")
            with conn.begin():
                table = StatusList.__table__  # type: ignore[attr-defined]
                stmt = sa_select(table.c.bits, table.c.version).where(table.c.id == slot.list_id)
                if conn.dialect.name == "postgresql":
                    stmt = stmt.with_for_update()
                row = conn.execute(stmt).first()
                if row is None:
                    raise NotFound(f"No status list {slot.list_id}.", slug="status-list-not-found")
                bits = Bitstring.from_bytes(row.bits)
                bits.set(slot.index, value)
                conn.execute(
                    table.update()
                    .where(table.c.id == slot.list_id)
                    .values(bits=bits.to_bytes(), version=row.version + 1, updated_at=datetime.now(UTC))
                )

    def list_urls(self) -> list[str]:
        """Every published list (public: offline verifiers download them all)."""
        with Session(self._engine, expire_on_commit=False) as s:
            ids = s.exec(select(StatusList.id).order_by(col(StatusList.id))).all()
        return [self._list_url(i) for i in ids]

    def get(self, slot: Slot) -> bool:
        with Session(self._engine, expire_on_commit=False) as s:
            row = s.get(StatusList, slot.list_id)
        if row is None:
            raise NotFound(f"No status list {slot.list_id}.", slug="status-list-not-found")
        return Bitstring.from_bytes(row.bits).get(slot.index)

    def entries(self, revocation: Slot, suspension: Slot) -> tuple[dict[str, str], dict[str, str]]:
        return (
            status_entry(self._list_url(revocation.list_id), revocation.index, "revocation"),
            status_entry(self._list_url(suspension.list_id), suspension.index, "suspension"),
        )

    def publish(self, list_id: str, *, issuer_did: str, key: KeyPair, kid: str) -> PublishedList:
        """The signed ``BitstringStatusListCredential`` (vc+jwt), re-signed only when the list changed."""
        with Session(self._engine, expire_on_commit=False) as s:
            row = s.get(StatusList, list_id)
        if row is None:
            raise NotFound(f"No status list {list_id!r}.", slug="status-list-not-found")
        now = self._clock()
        cached = self._published.get(list_id)
        if (
            cached is not None
            and cached.version == row.version
            and cached.kid == kid  # a rotated key signs from now on
            and cached.refresh_at is not None
            and now < cached.refresh_at  # never serve a list credential near or past its validUntil
        ):
            return cached
        url = self._list_url(list_id)
        purpose: Purpose = "revocation" if row.purpose == "revocation" else "suspension"
        vc = {
            "@context": ["https://www.w3.org/ns/credentials/v2"],
            "id": url,
            "type": ["VerifiableCredential", "BitstringStatusListCredential"],
            "issuer": issuer_did,
            "validFrom": xsd_datetime(now),
            "validUntil": xsd_datetime(now + LIST_VALIDITY),
            "credentialSubject": status_list_credential_subject(url, purpose, encode_list(row.bits)),
        }
        claims = {
            **vc,
            "iss": issuer_did,
            "iat": int(now.timestamp()),
            "exp": int((now + LIST_VALIDITY).timestamp()),
        }
        jwt = sign_jws(claims, key.private_key, typ="vc+jwt", kid=kid)
        etag = f'"{list_id}-{row.version}-{hashlib.sha256(jwt.encode()).hexdigest()[:16]}"'  # new bytes, new ETag
        published = PublishedList(jwt, row.version, etag, kid, now + LIST_VALIDITY / 2)
        self._published[list_id] = published
        return published
