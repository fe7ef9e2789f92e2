"""Background work of the consent API: the citizen's access history, expiry, webhook delivery.

Every event is first committed with its transition or release (``consent_store``); this worker then copies the
events into the citizen's access history, the vault items of kind ``history`` that ``GET /wallet/me/history``
shows (the same shape as ``WalletService._remember``: ``{"at", "kind", ...}``). Each transition becomes one entry
(``kind: "consent"``); the releases of one consent in one batch become one entry (``kind: "release"``) listing
every release time, so a busy third party does not flood the citizen's history. Entries are written with a
deterministic item id (the first event's id), so a batch repeated after a crash overwrites instead of
duplicating; the events are marked ``notified`` only after their entries are written.

:class:`ConsentWorker` runs :meth:`ConsentWorker.run_once` every ``interval`` seconds in a daemon thread: record
expiries, write history, deliver due webhooks. Tests and benchmarks call ``run_once`` themselves.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx
from sqlalchemy import Row, bindparam, select, update

from kernel.groupcommit import Writer
from wallet_api import consent_store as store
from wallet_api.consent_rules import EventKind
from wallet_api.consent_service import ConsentService
from wallet_api.consent_tables import ConsentClient
from wallet_api.consent_terms import claim_name
from wallet_api.consent_webhooks import Webhooks
from wallet_api.vault import Vault

_E = store.EVENT
_C = store.CONSENT
_CLIENT = ConsentClient.__table__  # type: ignore[attr-defined]
log = logging.getLogger("imi.consent.worker")


def history_entries(rows: Sequence[Row[Any]]) -> list[tuple[str, str, dict[str, Any]]]:
    """``(citizen_id, item_id, entry)`` for a batch of events joined with their consent and client (pure)."""
    out: list[tuple[str, str, dict[str, Any]]] = []
    releases: dict[str, list[Row[Any]]] = {}
    for row in rows:
        if row.citizen_id is None or row.kind == EventKind.REQUESTED.value:
            continue
        if row.kind == EventKind.RELEASED.value:
            releases.setdefault(row.consent_id, []).append(row)
            continue
        entry = {**_party(row), "at": row.at, "kind": "consent", "event": row.kind, "version": row.version}
        out.append((row.citizen_id, f"consent-event-{row.id}", entry))
    for group in releases.values():
        first, last = group[0], group[-1]
        claims = sorted({claim_name(k) for r in group for k in json.loads(r.detail).get("items", [])})
        entry = {
            **_party(last),
            "at": last.at,
            "kind": "release",
            "claims": claims,
            "times": [r.at for r in group],
            "count": len(group),
            "version": last.version,
        }
        out.append((first.citizen_id, f"consent-release-{first.id}", entry))
    return out


def _party(row: Row[Any]) -> dict[str, Any]:
    return {
        "consent_id": row.consent_id,
        "party": row.client_name,
        "organisation": row.organisation_code,
        "purpose": row.purpose,
    }


# Events not yet written to their citizen's history, oldest first; built once (the worker asks every second).
_UNNOTIFIED = (
    select(
        _E.c.id, _E.c.consent_id, _E.c.kind, _E.c.at, _E.c.version, _E.c.detail, _C.c.citizen_id,
        _C.c.purpose, _CLIENT.c.name.label("client_name"), _CLIENT.c.organisation_code,
    )
    .select_from(_E.join(_C, _C.c.id == _E.c.consent_id).join(_CLIENT, _CLIENT.c.id == _C.c.client_id))
    .where(_E.c.notified.is_(False))
    .order_by(_E.c.id)
    .limit(bindparam("limit"))
)  # fmt: skip


class HistoryWriter:
    """Copies consent events into the citizens' access histories (at least once, idempotently)."""

    def __init__(self, writer: Writer, vault: Vault) -> None:
        self._writer = writer
        self._engine = writer.engine
        self._vault = vault

    def run(self, *, limit: int = 500) -> int:
        """Process up to ``limit`` unnotified events; returns how many were processed."""
        with self._engine.connect() as conn:
            rows: Sequence[Row[Any]] = conn.execute(_UNNOTIFIED, {"limit": limit}).all()  # type: ignore[assignment]
        entries = [(citizen, "history", entry, item) for citizen, item, entry in history_entries(rows)]
        if entries:
            # One transaction for the whole round; erased data spaces are skipped (nothing to tell anyone).
            with self._writer.gate():  # queue behind (not spin against) the release committer
                self._vault.put_many(entries)
        if rows:
            with self._writer.begin() as conn:
                conn.execute(update(_E).where(_E.c.id.in_([r.id for r in rows])).values(notified=True))
        return len(rows)


class ConsentWorker:
    """Expiry, history and webhook delivery, every ``interval`` seconds in a daemon thread."""

    def __init__(
        self,
        service: ConsentService,
        history: HistoryWriter,
        webhooks: Webhooks,
        http: httpx.Client,
        *,
        interval: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._service = service
        self._history = history
        self._webhooks = webhooks
        self.http = http
        self._interval = interval
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self, now: int | None = None) -> dict[str, int]:
        now = int(self._clock()) if now is None else now
        expired = self._service.expire_due(now)
        notified = 0
        while (batch := self._history.run()) > 0:
            notified += batch
        delivered = self._webhooks.deliver_due(self.http, now)
        return {"expired": expired, "notified": notified, "delivered": delivered}

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="imi-consent-worker", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.run_once()
            except Exception:  # the database or a receiver may be down: keep going, next round may work
                log.exception("consent worker round failed; retrying")
