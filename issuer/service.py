"""The issuer's use cases: record an in-person check, issue and anchor a credential, change its status.

Personal data enters through ``record_check`` and is sealed at once (AES-256-GCM under an HKDF subkey of the
master key); only the signed credential carries it out again. Every action leaves an audit row without it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import Engine, bindparam, insert, update
from sqlmodel import Session, col, select

from issuer.credentials import (
    COMPANY_TYPE,
    PERSON_TYPE,
    CredentialDraft,
    SecuredCredential,
    company_subject,
    evidence_of,
    person_subject,
    secure,
)
from issuer.idnumbers import mask_resident_id, validate_credit_code, validate_resident_id
from issuer.status import Slot, StatusRegistry
from issuer.tables import IssuedCredential, IssuerAudit, RealNameCheck
from kernel.db import writer
from kernel.did_document import did_document, did_web, verification_method_id
from kernel.errors import Conflict, MalformedInput, NotFound
from kernel.jose import jwk_thumbprint, public_key_from_jwk
from kernel.keystore import KeyAlg, KeyPair, KeyStore
from kernel.sealing import derive_key, seal, unseal
from ledger.commitment import EventType, object_hash
from ledger.receipt import Receipt
from ledger.service import LogService
from schemas.issuer import (
    CheckIn,
    CheckOut,
    CheckResult,
    CompanyCheckIn,
    CredentialFormat,
    PersonCheckIn,
    StatusAction,
)

ISSUER_KEY_PURPOSE = "issuer"
_CREDENTIALS = IssuedCredential.__table__  # type: ignore[attr-defined]
_AUDIT = IssuerAudit.__table__  # type: ignore[attr-defined]
_CHECK_ADAPTER: TypeAdapter[PersonCheckIn | CompanyCheckIn] = TypeAdapter(CheckIn)


@dataclass(frozen=True)
class Issued:
    credential_id: str
    format: CredentialFormat
    credential: str  # the holder's copy: SD-JWT with all disclosures, or the JWT
    receipt: Receipt | None


@dataclass(frozen=True)
class Prepared:
    row: dict[
        str, Any
    ]  # an ``issued_credential`` row: plain values, inserted in bulk (Core, not ORM objects)
    secured: SecuredCredential


class IssuerService:
    def __init__(
        self,
        engine: Engine,
        keystore: KeyStore,
        log: LogService,
        master_key: bytes,
        *,
        public_url: str,
        key_alg: KeyAlg = KeyAlg.ES256,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._engine = writer(engine)
        self._keys = keystore
        self._log = log
        self._pii_key = derive_key(master_key, "issuer-pii")
        self._lookup_key = derive_key(master_key, "issuer-lookup")
        self.public_url = public_url.rstrip("/")
        self.did = did_web(public_url)
        self._alg = key_alg
        self._clock = clock
        self.status = StatusRegistry(
            engine, list_url=lambda list_id: f"{self.public_url}/issuer/status/{list_id}", clock=clock
        )

    # -- identity ------------------------------------------------------------------------------------------
    def signing_key(self) -> KeyPair:
        return self._keys.active(ISSUER_KEY_PURPOSE, self._alg)

    def kid_url(self, key: KeyPair) -> str:
        return verification_method_id(self.did, key.kid)

    def did_document(self) -> dict[str, Any]:
        self.signing_key()
        return did_document(self.did, [k.public_jwk for k in self._keys.all(ISSUER_KEY_PURPOSE)])

    def rotate_key(self, actor: str, alg: KeyAlg | None = None) -> KeyPair:
        key = self._keys.rotate(ISSUER_KEY_PURPOSE, alg or self._alg)
        pending = self._log.append(
            EventType.KEY_ROTATED,
            hashlib.sha256(json.dumps(key.public_jwk, sort_keys=True).encode()).digest(),
        )
        self.audit(actor, "key.rotated", key.kid, {"log_seq": pending.seq})
        return key

    # -- checks --------------------------------------------------------------------------------------------
    def record_check(self, check: PersonCheckIn | CompanyCheckIn, officer: str) -> CheckOut:
        """Validate and store an in-person check. Raises ``MalformedInput`` for a bad ID number or credit code."""
        today = self._clock().date()
        if isinstance(check, PersonCheckIn):
            rid = validate_resident_id(check.document_number, today=today)
            check = check.model_copy(update={"document_number": rid.number})
            if rid.birth_date != check.birth_date:
                raise MalformedInput(
                    "The birth date does not match the ID number.", slug="resident-id-birth-date"
                )
            if rid.sex != check.sex:
                raise MalformedInput("The sex does not match the ID number.", slug="resident-id-sex")
            number, masked = rid.number, mask_resident_id(rid.number)
        else:
            code = validate_credit_code(check.credit_code)
            number, masked = code.code, code.code[:4] + "*" * 10 + code.code[-4:]
        check_id = uuid.uuid4().hex
        now = self._clock()
        row = RealNameCheck(
            id=check_id,
            kind=check.kind,
            result=check.result.value,
            officer=officer,
            counter=check.counter,
            checked_at=now,
            document_type=check.document_type,
            document_masked=masked,
            document_lookup=hmac.new(self._lookup_key, number.encode(), hashlib.sha256).hexdigest(),
            sealed=seal(self._pii_key, check.model_dump_json().encode(), aad=check_id.encode()),
        )
        with Session(self._engine, expire_on_commit=False) as s:
            s.add(row)
            s.add(self._audit_row(officer, "check.recorded", check_id, {"result": check.result.value}))
            s.commit()
        return self._check_out(row)

    def get_check(self, check_id: str) -> tuple[RealNameCheck, PersonCheckIn | CompanyCheckIn]:
        with Session(self._engine, expire_on_commit=False) as s:
            row = s.get(RealNameCheck, check_id)
        if row is None:
            raise NotFound("No such check.", slug="check-not-found")
        data = unseal(self._pii_key, row.sealed, aad=check_id.encode())
        return row, _CHECK_ADAPTER.validate_json(data)

    @staticmethod
    def _check_out(row: RealNameCheck) -> CheckOut:
        return CheckOut(
            id=row.id,
            kind="person" if row.kind == "person" else "company",
            result=CheckResult(row.result),
            officer=row.officer,
            counter=row.counter,
            checked_at=row.checked_at.isoformat(),
            document_number_masked=row.document_masked,
        )

    # -- issuing -------------------------------------------------------------------------------------------
    def issue_from_check(
        self,
        check_id: str,
        fmt: CredentialFormat,
        *,
        holder_jwk: Mapping[str, Any] | None,
        valid_days: int,
        actor: str,
        wait_for_receipt: bool = True,
    ) -> Issued:
        """Issue the credential that a passed check supports, anchor it, and return it with its receipt."""
        row, check = self.get_check(check_id)
        if row.result != CheckResult.PASSED.value:
            raise Conflict("This check did not pass; nothing can be issued from it.", slug="check-not-passed")
        if isinstance(check, PersonCheckIn):
            ctype, subject = PERSON_TYPE, person_subject(check)
        else:
            ctype, subject = COMPANY_TYPE, company_subject(check)
        evidence = evidence_of(check, check_id=check_id, officer=row.officer, checked_at=row.checked_at)
        return self.issue_many(
            [(ctype, subject, evidence, check_id)],
            fmt,
            holder_jwks=[holder_jwk],
            valid_days=valid_days,
            actor=actor,
            wait_for_receipt=wait_for_receipt,
        )[0]

    def issue_many(
        self,
        items: Sequence[tuple[str, Mapping[str, Any], Mapping[str, Any] | None, str | None]],
        fmt: CredentialFormat,
        *,
        holder_jwks: Sequence[Mapping[str, Any] | None],
        valid_days: int,
        actor: str,
        wait_for_receipt: bool = True,
        extra: Sequence[Mapping[str, Any]] | None = None,
    ) -> list[Issued]:
        """Sign, store and anchor many credentials in one go (the bulk path of the benchmark uses it)."""
        key = self.signing_key()
        now = self._clock().replace(microsecond=0)
        prepared: list[Prepared] = []
        extras: Sequence[Mapping[str, Any] | None] = extra if extra is not None else [None] * len(items)
        revs = self.status.allocate_many("revocation", len(items))
        suss = self.status.allocate_many("suspension", len(items))
        for (ctype, subject, evidence, check_id), holder, more, rev, sus in zip(
            items, holder_jwks, extras, revs, suss, strict=True
        ):
            prepared.append(
                self._prepare(
                    slots=(rev, sus),
                    key=key,
                    now=now,
                    ctype=ctype,
                    subject=subject,
                    evidence=evidence,
                    check_id=check_id,
                    fmt=fmt,
                    holder_jwk=holder,
                    valid_days=valid_days,
                    extra=more,
                )
            )
        pending = self._log.append_many(
            [(EventType.CREDENTIAL_ISSUED, bytes.fromhex(p.row["object_hash"])) for p in prepared]
        )
        audit_at = self._clock()
        with self._engine.begin() as conn:
            for p, pend in zip(prepared, pending, strict=True):
                p.row["log_salt"] = pend.salt.hex()
            conn.execute(insert(_CREDENTIALS), [p.row for p in prepared])
            conn.execute(
                insert(_AUDIT),
                [
                    {
                        "at": audit_at,
                        "actor": actor,
                        "action": "credential.issued",
                        "target": p.row["id"],
                        "detail": json.dumps({"format": fmt.value, "log_seq": pend.seq}),
                    }
                    for p, pend in zip(prepared, pending, strict=True)
                ],
            )
        receipts: list[Receipt | None] = [None] * len(prepared)
        if wait_for_receipt:
            receipts = list(self._log.wait_receipts(pending))
            with self._engine.begin() as conn:
                conn.execute(
                    update(_CREDENTIALS)
                    .where(_CREDENTIALS.c.id == bindparam("b_id"))
                    .values(receipt=bindparam("b_r")),
                    [
                        {"b_id": p.row["id"], "b_r": r.model_dump_json()}
                        for p, r in zip(prepared, receipts, strict=True)
                        if r is not None
                    ],
                )
        return [
            Issued(p.row["id"], fmt, p.secured.serialization, r)
            for p, r in zip(prepared, receipts, strict=True)
        ]

    def _prepare(
        self,
        *,
        key: KeyPair,
        now: datetime,
        ctype: str,
        subject: Mapping[str, Any],
        evidence: Mapping[str, Any] | None,
        check_id: str | None,
        fmt: CredentialFormat,
        holder_jwk: Mapping[str, Any] | None,
        valid_days: int,
        extra: Mapping[str, Any] | None = None,
        slots: tuple[Slot, Slot],
    ) -> Prepared:
        if holder_jwk is not None:
            public_key_from_jwk(holder_jwk)  # refuses a malformed or private key early
        revocation, suspension = slots
        credential_id = f"urn:uuid:{uuid.uuid4()}"
        draft = CredentialDraft(
            credential_id=credential_id,
            issuer_did=self.did,
            credential_type=ctype,
            subject=subject,
            evidence=evidence,
            status=self.status.entries(revocation, suspension),
            valid_from=now,
            valid_until=_valid_until(now, valid_days, extra),
            extra=extra,
        )
        secured = secure(draft, fmt, key=key.private_key, kid=self.kid_url(key), holder_jwk=holder_jwk)
        row = {
            "id": credential_id,
            "check_id": check_id,
            "credential_type": ctype,
            "format": fmt.value,
            "kid": key.kid,
            "holder_thumbprint": jwk_thumbprint(holder_jwk) if holder_jwk else None,
            "revocation_list": revocation.list_id,
            "revocation_index": revocation.index,
            "suspension_list": suspension.list_id,
            "suspension_index": suspension.index,
            "status": "active",
            "object_hash": object_hash(secured.issuer_jwt).hex(),
            "log_salt": "",
            "receipt": None,
            "issued_at": now,
            "valid_until": draft.valid_until,
        }
        return Prepared(row, secured)

    # -- status --------------------------------------------------------------------------------------------
    def get_credential(self, credential_id: str) -> IssuedCredential:
        with Session(self._engine, expire_on_commit=False) as s:
            row = s.get(IssuedCredential, credential_id)
        if row is None:
            raise NotFound("No such credential.", slug="credential-not-found")
        return row

    def credentials_of_check(self, check_id: str) -> list[IssuedCredential]:
        """Every credential issued from one in-person check (the counter finds them from the check)."""
        with Session(self._engine, expire_on_commit=False) as s:
            rows = s.exec(
                select(IssuedCredential)
                .where(col(IssuedCredential.check_id) == check_id[:64])
                .order_by(col(IssuedCredential.issued_at).desc())
            ).all()
        return list(rows)

    def change_status(
        self, credential_id: str, action: StatusAction, *, actor: str, reason: str = ""
    ) -> IssuedCredential:
        """Revoke (final), suspend or reinstate; the status list flips and the change is anchored and audited."""
        row = self.get_credential(credential_id)
        if row.status == "revoked":
            raise Conflict("A revoked credential cannot change status.", slug="credential-revoked")
        if action is StatusAction.REVOKE:
            self.status.set(Slot(row.revocation_list, row.revocation_index), True)
            new = "revoked"
        elif action is StatusAction.SUSPEND:
            self.status.set(Slot(row.suspension_list, row.suspension_index), True)
            new = "suspended"
        else:
            if row.status != "suspended":
                raise Conflict(
                    "Only a suspended credential can be reinstated.", slug="credential-not-suspended"
                )
            self.status.set(Slot(row.suspension_list, row.suspension_index), False)
            new = "active"
        event = json.dumps(
            {"credential": credential_id, "status": new, "at": self._clock().isoformat()}
        ).encode()
        pending = self._log.append(EventType.STATUS_CHANGED, hashlib.sha256(event).digest())
        with Session(self._engine, expire_on_commit=False) as s:
            stored = s.get(IssuedCredential, credential_id)
            assert stored is not None
            stored.status = new
            s.add(stored)
            s.add(
                self._audit_row(
                    actor, f"status.{action.value}", credential_id, {"reason": reason, "log_seq": pending.seq}
                )
            )
            s.commit()
            s.refresh(stored)
        return stored

    # -- audit ---------------------------------------------------------------------------------------------
    def _audit_row(self, actor: str, action: str, target: str, detail: Mapping[str, Any]) -> IssuerAudit:
        return IssuerAudit(
            at=self._clock(), actor=actor, action=action, target=target, detail=json.dumps(dict(detail))
        )

    def audit(self, actor: str, action: str, target: str, detail: Mapping[str, Any]) -> None:
        with Session(self._engine, expire_on_commit=False) as s:
            s.add(self._audit_row(actor, action, target, detail))
            s.commit()

    def audit_trail(self, *, limit: int = 100, target: str | None = None) -> list[IssuerAudit]:
        with Session(self._engine, expire_on_commit=False) as s:
            stmt = select(IssuerAudit).order_by(IssuerAudit.id.desc()).limit(limit)  # type: ignore[union-attr]
            if target:
                stmt = stmt.where(IssuerAudit.target == target)
            return list(s.exec(stmt).all())


def _xsd(value: object) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if isinstance(value, str) else None


def _valid_until(now: datetime, valid_days: int, extra: Mapping[str, Any] | None) -> datetime:
    """When the credential (and its JWT ``exp``) ends: a caller's ``validUntil`` (VC API), else ``valid_days``
    after ``now`` or after a caller's later ``validFrom`` (VCDM 2.0 4.9: validFrom never after validUntil)."""
    start, end = _xsd((extra or {}).get("validFrom")), _xsd((extra or {}).get("validUntil"))
    if end is not None:
        return end
    begin = max(now, start) if start is not None else now
    try:
        return begin + timedelta(days=valid_days)
    except OverflowError:  # a validFrom at the end of year 9999
        return begin


def today_utc() -> date:
    return datetime.now(UTC).date()


def new_pin(rng: Callable[[int], int] = secrets.randbelow) -> str:
    return f"{rng(10**6):06d}"
