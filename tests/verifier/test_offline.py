"""An offline kiosk: a signed trust bundle from `imi verifier sync`, no network, refused once too old."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from imi.app import create_app
from imi.cli import app as cli
from kernel.accounts import Role
from kernel.errors import VerificationFailed
from kernel.jose import decode_jws_unverified
from kernel.qr_payload import encode_compact
from kernel.settings import Settings
from tests.verifier.verifier_fixtures import Holder
from verifier.bundle import open_bundle

pytestmark = pytest.mark.usefixtures("http_verifier")


def test_sync_then_verify_offline_then_expire(
    client: TestClient,
    app: FastAPI,
    make_holder: Callable[..., Holder],
    make_settings: Callable[..., Settings],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    token_for: Callable[[Role], dict[str, str]],
) -> None:
    holder = make_holder()
    revoked = make_holder()
    client.post(
        f"/issuer/credentials/{revoked.credential_id}/status",
        json={"action": "revoke"},
        headers=token_for(Role.OFFICER),
    )
    # `imi verifier sync` against the running service (its HTTP client is the test client)
    monkeypatch.setattr(httpx, "Client", lambda **_: client)
    out = tmp_path / "bundle.jwt"
    result = CliRunner().invoke(
        cli, ["verifier", "sync", "--url", "http://testserver", "--out", str(out), "--max-age", "600"]
    )
    assert result.exit_code == 0, result.output
    monkeypatch.undo()
    token = out.read_text()
    thumbprint = open_bundle(token, pinned_thumbprint=None, now=int(time.time())).signer_thumbprint
    assert decode_jws_unverified(token).header["typ"] == "imi-trust-bundle+jwt"
    # a kiosk with its own empty data dir and database, no network (its fetcher only knows the bundle)
    kiosk = create_app(
        make_settings(
            data_dir=tmp_path / "kiosk",
            database_url=f"sqlite:///{tmp_path / 'k.db'}",
            verifier_bundle=out,
            verifier_bundle_key=thumbprint,
            parties=("verifier",),
        )
    )
    with TestClient(kiosk) as k:
        ok = k.post(
            "/verifier/scan", json={"qr": encode_compact(holder.present(["name"], with_receipt=False))}
        )
        assert ok.status_code == 200, ok.text
        bad = k.post("/verifier/scan", json={"qr": holder.present(["name"], with_receipt=True)})
        assert bad.status_code == 200, bad.text  # the receipt is checked offline against the bundled log key
        gone = k.post("/verifier/scan", json={"qr": revoked.present(["name"])})
        assert gone.json()["type"] == "urn:imi:problem:credential-revoked"
        later = int(time.time()) + 601
        kiosk.state.verifier._clock = lambda: later
        expired = k.post("/verifier/scan", json={"qr": holder.present(["name"])})
        assert expired.json()["type"] == "urn:imi:problem:bundle-expired"
    kiosk.state.engine.dispose()
    with pytest.raises(VerificationFailed) as info:
        open_bundle(token, pinned_thumbprint="not-the-signer", now=int(time.time()))
    assert info.value.slug == "bundle-untrusted"
    tampered: Any = token[:-6] + ("AAAAAA" if not token.endswith("AAAAAA") else "BBBBBB")
    with pytest.raises(VerificationFailed):
        open_bundle(tampered, pinned_thumbprint=None, now=int(time.time()))
