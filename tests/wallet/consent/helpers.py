"""Checks a third party (or an auditor) runs on what the consent API hands out."""

from __future__ import annotations

import hashlib
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import KeySet

from kernel.jose import decode_jws_unverified
from kernel.sdjwt import parse_sd_jwt
from ledger.note import NoteVerifier
from ledger.receipt import Receipt, verify_receipt
from verifier.core import VerificationReport, verify_presentation


def jwks(client: TestClient) -> KeySet:
    return KeySet.import_key_set(client.get("/consent/jwks.json").json())


def verify_jwt(client: TestClient, token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Verify a receipt or webhook JWS with joserfc against the service's published JWKS."""
    decoded = jwt.decode(token, jwks(client), algorithms=["ES256", "EdDSA"])
    return dict(decoded.header), dict(decoded.claims)


def verify_anchor(client: TestClient, anchor: dict[str, Any], signed: str) -> None:
    """The anchor receipt proves, offline against the log key, a commitment to SHA-256(signed object)."""
    vkey = client.get("/log/vkey").text.strip()
    verify_receipt(
        Receipt.model_validate(anchor),
        log_verifier=NoteVerifier.from_vkey(vkey),
        expected_object_hash=hashlib.sha256(signed.encode()).digest(),
    )


def verify_release(
    app: FastAPI, body: dict[str, Any], *, client_id: str, nonce: str, now: int
) -> VerificationReport:
    """What the third party does with released data: the verifier core, its own audience and nonce."""
    verifier = app.state.verifier
    return verify_presentation(
        body["presentation"],
        expected_audience=f"imi-client:{client_id}",
        expected_nonce=f"{body['consent_id']}.{body['version']}.{nonce}",
        trust=verifier.trust,
        keys=verifier.keys,
        status=verifier.status,
        now=now,
    )


def disclosed_names(presentation: str) -> set[str]:
    """Every claim name the presentation carries a disclosure for (what actually left the service)."""
    return {d.name for d in parse_sd_jwt(presentation).disclosures if d.name}


def kb_claims(presentation: str) -> dict[str, Any]:
    return decode_jws_unverified(presentation.rsplit("~", 1)[1]).payload
