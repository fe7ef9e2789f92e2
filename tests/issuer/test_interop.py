"""Interoperability: third-party libraries verify what our HTTP API issues, with keys from our DID document only.

* the reference SD-JWT implementation on PyPI (``sd-jwt``, the OpenWallet / IETF authors' library) verifies our
  ``vc+sd-jwt`` credentials and a holder presentation (our ``kernel.sdjwt.present`` + Key Binding JWT);
* ``joserfc`` verifies our ``vc+jwt`` credentials;
* both credential forms have the shape W3C VC-JOSE-COSE asks for.

The issuer key is resolved the way an outside verifier would: ``kid`` in the JOSE header is a DID URL, the DID is
ours (``did:web:testserver``), and the verification method comes from ``GET /.well-known/did.json``.
"""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient
from joserfc import jwt as jose_jwt
from joserfc.errors import BadSignatureError
from joserfc.jwk import ECKey
from jwcrypto.jwk import JWK
from jwcrypto.jws import InvalidJWSSignature
from sd_jwt.verifier import SDJWTVerifier

from kernel.jose import b64url_decode, b64url_encode, decode_jws_unverified, public_jwk_dict, sign_jws
from kernel.sdjwt import present, sd_hash
from tests.issuer.helpers import (
    CREDIT_CODE,
    PERSON_SUBJECT,
    company_check,
    did_method,
    issue_direct,
    record_check,
)

ISSUER_DID = "did:web:testserver"
VCDM_V2 = "https://www.w3.org/ns/credentials/v2"
XSD_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
VERIFIER_AUD = "https://bank.example/verifier"


class DidResolver:
    """The reference library's ``cb_get_issuer_key(iss, header)``: the key comes from our DID document only."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.kids: list[str] = []

    def __call__(self, iss: str, header: dict[str, Any]) -> JWK:
        assert iss == ISSUER_DID
        self.kids.append(header["kid"])
        return JWK(**did_method(self.client, header["kid"])["publicKeyJwk"])


def _issuer_jwt(credential: str) -> str:
    return credential.split("~", 1)[0]


# ------------------------------------------------------------------------------------ reference SD-JWT library


def test_reference_sd_jwt_library_verifies_person_credential(
    client: TestClient, officer: dict[str, str], passed_check: str, holder_key: ec.EllipticCurvePrivateKey
) -> None:
    sd_jwt = issue_direct(client, officer, passed_check, holder_key)["credential"]
    resolver = DidResolver(client)
    payload = SDJWTVerifier(sd_jwt, resolver).get_verified_payload()
    assert resolver.kids == [decode_jws_unverified(_issuer_jwt(sd_jwt)).header["kid"]]
    assert payload["credentialSubject"] == PERSON_SUBJECT
    assert payload["type"] == ["VerifiableCredential", "RealNameIdentityCredential"]
    assert payload["iss"] == payload["issuer"] == ISSUER_DID
    assert payload["cnf"]["jwk"] == public_jwk_dict(holder_key)
    assert "_sd" not in json.dumps(payload)


def test_reference_sd_jwt_library_verifies_company_credential(
    client: TestClient, officer: dict[str, str], holder_key: ec.EllipticCurvePrivateKey
) -> None:
    check_id = record_check(client, officer, company_check())
    sd_jwt = issue_direct(client, officer, check_id, holder_key)["credential"]
    payload = SDJWTVerifier(sd_jwt, DidResolver(client)).get_verified_payload()
    assert payload["type"] == ["VerifiableCredential", "LegalEntityCredential"]
    assert payload["credentialSubject"] == {
        "creditCode": CREDIT_CODE,
        "name": "北京景山科技有限公司",
        "legalRepresentative": "李建国",
        "registeredAddress": "北京市东城区景山前街4号",
    }
    assert payload["evidence"][0]["documentType"] == "CN-business-licence"


def test_reference_sd_jwt_library_refuses_other_key_and_tampering(
    client: TestClient, officer: dict[str, str], passed_check: str, holder_key: ec.EllipticCurvePrivateKey
) -> None:
    sd_jwt = issue_direct(client, officer, passed_check, holder_key)["credential"]
    stranger = JWK(**public_jwk_dict(ec.generate_private_key(ec.SECP256R1())))
    with pytest.raises(InvalidJWSSignature):
        SDJWTVerifier(sd_jwt, lambda _iss, _header: stranger)
    # A disclosure whose value was changed no longer matches any signed digest: the claim disappears.
    jwt, *disclosures, _ = sd_jwt.split("~")
    forged = []
    for encoded in disclosures:
        salt, name, _value = json.loads(b64url_decode(encoded))
        changed = b64url_encode(json.dumps([salt, name, "110105194912310021"]).encode())
        forged.append(changed if name == "idNumber" else encoded)
    assert forged != disclosures
    tampered = "~".join([jwt, *forged, ""])
    payload = SDJWTVerifier(tampered, DidResolver(client)).get_verified_payload()
    assert "idNumber" not in payload["credentialSubject"]
    assert payload["credentialSubject"]["name"] == "王小明"


def test_holder_presentation_with_key_binding_verifies_with_reference_library(
    client: TestClient, officer: dict[str, str], passed_check: str, holder_key: ec.EllipticCurvePrivateKey
) -> None:
    sd_jwt = issue_direct(client, officer, passed_check, holder_key)["credential"]
    presentation = present(
        sd_jwt,
        disclose=[("credentialSubject", "name"), ("credentialSubject", "birthDate")],
        holder_key=holder_key,
        aud=VERIFIER_AUD,
        nonce="n-0S6_WzA2Mj",
        iat=int(time.time()),
    )
    verifier = SDJWTVerifier(
        presentation, DidResolver(client), expected_aud=VERIFIER_AUD, expected_nonce="n-0S6_WzA2Mj"
    )
    payload = verifier.get_verified_payload()
    assert payload["credentialSubject"] == {"name": "王小明", "birthDate": "1949-12-31"}
    assert _disclosed_names(presentation) == ["birthDate", "name"]
    with pytest.raises(ValueError, match="nonce"):
        SDJWTVerifier(presentation, DidResolver(client), expected_aud=VERIFIER_AUD, expected_nonce="other")
    with pytest.raises(ValueError, match="audience"):
        SDJWTVerifier(
            presentation,
            DidResolver(client),
            expected_aud="https://evil.example",
            expected_nonce="n-0S6_WzA2Mj",
        )


def _disclosed_names(presentation: str) -> list[str]:
    """Claim names of the disclosures a presentation carries (the rest, the ID number too, stay digests)."""
    _, *disclosures, _kb = presentation.split("~")
    return sorted(str(json.loads(b64url_decode(d))[1]) for d in disclosures)


def test_reference_library_refuses_key_binding_by_another_key(
    client: TestClient, officer: dict[str, str], passed_check: str, holder_key: ec.EllipticCurvePrivateKey
) -> None:
    sd_jwt = issue_direct(client, officer, passed_check, holder_key)["credential"]
    thief = ec.generate_private_key(ec.SECP256R1())
    # Our presenter refuses to bind with a key that is not cnf.jwk; build the thief's KB-JWT by hand.
    unbound = present(sd_jwt, disclose=[("credentialSubject", "name")], holder_key=None)
    kb = sign_jws(
        {"iat": int(time.time()), "aud": VERIFIER_AUD, "nonce": "n1", "sd_hash": sd_hash(unbound)},
        thief,
        typ="kb+jwt",
    )
    with pytest.raises(InvalidJWSSignature):
        SDJWTVerifier(unbound + kb, DidResolver(client), expected_aud=VERIFIER_AUD, expected_nonce="n1")


# --------------------------------------------------------------------------------------------- joserfc, vc+jwt


def _joserfc_key(client: TestClient, token: str) -> ECKey:
    method = did_method(client, decode_jws_unverified(token).header["kid"])
    return ECKey.import_key(dict(method["publicKeyJwk"]))


def test_joserfc_verifies_vc_jwt_with_did_document_key(
    client: TestClient, officer: dict[str, str], passed_check: str, holder_key: ec.EllipticCurvePrivateKey
) -> None:
    issued = issue_direct(client, officer, passed_check, holder_key, fmt="vc+jwt")
    token = jose_jwt.decode(
        issued["credential"], _joserfc_key(client, issued["credential"]), algorithms=["ES256"]
    )
    assert token.header["typ"] == "vc+jwt"
    registry = jose_jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": ISSUER_DID},
        jti={"value": issued["credential_id"]},  # optional, but when present it must be the credential id
        exp={"essential": True},
    )
    registry.validate(token.claims)  # exp is checked against the clock too
    assert token.claims["credentialSubject"] == PERSON_SUBJECT
    assert token.claims["cnf"]["jwk"] == public_jwk_dict(holder_key)


def test_joserfc_refuses_other_key_and_changed_payload(
    client: TestClient, officer: dict[str, str], passed_check: str, holder_key: ec.EllipticCurvePrivateKey
) -> None:
    jwt = issue_direct(client, officer, passed_check, holder_key, fmt="vc+jwt")["credential"]
    stranger_jwk: dict[str, str | list[str]] = {**public_jwk_dict(ec.generate_private_key(ec.SECP256R1()))}
    stranger = ECKey.import_key(stranger_jwk)
    with pytest.raises(BadSignatureError):
        jose_jwt.decode(jwt, stranger, algorithms=["ES256"])
    header, payload, signature = jwt.split(".")
    claims = json.loads(b64url_decode(payload))
    claims["credentialSubject"]["name"] = "李四"
    forged = f"{header}.{b64url_encode(json.dumps(claims).encode())}.{signature}"
    with pytest.raises(BadSignatureError):
        jose_jwt.decode(forged, _joserfc_key(client, jwt), algorithms=["ES256"])


# ------------------------------------------------------------------------------------------ VC-JOSE-COSE shape


def _xsd_seconds(value: str) -> int:
    assert XSD_UTC.match(value), value
    return int(datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC).timestamp())


@pytest.mark.parametrize("fmt", ["vc+jwt", "vc+sd-jwt"])
def test_vc_jose_cose_shape(
    client: TestClient,
    officer: dict[str, str],
    passed_check: str,
    holder_key: ec.EllipticCurvePrivateKey,
    fmt: str,
) -> None:
    issued = issue_direct(client, officer, passed_check, holder_key, fmt=fmt)
    decoded = decode_jws_unverified(_issuer_jwt(issued["credential"]))
    header, claims = decoded.header, decoded.payload
    assert header["typ"] == fmt
    assert header["alg"] == "ES256"
    did_method(client, header["kid"])  # the kid is a DID URL of an assertion method of our DID document
    if fmt == "vc+jwt":
        assert header["cty"] == "vc"
        assert issued["credential"].count("~") == 0
    else:
        assert header.get("cty", "vc") == "vc"
        assert claims["_sd_alg"] == "sha-256"
        assert set(claims["credentialSubject"]) == {"_sd"}
    # The credential is the claims set itself: no "vc"/"vp" wrapper claim (VC-JOSE-COSE 3.1.1).
    assert "vc" not in claims
    assert "vp" not in claims
    assert claims["@context"][0] == VCDM_V2
    assert "VerifiableCredential" in claims["type"]
    assert claims["iss"] == claims["issuer"] == ISSUER_DID
    assert claims["id"] == issued["credential_id"]
    # Registered claims beside the credential are optional, but must not conflict with it (VC-JOSE-COSE).
    assert claims.get("jti", claims["id"]) == claims["id"]
    assert claims["id"].startswith("urn:uuid:")
    valid_from, valid_until = _xsd_seconds(claims["validFrom"]), _xsd_seconds(claims["validUntil"])
    assert valid_from <= int(time.time()) + 5
    assert valid_until > valid_from
    assert claims.get("iat", valid_from) == valid_from
    assert claims["exp"] == valid_until
    assert "nbf" not in claims
    assert claims["cnf"]["jwk"] == public_jwk_dict(holder_key)
    assert [s["statusPurpose"] for s in claims["credentialStatus"]] == ["revocation", "suspension"]
    assert claims["evidence"][0]["type"] == ["Evidence", "InPersonRealNameCheck"]
