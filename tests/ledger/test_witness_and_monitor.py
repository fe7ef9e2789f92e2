"""Witness cosignatures are accepted and checked (C2SP tlog-cosignature); the monitor follows the log over HTTP
and fails loudly on a rewrite."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from fastapi.testclient import TestClient
from sqlalchemy import delete
from typer.testing import CliRunner, Result

from imi.app import create_app
from imi.cli import app as cli
from kernel.errors import VerificationFailed
from kernel.settings import Settings
from ledger.note import NoteVerifier, WitnessCosigner, open_checkpoint, parse_checkpoint, parse_note
from ledger.tables import LogCheckpoint, LogEntry, LogTile


def _notarize(app: Any, n: int) -> None:
    app.state.log.append_many([("notarization", bytes([i % 256]) * 32) for i in range(n)])
    app.state.log.integrate_now()


def test_witness_cosignatures_are_checked_and_merged(make_settings: Callable[..., Settings]) -> None:
    witnesses = [
        WitnessCosigner.from_ed25519(f"witness-{i}.example", ed25519.Ed25519PrivateKey.generate())
        for i in range(3)
    ]
    stranger = WitnessCosigner.from_ed25519("witness-9.example", ed25519.Ed25519PrivateKey.generate())
    app = create_app(make_settings(log_witnesses=tuple(w.verifier.vkey for w in witnesses)))
    with TestClient(app) as client:
        _notarize(app, 5)
        note = client.get("/log/checkpoint").text
        cp = parse_checkpoint(parse_note(note).text)
        lines = [w.cosign(cp, timestamp=int(time.time())) for w in witnesses[:2]]
        resp = client.post("/log/cosignatures", content=note + "\n".join(lines) + "\n")
        assert resp.status_code == 200, resp.text
        assert sorted(resp.json()["accepted"]) == ["witness-0.example", "witness-1.example"]
        unknown = client.post("/log/cosignatures", content=note + stranger.cosign(cp, timestamp=1) + "\n")
        assert unknown.status_code >= 400
        log_key = NoteVerifier.from_vkey(client.get("/log/vkey").text.strip())
        served = client.get("/log/checkpoint").text
        verifiers = tuple(w.verifier for w in witnesses)
        open_checkpoint(
            served, log_verifier=log_key, expected_origin=cp.origin, witnesses=verifiers, witness_threshold=2
        )
        with pytest.raises(VerificationFailed) as info:
            open_checkpoint(
                served,
                log_verifier=log_key,
                expected_origin=cp.origin,
                witnesses=verifiers,
                witness_threshold=3,
            )
        assert info.value.slug == "witness-threshold-not-met"
        forged = note.replace(f"\n{cp.size}\n", f"\n{cp.size + 1}\n", 1)
        assert client.post("/log/cosignatures", content=forged).status_code >= 400
    app.state.engine.dispose()


def test_monitor_follows_then_alerts_on_a_rewrite(
    client: TestClient, app: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _notarize(app, 300)
    vkey = client.get("/log/vkey").text.strip()
    state = tmp_path / "monitor.state"
    monkeypatch.setattr(httpx, "Client", lambda **_: client)
    args = [
        "log",
        "monitor",
        "--url",
        "http://testserver/log",
        "--vkey",
        vkey,
        "--count",
        "1",
        "--interval",
        "0",
    ]

    def poll() -> Result:
        return CliRunner().invoke(cli, [*args, "--state", str(state)])

    first = poll()
    assert first.exit_code == 0, first.output
    assert '"size": 300' in first.output
    _notarize(app, 40)
    grown = poll()
    assert grown.exit_code == 0, grown.output
    assert '"size": 340' in grown.output
    # an operator with the log key rewrites history: wipes the log and signs another tree of a larger size
    with app.state.engine.begin() as conn:
        for table in (LogEntry, LogTile, LogCheckpoint):
            conn.execute(delete(table))
    rewriter = create_app(app.state.settings, run_sequencer=False)
    rewriter.state.log.append_many([("notarization", bytes([7]) * 32) for _ in range(345)])
    rewriter.state.log.integrate_now()
    rewriter.state.engine.dispose()
    alert = poll()
    assert alert.exit_code == 2, alert.output
    assert "ALERT" in alert.output
