"""The verifier's use cases: scan a citizen's QR, run an OpenID4VP request, record what was verified."""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, Table, delete, update
from sqlmodel import Session, col, select

from kernel.db import writer
from kernel.errors import Conflict, ImiError, MalformedInput, NotFound, VerificationFailed
from kernel.groupcommit import GroupCommitter, Writer, each
from kernel.sdjwt_verify import ANY_NONCE, AnyNonce
from kernel.sealing import seal, unseal
from verifier.booking import Booking, ScanRequest, book_checked
from verifier.bundle import TrustBundle, check_fresh
from verifier.check_pool import CheckPool
from verifier.core import VerificationReport, possession_failure, replay_key, verify_presentation
from verifier.fetch import Fetcher
from verifier.policy import IssuerKeys, StatusSource, TrustPolicy
from verifier.scanning import ScanSources, check_scan
from verifier.tables import ReplayEntry, VerificationEvent, VpTransaction

# The audience of a holder's presentation asking a verifier what it recorded about a credential.
HISTORY_AUDIENCE = "urn:imi:verifier-history"
TX_TTL = timedelta(minutes=5)
# A scan's booking waits up to this long for others to share its transaction: under load the batches grow from
# one or two scans to a handful, which halves what each costs the committer (bench/verify.py measures it).
BOOKING_LINGER = 0.002
_REPLAY: Table = ReplayEntry.__table__  # type: ignore[attr-defined]
_EVENT: Table = VerificationEvent.__table__  # type: ignore[attr-defined]


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
        check_pool: CheckPool | None = None,
    ) -> None:
        self._engine = writer(engine)
        self._writer = Writer(engine)
        # Replay keys and verification records: one write transaction for every scan waiting (kernel.groupcommit)
        # Scans are checked before their batch is booked (``prepare``, outside the transaction): on the committer
        # thread, or, with ``check_pool``, in check processes. The event loop keeps to HTTP either way, and results
        # come back once per batch.
        self._bookings: GroupCommitter[Booking | ScanRequest, VerificationReport] = GroupCommitter(
            self._writer,
            book_checked,
            name="verifier",
            timeout_slug="verifier-timeout",
            linger=BOOKING_LINGER,
            prepare=self._prepare,
        )
        self._result_key = result_key or secrets.token_bytes(32)
        self.trust = trust
        self.keys = keys
        self.status = status
        self.fetcher = fetcher
        self.reference_origins = reference_origins
        self._clock = clock
        self.bundle = bundle  # offline mode: refuse everything once it is older than its max age
        self.check_pool = check_pool

    def now(self) -> int:
        now = int(self._clock())
        if self.bundle is not None:
            check_fresh(self.bundle, now)
        return now

    # -- citizen shows a QR -------------------------------------------------------------------------------
    def scan(self, qr_text: str, *, verifier_id: str) -> VerificationReport:
        """Verify a scanned QR (plain, compact or reference form). Freshness: KB ``iat`` window + replay cache."""
        return self._bookings.run(ScanRequest(qr_text, verifier_id))

    async def scan_async(self, qr_text: str, *, verifier_id: str) -> VerificationReport:
        """``scan`` for the event loop: checked and booked on the committer thread, awaited without a thread."""
        return await self._bookings.run_async(ScanRequest(qr_text, verifier_id))

    def _prepare(self, jobs: list[Booking | ScanRequest]) -> list[Booking | ScanRequest | Exception]:
        scans = [(i, job) for i, job in enumerate(jobs) if isinstance(job, ScanRequest)]
        out: list[Booking | ScanRequest | Exception] = list(jobs)
        if not scans:
            return out
        texts = [job.qr_text for _, job in scans]
        checked: list[tuple[str, VerificationReport] | Exception]
        if self.check_pool is not None:
            try:
                self.now()  # an offline kiosk with an expired bundle refuses before anything is sent off
            except ImiError as expired:
                checked = [expired] * len(texts)
            else:
                checked = self.check_pool.check_many(texts)
        else:
            checked = each(self._check_scan)(texts)
        for (i, job), outcome in zip(scans, checked, strict=True):
            out[i] = (
                outcome
                if isinstance(outcome, Exception)
                else self._booking(*outcome, job.verifier_id, "scan")
            )
        return out

    def _check_scan(self, qr_text: str) -> tuple[str, VerificationReport]:
        now = self.now()  # an offline kiosk with an expired bundle refuses before reading anything
        sources = ScanSources(self.trust, self.keys, self.status, self.fetcher, self.reference_origins)
        return check_scan(qr_text, sources, now=now)

    def verify(
        self, presentation: str, *, nonce: str | None, audience: str | None, verifier_id: str, channel: str
    ) -> VerificationReport:
        report = self._verify(presentation, nonce=nonce, audience=audience, status=self.status)
        return self._bookings.run(self._booking(presentation, report, verifier_id, channel))

    def _verify(
        self,
        presentation: str,
        *,
        nonce: str | AnyNonce | None,
        audience: str | None,
        status: StatusSource | None,
    ) -> VerificationReport:
        return verify_presentation(
            presentation,
            expected_nonce=nonce,
            expected_audience=audience,
            trust=self.trust,
            keys=self.keys,
            status=status,
            replay=None,  # consulted when the verification is booked, together with its record
            now=self.now(),
        )

    def record(self, report: VerificationReport, *, verifier_id: str, channel: str) -> None:
        """Record a verification that involved no presentation (a credential alone: nothing to replay)."""
        self._bookings.run(Booking(report, None, 0, verifier_id, channel))

    def _booking(
        self, presentation: str, report: VerificationReport, verifier_id: str, channel: str
    ) -> Booking:
        expires_at = int(self._clock()) + 2 * self.trust.iat_window
        return Booking(report, replay_key(presentation, report), expires_at, verifier_id, channel)

    def records_for_holder(self, presentation: str, *, limit: int = 500) -> tuple[str, list[dict[str, Any]]]:
        """What this verifier recorded about one credential, for its holder only.

        The holder proves possession with a presentation of the credential (no claim need be disclosed) whose
        KB-JWT is for :data:`HISTORY_AUDIENCE` and fresh (``iat`` window); reading records is no verification,
        so nothing is booked. Returns the credential id and its records, newest first.
        """
        report = self._verify(presentation, nonce=ANY_NONCE, audience=HISTORY_AUDIENCE, status=None)
        failure = possession_failure(report)
        if failure is not None:
            raise VerificationFailed(failure.detail, slug=failure.slug, check=failure.name.value)
        credential_id = (report.credential_id or "")[:64]
        if not credential_id:
            raise VerificationFailed("The credential has no id to look up.", slug="credential-id-missing")
        query = (
            select(VerificationEvent)
            .where(col(VerificationEvent.credential_id) == credential_id)
            .order_by(col(VerificationEvent.at).desc(), col(VerificationEvent.id).desc())
            .limit(limit)
        )
        with Session(self._engine) as s:
            rows = s.exec(query).all()
        return credential_id, [
            {
                "at": _aware(row.at).isoformat(),
                "verifier_id": row.verifier_id,
                "channel": row.channel,
                "outcome": row.outcome,
                "problem": row.problem or None,
                "claims": [c for c in row.claims.split(",") if c],
            }
            for row in rows
        ]

    def purge_history(self, older_than: timedelta) -> int:
        """Retention: drop verification records older than ``older_than`` and replay keys past their window."""
        cutoff = datetime.now(UTC) - older_than
        with self._writer.begin() as conn:
            removed = conn.execute(delete(_EVENT).where(_EVENT.c.at < cutoff)).rowcount
            conn.execute(delete(_REPLAY).where(_REPLAY.c.expires_at < self.now()))
        return int(removed)

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
        with self._writer.gate(), Session(self._engine, expire_on_commit=False) as s:
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
        with self._writer.gate(), Session(self._engine) as s:
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


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
