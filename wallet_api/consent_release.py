"""Data release (the hot path): the granted claims as an SD-JWT presentation bound to the consent.

``GET /consent/consents/{id}/data?nonce=N`` answers with the citizen's credential presented with exactly the
granted disclosures (RFC 9901 sections 4 and 7) and a Key Binding JWT signed with the citizen's holder key:
``aud = imi-client:<client id>`` and ``nonce = <consent id>.<version>.<N>`` (``consent_rules.kb_nonce``), so the
third party checks with ``verifier.core.verify_presentation(expected_audience=..., expected_nonce=...)`` that the
data comes from the issuer, is bound to this consent version, and answers its own fresh ``N``.

Each release is one job of the group committer (``kernel.groupcommit``): inside the write transaction, nothing in
front of it, the access token is checked, the consent row is read under lock (SQLite ``BEGIN IMMEDIATE``,
PostgreSQL ``FOR UPDATE``), so a withdrawal committed before is seen by the very next request. Then: the state
(only ``given``), the end of validity (``expired`` is recorded), an erased data space (``revoked`` is recorded),
the purpose's registry entry (a suspended purpose releases nothing), the items asked for (only granted ones), the
frequency window (the stricter of the consent's and the purpose's current limit); then the KB-JWT is signed, the
``released`` event is chained and anchored (``data.released``, committing to ``SHA-256(presentation)``), and a
one-time consent becomes ``consumed``. The answer leaves only after the commit.

What *is* cached, per (consent, version): the parsed credential, the holder key and the SD-JWT part of the
presentation (issuer JWT plus the granted disclosures) with its ``sd_hash``. A version never changes, so the cache
decides nothing; it saves two vault reads per release. Errors: those of ``consent_rules`` (``consent-paused``,
``consent-withdrawn``, ``consent-expired``, ``consent-frequency-exceeded``, ``consent-item-not-granted``, ...),
``consent_auth`` (``client-token-*``), plus ``Forbidden(purpose-suspended)``, ``Conflict(credential-unavailable)``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import serialization
from sqlalchemy import Connection
from starlette.concurrency import run_in_threadpool

from kernel.errors import Conflict, Forbidden, ImiError, NotFound
from kernel.groupcommit import GroupCommitter, one_by_one
from kernel.jose import PrivateKey, dump_json, sign_jws
from kernel.keystore import KeyPair
from kernel.sdjwt import KB_JWT_TYP, present, sd_hash
from wallet_api import consent_store as store
from wallet_api.consent_auth import bearer_hash, check_token
from wallet_api.consent_fastsql import FastSql, ReleaseRow
from wallet_api.consent_rules import (
    LIVE,
    ConsentState,
    EventKind,
    Window,
    check_items_granted,
    client_audience,
    effective_frequency,
    kb_nonce,
    release_refusal,
    take_release,
)
from wallet_api.consent_service import ConsentService
from wallet_api.consent_terms import SUBJECT, Frequency, Period, Terms, claim_name


@dataclass(frozen=True)
class Prepared:
    """What one consent version presents, ready to sign a fresh KB-JWT."""

    credential: str
    granted: tuple[str, ...]
    sd_jwt: str
    sd_hash: str
    key: PrivateKey
    extra_json: bytes  # the KB-JWT's constant claims (the anchor receipt) as a JSON object without its "}"
    one_time: bool
    retention_days: int
    period: Period

    def present(self, items: tuple[str, ...], *, aud: str, nonce: str, iat: int) -> str:
        """``<issuer JWT>~<disclosures>~<KB-JWT>``, the same bytes ``kernel.sdjwt.present`` makes."""
        if items == self.granted:
            sd_jwt, digest = self.sd_jwt, self.sd_hash
        else:
            sd_jwt = present(
                self.credential, disclose=[(SUBJECT, claim_name(k)) for k in items], holder_key=None
            )
            digest = sd_hash(sd_jwt)
        fresh = dump_json({"iat": iat, "aud": aud, "nonce": nonce, "sd_hash": digest})
        payload = self.extra_json + b"," + fresh[1:] if len(self.extra_json) > 1 else fresh
        return sd_jwt + sign_jws(payload, self.key, typ=KB_JWT_TYP)


@dataclass(frozen=True)
class Release:
    sub: str
    consent_id: str
    version: int
    presentation: str
    items: tuple[str, ...]
    released_at: int
    retain_until: int


@dataclass(frozen=True)
class _Job:
    authorization: str | None
    consent_id: str
    nonce: str
    items: tuple[str, ...] | None
    key: KeyPair


@dataclass(frozen=True)
class _Missing:
    """The cache has no entry for this consent version: prepare it outside the transaction, then retry."""

    consent_id: str
    version: int
    citizen_id: str
    credential_item: str
    granted: tuple[str, ...]
    terms: str


class Releaser:
    def __init__(self, core: ConsentService, *, cache_size: int = 10_000) -> None:
        self._core = core
        self._cache: dict[tuple[str, int], Prepared] = {}
        self._cache_size = cache_size
        self._lock = threading.Lock()
        self._fast = FastSql(core.writer.engine.dialect)
        self._committer: GroupCommitter[_Job, Release | _Missing] = GroupCommitter(
            core.writer, one_by_one(self._run), name="consent-release", timeout_slug="consent-timeout"
        )

    def release(
        self, authorization: str | None, consent_id: str, *, nonce: str, items: Collection[str] | None = None
    ) -> Release:
        """Release the granted claims of ``consent_id`` to the client behind ``authorization`` (blocking)."""
        job = _Job(
            authorization, consent_id[:64], nonce, tuple(items) if items else None, self._core.keys.active()
        )
        for _ in range(3):
            outcome = self._committer.run(job)
            if isinstance(outcome, Release):
                return outcome
            self._prepare(outcome)
        raise Conflict("The consent keeps changing; retry.", slug="consent-busy")

    async def release_async(
        self, authorization: str | None, consent_id: str, *, nonce: str, items: Collection[str] | None = None
    ) -> Release:
        """The same, awaiting the commit on the event loop instead of holding a thread."""
        key = self._core.keys.peek()
        if key is None:
            key = await run_in_threadpool(self._core.keys.active)
        job = _Job(authorization, consent_id[:64], nonce, tuple(items) if items else None, key)
        for _ in range(3):
            outcome = await self._committer.run_async(job)
            if isinstance(outcome, Release):
                return outcome
            await run_in_threadpool(self._prepare, outcome)
        raise Conflict("The consent keeps changing; retry.", slug="consent-busy")

    def _run(self, conn: Connection, job: _Job) -> Release | _Missing:
        """One release inside the committer's transaction (refusals raise before writing, except recorded ones)."""
        now, fast = self._core.now(), self._fast
        cur = fast.cursor(conn)
        client_id = check_token(fast.token(cur, bearer_hash(job.authorization)), now)
        row = fast.consent(cur, job.consent_id)
        if row is None or row.client_id != client_id:
            raise NotFound("No such consent.", slug="consent-not-found")
        refusal = self._refusal(conn, row, job.key, now)
        if refusal is not None:
            raise refusal
        prepared = self._cache.get((row.id, row.version))
        if prepared is None:
            granted = tuple(json.loads(row.granted or "[]"))
            return _Missing(
                row.id, row.version, str(row.citizen_id), str(row.credential_item), granted, row.terms
            )
        return self._release_in(conn, cur, row, prepared, job=job, now=now)

    def _refusal(self, conn: Connection, row: ReleaseRow, key: KeyPair, now: int) -> ImiError | None:
        state = ConsentState(row.state)
        if state in LIVE and row.citizen_status in (None, "erased"):
            chain = store.Chain.of(row)
            event = store.record(
                conn, chain, EventKind.REVOKED, actor="system:erasure", at=now, detail={}, rng=self._core.rng
            )
            store.save(conn, row.id, chain, state=ConsentState.REVOKED.value, updated_at=now)
            self._core.notify(conn, row, event, ConsentState.REVOKED, key=key, subject=row.subject)
            return Conflict("The citizen erased their data space.", slug="consent-revoked")
        refusal = release_refusal(state, valid_until=row.valid_until, now=now)
        if refusal is not None and refusal.slug == "consent-expired" and state in LIVE:
            self._core.expire_in(conn, row, key, now)
        if refusal is None and not row.purpose_active:
            return Forbidden("The purpose of this consent is suspended.", slug="purpose-suspended")
        return refusal

    def _release_in(
        self,
        conn: Connection,
        cur: Any,  # noqa: ANN401 - a DBAPI cursor
        row: ReleaseRow,
        prepared: Prepared,
        *,
        job: _Job,
        now: int,
    ) -> Release:
        chosen = check_items_granted(prepared.granted, job.items)
        purpose_limit = Frequency(
            int(row.max_frequency_count or 0), Period(row.max_frequency_period or "day")
        )
        limit = effective_frequency(Frequency(int(row.frequency_count or 0), prepared.period), purpose_limit)
        window = take_release(Window(row.window_start, row.window_count), limit, now)
        aud, nonce = client_audience(row.client_id), kb_nonce(row.id, row.version, job.nonce)
        presentation = prepared.present(chosen, aud=aud, nonce=nonce, iat=now)
        chain, rng = store.Chain.of(row), self._core.rng
        detail = {"items": list(chosen), "nonce": job.nonce, "presentation_sha256": _hex(presentation)}
        made = store.draft(
            chain, EventKind.RELEASED, actor=f"client:{row.client_id}", at=now, detail=detail, rng=rng
        )
        values = {"window_start": window.start, "window_count": window.count, "releases": row.releases + 1}
        update = {"consent_id": row.id, "updated_at": now, **chain.columns(), **values}
        self._fast.write_release(cur, made.log, made.event, update)
        if prepared.one_time:
            event = store.record(conn, chain, EventKind.CONSUMED, actor="system", at=now, detail={}, rng=rng)
            self._core.notify(conn, row, event, ConsentState.CONSUMED, key=job.key, subject=row.subject)
            store.save(conn, row.id, chain, state=ConsentState.CONSUMED.value, updated_at=now)
        retention = min(prepared.retention_days, int(row.max_retention_days or 0))
        return Release(
            str(row.subject), row.id, row.version, presentation, chosen, now, now + retention * 86_400
        )

    def _prepare(self, missing: _Missing) -> None:
        """Load the credential and holder key of one consent version from the vault into the cache."""
        vault = self._core.vault
        try:
            item = vault.get(missing.citizen_id, missing.credential_item, "credential")
            pkcs8 = vault.get(missing.citizen_id, item["holder_key_id"], "holder_key")["pkcs8"]
        except NotFound:
            raise Conflict(
                "The credential behind this consent is gone.", slug="credential-unavailable"
            ) from None
        holder = serialization.load_der_private_key(base64.b64decode(pkcs8), password=None)
        assert isinstance(holder, PrivateKey)
        sd_jwt = present(
            item["credential"], disclose=[(SUBJECT, claim_name(k)) for k in missing.granted], holder_key=None
        )
        terms = Terms.from_json(json.loads(missing.terms))
        receipt = item.get("receipt")
        prepared = Prepared(
            item["credential"], missing.granted, sd_jwt, sd_hash(sd_jwt), holder,
            dump_json({"imi_receipt": receipt} if receipt else {})[:-1], terms.one_time, terms.retention_days,
            terms.frequency.period,
        )  # fmt: skip
        with self._lock:
            if len(self._cache) >= self._cache_size:
                for stale in list(self._cache)[: self._cache_size // 2]:
                    self._cache.pop(stale, None)
            self._cache[(missing.consent_id, missing.version)] = prepared


def _hex(text: str) -> str:
    return hashlib.sha256(text.encode("ascii")).hexdigest()
