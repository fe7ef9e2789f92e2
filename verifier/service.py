"""The verifier's use cases: scan a citizen's QR, run an OpenID4VP request, record what was verified."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, Insert, Table, delete, insert, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col

from kernel.db import writer
from kernel.errors import Conflict, MalformedInput, NotFound, VerificationFailed
from kernel.groupcommit import GroupCommitter, Writer
from kernel.qr_payload import ScannedReference, read_qr
from kernel.sdjwt_verify import ANY_NONCE
from kernel.sealing import seal, unseal
from verifier.bundle import TrustBundle, check_fresh
from verifier.core import VerificationReport, replay_key, verify_presentation, with_replay_outcome
from verifier.fetch import Fetcher
from verifier.policy import IssuerKeys, StatusSource, TrustPolicy
from verifier.tables import ReplayEntry, VerificationEvent, VpTransaction

QR_AUDIENCE = "urn:imi:qr-presentation"  # the audience a wallet puts in a QR it shows to any kiosk
TX_TTL = timedelta(minutes=5)
_REPLAY: Table = ReplayEntry.__table__  # type: ignore[attr-defined]
_EVENT: Table = VerificationEvent.__table__  # type: ignore[attr-defined]
_INSERT_EVENT = insert(_EVENT)


@dataclass(frozen=True)
class _Booking:
    """One group-commit job: a verification's record and, if it had a KB-JWT, its replay-cache key."""

    report: VerificationReport
    replay_key: str | None
    expires_at: int
    verifier_id: str
    channel: str


def _book(conn: Connection, job: _Booking) -> VerificationReport:
    """Insert the replay key (the first insert wins, across every process) and the record; the final report."""
    report = job.report
    if job.replay_key is not None:
        inserted = conn.execute(
            _insert_replay_key(conn), {"key": job.replay_key, "expires_at": job.expires_at}
        ).first()  # (rowcount is not reliable here: psycopg reports -1 for ON CONFLICT DO NOTHING)
        report = with_replay_outcome(report, first_use=inserted is not None)
    conn.execute(_INSERT_EVENT, event_row(report, verifier_id=job.verifier_id, channel=job.channel))
    return report


def _insert_replay_key(conn: Connection) -> Insert:
    """INSERT of a replay key that does nothing when the key is there, returning the key only when new."""
    dialect_insert = sqlite_insert if conn.dialect.name == "sqlite" else pg_insert
    return dialect_insert(_REPLAY).on_conflict_do_nothing().returning(_REPLAY.c.key)


def event_row(report: VerificationReport, *, verifier_id: str, channel: str) -> dict[str, Any]:
    """The verification record: who, when, outcome, which claims; never the claims' values."""
    failure = report.failure
    return {
        "at": datetime.now(UTC),
        "verifier_id": verifier_id[:200],
        "channel": channel,
        "outcome": "verified" if report.verified else "refused",
        "problem": failure.slug if failure else "",
        "credential_id": (report.credential_id or "")[:64] or None,
        "claims": ",".join(sorted(report.disclosed)),
    }


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
        checker_threads: int = 8,
    ) -> None:
        self._engine = writer(engine)
        self._writer = Writer(engine)
        # Replay keys and verification records: one write transaction for every scan waiting (kernel.groupcommit)
        self._bookings: GroupCommitter[_Booking, VerificationReport] = GroupCommitter(
            self._writer, _book, name="verifier", timeout_slug="verifier-timeout"
        )
        # The checks are CPU work (the signature checks release the GIL): a few threads keep every core busy
        # without the cost of handing the GIL around dozens of threads.
        self._checkers = ThreadPoolExecutor(max_workers=checker_threads, thread_name_prefix="imi-verify")
        self._result_key = result_key or secrets.token_bytes(32)
        self.trust = trust
        self.keys = keys
        self.status = status
        self.fetcher = fetcher
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
        return self._bookings.run(self._booking(*self._check_scan(qr_text), verifier_id, "scan"))

    async def scan_async(self, qr_text: str, *, verifier_id: str) -> VerificationReport:
        """``scan`` for the event loop: the checks in a worker thread, the booking awaited without a thread."""
        checked = await asyncio.get_running_loop().run_in_executor(self._checkers, self._check_scan, qr_text)
        return await self._bookings.run_async(self._booking(*checked, verifier_id, "scan"))

    def _check_scan(self, qr_text: str) -> tuple[str, VerificationReport]:
        self.now()  # an offline kiosk with an expired bundle refuses before reading anything
        scanned = read_qr(qr_text)
        if isinstance(scanned, ScannedReference):
            presentation = self._resolve_reference(scanned.url)
        else:
            presentation = scanned.presentation
        report = verify_presentation(
            presentation,
            expected_nonce=ANY_NONCE,  # the wallet's own: the iat window and the replay cache give freshness
            expected_audience=QR_AUDIENCE,
            trust=self.trust,
            keys=self.keys,
            status=self.status,
            replay=None,  # consulted when the scan is booked, together with its record
            now=self.now(),
        )
        return presentation, report

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
            replay=None,  # consulted when the verification is booked, together with its record
            now=self.now(),
        )
        return self._bookings.run(self._booking(presentation, report, verifier_id, channel))

    def record(self, report: VerificationReport, *, verifier_id: str, channel: str) -> None:
        """Record a verification that involved no presentation (a credential alone: nothing to replay)."""
        self._bookings.run(_Booking(report, None, 0, verifier_id, channel))

    def _booking(
        self, presentation: str, report: VerificationReport, verifier_id: str, channel: str
    ) -> _Booking:
        expires_at = int(self._clock()) + 2 * self.trust.iat_window
        return _Booking(report, replay_key(presentation, report), expires_at, verifier_id, channel)

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
