"""Wallet benchmark: presentations built per second, and the time to make a presentation QR.

Run: ``python -m bench.wallet [--quick]``. In-process, on SQLite: a citizen enrolled through the real flow
(counter check, OpenID4VCI offer + PIN, passkey from the software authenticator). Baseline in the same run:
bare ES256 signing of a KB-JWT-sized payload (the one signature a presentation needs).
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import tempfile
import time
import warnings
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from bench.common import Result, percentile, print_table
from kernel.jose import sign_jws


def _rate(fn: object, seconds: float) -> float:
    assert callable(fn)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn()
        count += 1
    return count / (time.perf_counter() - start)


def run(quick: bool = False) -> list[Result]:
    warnings.filterwarnings("ignore", message="Using `httpx`")
    from fastapi.testclient import TestClient

    from imi.app import create_app
    from imi.demo import PERSON, _wire_http
    from imi.soft_authenticator import SoftAuthenticator
    from kernel.accounts import Role, create_token
    from kernel.settings import Settings

    seconds = 2.0 if quick else 8.0
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(
            Settings(
                data_dir=Path(tmp), public_url="http://testserver", log_level="WARNING", rate_limits=False
            )
        )
        with TestClient(app) as client:
            _wire_http(app, client)
            officer = {
                "Authorization": f"Bearer {create_token(app.state.engine, role=Role.OFFICER, name='b')}"
            }
            check = client.post("/issuer/checks", json=PERSON, headers=officer).json()["id"]
            offer = client.post("/issuer/credentials", json={"check_id": check}, headers=officer).json()
            start = client.post(
                "/wallet/enrol/start", json={"offer": offer["credential_offer_uri"], "pin": offer["tx_code"]}
            ).json()
            phone = SoftAuthenticator("testserver", "http://testserver")
            client.post(
                "/wallet/enrol/finish",
                json={"ceremony_id": start["ceremony_id"], "credential": phone.create(start["publicKey"])},
            )
            wallet = app.state.wallet
            from sqlmodel import Session, select

            from wallet_api.tables import Citizen

            with Session(app.state.engine) as s:
                citizen_id = s.exec(select(Citizen.id)).one()
            item = wallet.credentials(citizen_id)[0]["id"]
            claims = ["name", "birthDate", "nationality"]

            def build() -> None:
                wallet.present(
                    citizen_id,
                    item,
                    claims,
                    aud="urn:imi:qr-presentation",
                    nonce=secrets.token_urlsafe(8),
                    with_receipt=False,
                )

            built = _rate(build, seconds)
            qr_ms: list[float] = []
            deadline = time.perf_counter() + seconds
            while time.perf_counter() < deadline or len(qr_ms) < 20:
                t = time.perf_counter()
                qr = wallet.presentation_qr(citizen_id, item, claims, form="compact")
                qr_ms.append((time.perf_counter() - t) * 1e3)
            key = ec.generate_private_key(ec.SECP256R1())
            kb = {
                "iat": int(time.time()),
                "aud": "urn:imi:qr-presentation",
                "nonce": "n" * 11,
                "sd_hash": "h" * 43,
            }
            baseline = _rate(lambda: sign_jws(kb, key, typ="kb+jwt"), seconds)
        app.state.engine.dispose()
    return [
        Result(
            "wallet",
            "presentations built/s (3 claims, KB-JWT)",
            built,
            "/s",
            baseline,
            "bare ES256 KB-JWT signing",
        ),
        Result(
            "wallet",
            f"presentation QR p50 (compact, version {qr.version}, PNG+SVG)",
            statistics.median(qr_ms),
            "ms",
        ),
        Result("wallet", "presentation QR p99", percentile(qr_ms, 99), "ms"),
    ]


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    print_table(run(parser.parse_args().quick))
