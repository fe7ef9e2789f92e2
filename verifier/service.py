"""The verifier's use cases: scan a citizen's QR, run an OpenID4VP request, record what was verified."""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, delete, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from kernel.db import writer
from kernel.errors import Conflict, MalformedInput, NotFound, VerificationFailed
from kernel.jose import decode_jws_unverified
from kernel.qr_payload import ScannedReference, read_qr
from kernel.sdjwt import parse_sd_jwt
from kernel.sealing import seal, unseal
from verifier.bundle import TrustBundle, check_fresh
from verifier.core import VerificationReport, verify_presentation
from verifier.fetch import Fetcher
from verifier.policy import IssuerKeys, StatusSource, TrustPolicy
from verifier.tables import ReplayEntry, VerificationEvent, VpTransaction

QR_AUDIENCE = "urn:imi:qr-presentation"  # the audience a wallet puts in a QR it shows to any kiosk
TX_TTL = timedelta(minutes=5)


class DbReplayGuard:
    """``ReplayGuard`` on a unique key: the first insert wins, across every process on the database."""

    def __init__(self, engine: Engine) -> None:
        self._engine = writer(engine)

    def first_use(self, key: str, *, expires_at: int) -> bool:
        try:
            with Session(self._engine) as s:
                s.add(ReplayEntry(key=key, expires_at=expires_at))
                s.commit()
        except IntegrityError:
            return False
        return True

    def purge(self, now: int) -> None:
        with Session(self._engine) as s:
            s.exec(delete(ReplayEntry).where(col(ReplayEntry.expires_at) < now))
            s.commit()


class VerifierService:
    def __init__(
        self,
        engine: Engine,
        *,
        trust: TrustPolicy,
        keys: IssuerKeys,
        status: StatusSource,
        fetcher: Fetcher,
        reference_origins: tuple[str, ...] = (),
        clock: Callable[[], float] = time.time,
        bundle: TrustBundle | None = None,
        result_key: bytes | None = None,
    ) -> None:
        self._engine = writer(engine)
        self._result_key = result_key or secrets.token_bytes(32)
        self.trust = trust
        self.keys = keys
        self.status = status
        self.fetcher = fetcher
        self.replay = DbReplayGuard(engine)
        self.reference_origins = reference_origins
        self._clock = clock
        self.bundle = bundle  # offline mode: refuse everything once it is older than its max age

    def now(self) -> int:
        now = int(self._clock())
        if self.bundle is not None:
            check_fresh(self.bundle, now)
        return now

    # -- citizen shows a QR -------------------------------------------------------------------------------
    def scan(self, qr_text: str, *, verifier_id: str) -> VerificationReport:
        """Verify a scanned QR (plain, compact or reference form). Freshness: KB ``iat`` window + replay cache."""
        self.now()  # an offline kiosk with an expired bundle refuses before reading anything
        scanned = read_qr(qr_text)
        if isinstance(scanned, ScannedReference):
            presentation = self._resolve_reference(scanned.url)
        else:
            presentation = scanned.presentation
        report = verify_presentation(
            presentation,
            expected_nonce=_kb_nonce(presentation)
            or "",  # any wallet nonce; iat + replay cache give freshness
            expected_audience=QR_AUDIENCE,
            trust=self.trust,
            keys=self.keys,
            status=self.status,
            replay=self.replay,
            now=self.now(),
        )
        self.record(report, verifier_id=verifier_id, channel="scan")
        return report

    def _resolve_reference(self, url: str) -> str:
        # Only origins on the allow-list: a QR must not make the kiosk fetch arbitrary URLs (SSRF).
        if not any(url.startswith(origin.rstrip("/") + "/") for origin in self.reference_origins):
            raise VerificationFailed(
                "The reference points to an untrusted origin.", slug="reference-untrusted"
            )
        fetched = self.fetcher.get(url)
        if fetched.status != 200:
            raise NotFound("The referenced presentation is gone (used or expired).", slug="reference-gone")
        return fetched.body.decode("ascii", errors="replace").strip()

    def verify(
        self, presentation: str, *, nonce: str | None, audience: str | None, verifier_id: str, channel: str
    ) -> VerificationReport:
        report = verify_presentation(
            presentation,
            expected_nonce=nonce,
            expected_audience=audience,
            trust=self.trust,
            keys=self.keys,
            status=self.status,
            replay=self.replay,
            now=self.now(),
        )
        self.record(report, verifier_id=verifier_id, channel=channel)
        return report

    def record(self, report: VerificationReport, *, verifier_id: str, channel: str) -> None:
        failure = report.failure
        with Session(self._engine) as s:
            s.add(
                VerificationEvent(
                    at=datetime.now(UTC),
                    verifier_id=verifier_id[:200],
                    channel=channel,
                    outcome="verified" if report.verified else "refused",
                    problem=failure.slug if failure else "",
                    credential_id=(report.credential_id or "")[:64] or None,
                    claims=",".join(sorted(report.disclosed)),
                )
            )
            s.commit()

    def purge_history(self, older_than: timedelta) -> int:
        cutoff = datetime.now(UTC) - older_than
        with Session(self._engine) as s:
            result = s.exec(delete(VerificationEvent).where(col(VerificationEvent.at) < cutoff))
            s.commit()
        self.replay.purge(self.now())
        return int(result.rowcount)

    # -- kiosk shows a QR (OpenID4VP) -------------------------------------------------------------------------
    def create_transaction(self, *, verifier_id: str, dcql_query: dict[str, Any]) -> VpTransaction:
        now = datetime.now(UTC)
        tx = VpTransaction(
            id=secrets.token_urlsafe(16),
            verifier_id=verifier_id,
            nonce=secrets.token_urlsafe(18),
            state=secrets.token_urlsafe(18),
            dcql_query=json.dumps(dcql_query),
            created_at=now,
            expires_at=now + TX_TTL,
        )
        with Session(self._engine, expire_on_commit=False) as s:
            s.add(tx)
            s.commit()
        return tx

    def _seal_result(self, tx_id: str, report: VerificationReport) -> str:
        # The disclosed claims are personal data: at rest only sealed, for the kiosk that asked.
        blob = seal(
            self._result_key, json.dumps(report_json(report), ensure_ascii=False).encode(), aad=tx_id.encode()
        )
        return base64.b64encode(blob).decode()

    def result_of(self, tx: VpTransaction) -> dict[str, Any] | None:
        if not tx.result:
            return None
        data: dict[str, Any] = json.loads(
            unseal(self._result_key, base64.b64decode(tx.result), aad=tx.id.encode())
        )
        return data

    def transaction(self, tx_id: str) -> VpTransaction:
        with Session(self._engine, expire_on_commit=False) as s:
            tx = s.get(VpTransaction, tx_id[:64])
        if tx is None:
            raise NotFound("No such presentation request.", slug="vp-request-not-found")
        if tx.status == "pending" and _aware(tx.expires_at) < datetime.now(UTC):
            tx.status = "expired"
        return tx

    def answer(self, tx_id: str, *, vp_token: str, state: str | None, audience: str) -> VerificationReport:
        """Handle the wallet's ``direct_post``: verify the ``vp_token`` against this transaction's nonce, once."""
        tx = self.transaction(tx_id)
        if tx.status == "expired":
            raise Conflict("This request has expired; start a new one.", slug="vp-request-expired")
        if tx.status != "pending":
            raise Conflict("This request was already answered (its nonce works once).", slug="nonce-used")
        if state != tx.state:
            raise VerificationFailed("The state does not match the request.", slug="vp-state-mismatch")
        presentation = _single_presentation(vp_token, json.loads(tx.dcql_query))
        report = self.verify(
            presentation, nonce=tx.nonce, audience=audience, verifier_id=tx.verifier_id, channel="openid4vp"
        )
        with Session(self._engine) as s:
            claimed = s.exec(
                update(VpTransaction)
                .where(col(VpTransaction.id) == tx.id, col(VpTransaction.status) == "pending")
                .values(
                    status="verified" if report.verified else "failed",
                    answered_at=datetime.now(UTC),
                    result=self._seal_result(tx.id, report),
                )
            )
            s.commit()
        if claimed.rowcount != 1:
            raise Conflict("This request was already answered (its nonce works once).", slug="nonce-used")
        return report


def report_json(report: VerificationReport) -> dict[str, Any]:
    failure = report.failure
    return {
        "verified": report.verified,
        "credential_type": report.credential_type,
        "issuer": report.issuer,
        "disclosed": report.disclosed,
        "problem": None
        if failure is None
        else {"type": f"urn:imi:problem:{failure.slug}", "detail": failure.detail},
        "checks": [
            {"check": c.name.value, "ok": c.ok, "slug": c.slug, "detail": c.detail} for c in report.checks
        ],
    }


def _single_presentation(vp_token: str, dcql: dict[str, Any]) -> str:
    """OpenID4VP 1.0 section 8.1: ``vp_token`` is a JSON object keyed by credential query id, values arrays."""
    try:
        token = json.loads(vp_token)
    except ValueError:
        raise MalformedInput("vp_token is not JSON.", slug="vp-token-malformed") from None
    ids = [q.get("id") for q in dcql.get("credentials", [])]
    if (
        not isinstance(token, dict)
        or not ids
        or not isinstance(token.get(ids[0]), list)
        or len(token[ids[0]]) != 1
    ):
        raise MalformedInput(
            'vp_token must be {"<query id>": ["<presentation>"]}.', slug="vp-token-malformed"
        )
    value = token[ids[0]][0]
    if not isinstance(value, str):
        raise MalformedInput("The presentation must be a string.", slug="vp-token-malformed")
    return value


def _kb_nonce(presentation: str) -> str | None:
    """The wallet-chosen nonce of a QR presentation (freshness comes from ``iat`` and the replay cache)."""
    try:
        kb = parse_sd_jwt(presentation).kb_jwt
        nonce = decode_jws_unverified(kb).payload.get("nonce") if kb else None
    except (MalformedInput, VerificationFailed):
        return None
    return nonce if isinstance(nonce, str) else None


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
