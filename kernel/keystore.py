"""The service's signing keys (the log's note key, the issuers' credential keys), addressed by ``kid``.

Private keys live in the database sealed under the master key (AES-256-GCM, the ``kid`` as associated data),
so N processes on one PostgreSQL share them and the database alone never reveals one. Each purpose has one
active key; rotation makes a new one active and keeps the old ones, retired, for verifying what they signed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from jwcrypto import jwk
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, select

from kernel.db import writer
from kernel.errors import NotFound
from kernel.sealing import seal, unseal

PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey


class KeyAlg(StrEnum):
    EDDSA = "EdDSA"  # Ed25519
    ES256 = "ES256"  # P-256


class ServiceKey(SQLModel, table=True):
    __tablename__ = "service_key"
    kid: str = Field(primary_key=True, max_length=128)
    purpose: str = Field(index=True, max_length=64)
    alg: str = Field(max_length=16)
    public_jwk: str
    sealed_private: bytes
    created_at: datetime
    retired_at: datetime | None = None


class ActiveKey(SQLModel, table=True):
    """One row per purpose: the primary key makes concurrent first starts agree on a single active key."""

    __tablename__ = "active_key"
    purpose: str = Field(primary_key=True, max_length=64)
    kid: str = Field(foreign_key="service_key.kid", max_length=128)


@dataclass(frozen=True)
class KeyPair:
    kid: str
    purpose: str
    alg: KeyAlg
    private_key: PrivateKey
    created_at: datetime
    retired_at: datetime | None

    @property
    def public_jwk(self) -> dict[str, Any]:
        return _public_jwk(self.private_key, self.kid, self.alg)

    @property
    def jwk(self) -> jwk.JWK:
        """The private key as a jwcrypto JWK (with ``kid``)."""
        pem = self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        key = jwk.JWK.from_pem(pem)
        key.update(kid=self.kid)
        return key


def _public_jwk(private_key: PrivateKey, kid: str, alg: KeyAlg) -> dict[str, Any]:
    pem = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    data: dict[str, Any] = jwk.JWK.from_pem(pem).export_public(as_dict=True)
    data.update(kid=kid, alg=alg.value)
    return data


def generate(alg: KeyAlg) -> PrivateKey:
    if alg is KeyAlg.EDDSA:
        return ed25519.Ed25519PrivateKey.generate()
    return ec.generate_private_key(ec.SECP256R1())


def thumbprint_kid(private_key: PrivateKey) -> str:
    """The first 16 characters (96 bits) of the RFC 7638 JWK thumbprint: stable, unique among a service's keys,
    and short, because the key id travels in every credential and presentation QR code."""
    pem = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return str(jwk.JWK.from_pem(pem).thumbprint())[:16]


class KeyStore:
    """Creates, finds and rotates keys. Thread- and process-safe through the database."""

    def __init__(self, engine: Engine, master_key: bytes) -> None:
        self._engine = writer(engine)
        self._master = master_key
        self._cache: dict[str, KeyPair] = {}

    def active(self, purpose: str, alg: KeyAlg = KeyAlg.EDDSA) -> KeyPair:
        """The active key for ``purpose``, created on first use."""
        with Session(self._engine, expire_on_commit=False) as s:
            row = s.get(ActiveKey, purpose)
            kid = row.kid if row is not None else None
        if kid is not None:  # outside the session: with SQLite it holds the write lock until closed
            return self.get(kid)
        try:
            return self._create(purpose, alg, make_active=True)
        except IntegrityError:  # another process created it first: use theirs
            return self.active(purpose, alg)

    def rotate(self, purpose: str, alg: KeyAlg = KeyAlg.EDDSA, *, now: datetime | None = None) -> KeyPair:
        """Make a fresh key active for ``purpose``; the previous one stays resolvable, marked retired."""
        now = now or datetime.now(UTC)
        new = self._create(purpose, alg, make_active=False)
        with Session(self._engine, expire_on_commit=False) as s:
            current = s.get(ActiveKey, purpose)
            if current is not None:
                old = s.get(ServiceKey, current.kid)
                if old is not None:
                    old.retired_at = now
                    s.add(old)
                current.kid = new.kid
                s.add(current)
            else:
                s.add(ActiveKey(purpose=purpose, kid=new.kid))
            s.commit()
        self._cache.clear()
        return self.get(new.kid)

    def get(self, kid: str) -> KeyPair:
        cached = self._cache.get(kid)
        if cached is not None:
            return cached
        with Session(self._engine, expire_on_commit=False) as s:
            row = s.get(ServiceKey, kid)
        if row is None:
            raise NotFound(f"No key with kid {kid!r}.", slug="key-not-found")
        private = serialization.load_der_private_key(
            unseal(self._master, row.sealed_private, aad=kid.encode()), password=None
        )
        assert isinstance(private, ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey)
        pair = KeyPair(row.kid, row.purpose, KeyAlg(row.alg), private, row.created_at, row.retired_at)
        self._cache[kid] = pair
        return pair

    def all(self, purpose: str) -> list[KeyPair]:
        """Every key ever used for ``purpose``, oldest first (DID documents list them all)."""
        with Session(self._engine, expire_on_commit=False) as s:
            kids = s.exec(
                select(ServiceKey.kid).where(ServiceKey.purpose == purpose).order_by(ServiceKey.created_at)  # type: ignore[arg-type]
            ).all()
        return [self.get(k) for k in kids]

    def _create(self, purpose: str, alg: KeyAlg, *, make_active: bool) -> KeyPair:
        private = generate(alg)
        kid = thumbprint_kid(private)
        der = private.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        row = ServiceKey(
            kid=kid,
            purpose=purpose,
            alg=alg.value,
            public_jwk=json.dumps(_public_jwk(private, kid, alg)),
            sealed_private=seal(self._master, der, aad=kid.encode()),
            created_at=datetime.now(UTC),
        )
        with Session(self._engine, expire_on_commit=False) as s:
            s.add(row)
            s.flush()
            if make_active:
                s.add(ActiveKey(purpose=purpose, kid=kid))
            s.commit()
        return self.get(kid)
