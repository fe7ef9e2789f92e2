"""Service accounts and their bearer tokens (``imi admin token``).

A token is 32 random bytes, shown once; the database keeps only its SHA-256, so a database dump does not
hand out working tokens. Roles are coarse on purpose: each endpoint names the roles it accepts.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import Engine
from sqlmodel import Field, Session, SQLModel, select

from kernel.errors import Forbidden, Unauthenticated

TOKEN_PREFIX = "imi_"  # noqa: S105 - a prefix, not a secret


class Role(StrEnum):
    ADMIN = "admin"
    OFFICER = "officer"
    NOTARY = "notary"
    AUDITOR = "auditor"
    CITIZEN = "citizen"


class ServiceAccount(SQLModel, table=True):
    __tablename__ = "service_account"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    role: str = Field(max_length=32)
    token_hash: str = Field(unique=True, max_length=64)
    created_at: datetime
    revoked_at: datetime | None = None


@dataclass(frozen=True)
class Principal:
    """Who is calling: a service account (or, later, a passkey session) with one role."""

    name: str
    role: Role
    account_id: int | None = None


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(engine: Engine, *, role: Role, name: str, now: datetime | None = None) -> str:
    """Create a service account and return its bearer token (the only time it is visible)."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with Session(engine) as s:
        s.add(
            ServiceAccount(
                name=name, role=role.value, token_hash=_hash(token), created_at=now or datetime.now(UTC)
            )
        )
        s.commit()
    return token


def authenticate(engine: Engine, authorization: str | None) -> Principal:
    """Resolve an ``Authorization: Bearer`` header. Raises ``Unauthenticated`` for a missing or unknown token."""
    if not authorization:
        raise Unauthenticated("A bearer token is required.", slug="token-missing")
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > 200:
        raise Unauthenticated("Use 'Authorization: Bearer <token>'.", slug="token-malformed")
    digest = _hash(token)
    with Session(engine) as s:
        row = s.exec(select(ServiceAccount).where(ServiceAccount.token_hash == digest)).first()
    if row is None or row.revoked_at is not None or not hmac.compare_digest(row.token_hash, digest):
        raise Unauthenticated("The bearer token is not valid.", slug="token-invalid")
    return Principal(name=row.name, role=Role(row.role), account_id=row.id)


STAFF_SUBJECT = "staff:"


def staff_subject(account_id: int) -> str:
    """The passkey/session subject of a service account (citizens' subjects are bare ids)."""
    return f"{STAFF_SUBJECT}{account_id}"


def principal_for_subject(engine: Engine, subject: str) -> Principal:
    """The principal behind a passkey session: a staff account, or else a citizen (who has no staff role)."""
    if not subject.startswith(STAFF_SUBJECT):
        return Principal(name="citizen", role=Role.CITIZEN)
    account_id = subject.removeprefix(STAFF_SUBJECT)
    with Session(engine) as s:
        row = s.get(ServiceAccount, int(account_id)) if account_id.isdigit() else None
    if row is None or row.revoked_at is not None:
        raise Unauthenticated("This staff account no longer exists.", slug="token-invalid")
    return Principal(name=row.name, role=Role(row.role), account_id=row.id)


def require_role(principal: Principal, *roles: Role) -> Principal:
    """Raise ``Forbidden`` unless ``principal`` has one of ``roles``."""
    if principal.role not in roles:
        allowed = ", ".join(r.value for r in roles)
        raise Forbidden(
            f"This needs the role {allowed}; you are {principal.role.value}.", slug="role-forbidden"
        )
    return principal
