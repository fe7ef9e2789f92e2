"""kernel.sdjwt / kernel.sdjwt_verify: RFC 9901 vectors, round trips, interop with the reference library, attacks."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from hypothesis import given, settings
from hypothesis import strategies as st
from jwcrypto.jwk import JWK
from sd_jwt.common import SDObj
from sd_jwt.holder import SDJWTHolder
from sd_jwt.issuer import SDJWTIssuer
from sd_jwt.verifier import SDJWTVerifier

from kernel.errors import MalformedInput, VerificationFailed
from kernel.jose import (
    MAX_JWS_CHARS,
    b64url_decode,
    b64url_encode,
    dump_json,
    public_jwk_dict,
    public_key_from_jwk,
    sign_jws,
)
from kernel.sdjwt import (
    MAX_NESTING,
    MAX_SD_JWT_CHARS,
    Disclosure,
    IssuedSdJwt,
    digest_of,
    issue_sd_jwt,
    make_disclosure,
    parse_disclosure,
    parse_sd_jwt,
    present,
    sd_hash,
)
from kernel.sdjwt_verify import VerifiedSdJwt, verify_sd_jwt

VECTORS = json.loads((Path(__file__).parents[1] / "vectors" / "rfc9901_sd_jwt.json").read_text("utf-8"))
TYP = "dc+sd-jwt"
AUD = "https://verifier.example"
NONCE = "n-0S6_WzA2Mj"
NOW = 1_750_000_000

CLAIMS = {
    "iss": "https://issuer.example",
    "iat": 1_700_000_000,
    "vct": "urn:imi:pid:1",
    "given_name": "Erika",
    "family_name": "Mustermann",
    "birthdate": "1964-08-12",
    "address": {"street_address": "Heidestraße 17", "locality": "Köln", "country": "DE"},
    "nationalities": ["DE", "FR"],
    "credentialSubject": {"name": "Erika", "degree": {"type": "BSc", "name": "Physics"}},
}
SD_PATHS = {
    ("given_name",),
    ("family_name",),
    ("birthdate",),
    ("address",),  # recursive: the address is disclosable, and so are its members
    ("address", "street_address"),
    ("address", "locality"),
    ("nationalities", 0),
    ("nationalities", 1),
    ("credentialSubject", "name"),  # structured: credentialSubject stays visible
    ("credentialSubject", "degree", "name"),
}


def counter_rng() -> Callable[[int], bytes]:
    state = {"n": 0}

    def rng(size: int) -> bytes:
        state["n"] += 1
        return hashlib.sha256(state["n"].to_bytes(8, "big")).digest()[:size]

    return rng


def _issuer() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


ISSUER = _issuer()
HOLDER = ec.generate_private_key(ec.SECP256R1())


def _issue(claims: dict[str, Any] | None = None, **kw: object) -> IssuedSdJwt:
    args: dict[str, Any] = {
        "sd_paths": SD_PATHS,
        "key": ISSUER,
        "typ": TYP,
        "holder_jwk": public_jwk_dict(HOLDER),
    }
    args.update(kw)
    return issue_sd_jwt(CLAIMS if claims is None else claims, **args)


def _present(serialized: str, disclose: object = (), key: object = HOLDER, **kw: object) -> str:
    args: dict[str, Any] = {"aud": AUD, "nonce": NONCE, "iat": NOW}
    args.update(kw)
    return present(serialized, disclose=disclose, holder_key=key, **args)  # type: ignore[arg-type]


def _verify(text: str, **kw: object) -> VerifiedSdJwt:
    args: dict[str, Any] = {
        "issuer_key": ISSUER.public_key(),
        "expected_typ": {TYP},
        "require_kb": True,
        "expected_aud": AUD,
        "expected_nonce": NONCE,
        "now": NOW,
    }
    args.update(kw)
    return verify_sd_jwt(text, **args)


def _fails(slug: str, text: str, **kw: object) -> None:
    with pytest.raises((MalformedInput, VerificationFailed)) as exc:
        _verify(text, **kw)
    assert exc.value.slug == slug, exc.value.detail


def _kb(sd_jwt: str, key: object = HOLDER, **claims: object) -> str:
    payload = {"iat": NOW, "aud": AUD, "nonce": NONCE, "sd_hash": sd_hash(sd_jwt), **claims}
    return sd_jwt + sign_jws(payload, key, typ="kb+jwt")  # type: ignore[arg-type]


# -------------------------------------------------------------------------------------- RFC 9901 vectors


@pytest.mark.parametrize("item", VECTORS["hashing_examples"]["items"] + VECTORS["disclosures"])
def test_rfc9901_disclosure_digests(item: dict[str, Any]) -> None:
    disclosure = parse_disclosure(item["disclosure"])
    assert disclosure.digest == item["sha256_hash"] == digest_of(item["disclosure"])
    contents = [
        disclosure.salt,
        *([disclosure.name] if disclosure.name is not None else []),
        disclosure.value,
    ]
    assert contents == item["contents"]


def test_rfc9901_presentation_with_key_binding_verifies() -> None:
    vector = VECTORS["presentation"]
    result = verify_sd_jwt(
        vector["sd_jwt_kb"],
        issuer_key=public_key_from_jwk(VECTORS["issuer_public_jwk"]),
        expected_typ={VECTORS["issuer_typ"]},
        require_kb=True,
        expected_aud=vector["kb_jwt_payload"]["aud"],
        expected_nonce=vector["kb_jwt_payload"]["nonce"],
        now=vector["kb_jwt_payload"]["iat"] + 60,
    )
    assert result.claims == vector["processed_payload"]
    assert result.kb_payload == vector["kb_jwt_payload"]
    assert result.issuer_payload == VECTORS["issuer_payload"]
    assert set(result.disclosed_paths) == {
        ("family_name",),
        ("address",),
        ("given_name",),
        ("nationalities", 0),
    }
    assert result.holder_jwk == VECTORS["issuer_payload"]["cnf"]["jwk"]
    assert parse_sd_jwt(vector["sd_jwt_kb"]).jwt == VECTORS["issuer_signed_jwt"]


def test_rfc9901_presentation_replayed_later_or_elsewhere_fails() -> None:
    vector = VECTORS["presentation"]
    kw = {
        "issuer_key": public_key_from_jwk(VECTORS["issuer_public_jwk"]),
        "expected_typ": {VECTORS["issuer_typ"]},
        "expected_aud": vector["kb_jwt_payload"]["aud"],
        "expected_nonce": vector["kb_jwt_payload"]["nonce"],
        "now": vector["kb_jwt_payload"]["iat"],
    }
    _fails("kb-stale", vector["sd_jwt_kb"], **{**kw, "now": kw["now"] + 3600})
    _fails("kb-nonce-mismatch", vector["sd_jwt_kb"], **{**kw, "expected_nonce": "other"})
    _fails("kb-audience-mismatch", vector["sd_jwt_kb"], **{**kw, "expected_aud": "https://evil.example"})


def test_rfc9901_issuance_with_all_disclosures() -> None:
    result = verify_sd_jwt(
        VECTORS["sd_jwt"],
        issuer_key=public_key_from_jwk(VECTORS["issuer_public_jwk"]),
        expected_typ="example+sd-jwt",
        require_kb=False,
        expected_aud=None,
        expected_nonce=None,
        now=0,  # iat/exp of the Issuer-signed JWT are the caller's business
    )
    assert result.kb_payload is None
    assert result.claims["nationalities"] == ["US", "DE"]
    assert result.claims["address"]["locality"] == "Anytown"
    assert result.claims["updated_at"] == 1570000000
    assert "_sd" not in result.claims
    assert "_sd_alg" not in result.claims
    assert len(result.disclosed_paths) == 10


def test_we_can_present_the_rfc9901_credential() -> None:
    # Holder side on the RFC's issuance: choose the same four claims as section 5.2 (KB key unknown: no KB).
    text = present(
        VECTORS["sd_jwt"],
        disclose={("given_name",), ("family_name",), ("address",), ("nationalities", 0)},
        holder_key=None,
    )
    expected = VECTORS["presentation"]["sd_jwt_kb"]
    assert sorted(text.split("~")) == sorted(expected[: expected.rindex("~") + 1].split("~"))


# ---------------------------------------------------------------------------------------- disclosures


def test_make_disclosure_formats() -> None:
    rng = counter_rng()
    prop = make_disclosure("given_name", "Möbius", rng=rng)
    assert prop.salt == b64url_encode(counter_rng()(16))
    assert json.loads(b64url_decode(prop.encoded)) == [prop.salt, "given_name", "Möbius"]
    assert prop.digest == b64url_encode(hashlib.sha256(prop.encoded.encode()).digest())
    assert parse_disclosure(prop.encoded) == prop
    element = make_disclosure(None, {"a": [1]}, rng=rng)
    assert json.loads(b64url_decode(element.encoded)) == [element.salt, {"a": [1]}]
    assert parse_disclosure(element.encoded).name is None
    for name in ("_sd", "...", "_sd_alg"):
        with pytest.raises(ValueError, match="disclosable"):
            make_disclosure(name, 1)


@pytest.mark.parametrize(
    ("contents", "slug"),
    [
        (b'["salt"]', "disclosure-malformed"),
        (b'["salt", "a", 1, 2]', "disclosure-malformed"),
        (b'[1, "a", 1]', "disclosure-malformed"),
        (b'["salt", 5, 1]', "disclosure-malformed"),
        (b'{"salt": 1}', "disclosure-malformed"),
        (b'["salt", "_sd", 1]', "disclosure-name-forbidden"),
        (b'["salt", "...", 1]', "disclosure-name-forbidden"),
        (b'["salt", "_sd_alg", "sha-256"]', "disclosure-name-forbidden"),
    ],
)
def test_parse_disclosure_is_strict(contents: bytes, slug: str) -> None:
    with pytest.raises((MalformedInput, VerificationFailed)) as exc:
        parse_disclosure(b64url_encode(contents))
    assert exc.value.slug == slug


# -------------------------------------------------------------------------------------------- issuance


def test_issued_payload_shape() -> None:
    issued = _issue(decoys=3)
    payload = issued.payload
    assert payload["_sd_alg"] == "sha-256"
    assert payload["cnf"] == {"jwk": public_jwk_dict(HOLDER)}
    assert {"given_name", "family_name", "birthdate", "address"}.isdisjoint(payload)
    assert payload["_sd"] == sorted(payload["_sd"])
    assert len(payload["_sd"]) == 4 + 3  # four disclosable top-level claims, three decoys
    assert all(set(e) == {"..."} for e in payload["nationalities"])
    assert "name" not in payload["credentialSubject"]  # structured: parent visible, member hidden
    assert payload["credentialSubject"]["degree"]["type"] == "BSc"
    assert len(issued.disclosures) == len(SD_PATHS)
    assert issued.serialize() == "~".join([issued.jwt, *(d.encoded for d in issued.disclosures)]) + "~"
    address = next(d for d in issued.disclosures if d.name == "address")
    assert set(address.value) == {"country", "_sd"}  # recursive: inner members hidden inside the disclosure


def test_issuance_is_reproducible_with_the_same_rng_and_an_ed25519_key() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    first = issue_sd_jwt(CLAIMS, sd_paths=SD_PATHS, key=key, typ=TYP, rng=counter_rng())
    second = issue_sd_jwt(CLAIMS, sd_paths=SD_PATHS, key=key, typ=TYP, rng=counter_rng())
    assert first.serialize() == second.serialize()
    assert issue_sd_jwt(CLAIMS, sd_paths=SD_PATHS, key=key, typ=TYP).serialize() != first.serialize()


def test_issuance_refuses_bad_input() -> None:
    with pytest.raises(ValueError, match="name no claim"):
        _issue(sd_paths={("nope",)})
    with pytest.raises(ValueError, match="name no claim"):
        _issue(sd_paths={("nationalities", 5)})
    with pytest.raises(ValueError, match="reserved"):
        _issue({"a": {"_sd": []}})
    with pytest.raises(ValueError, match="cnf"):
        _issue({"cnf": {}})
    with pytest.raises(ValueError, match="itself"):
        _issue(sd_paths={()})


# ------------------------------------------------------------------------------------ present + verify


def test_full_round_trip_restores_every_claim() -> None:
    issued = _issue()
    result = _verify(_present(issued.serialize(), disclose=lambda path: True))
    assert {k: v for k, v in result.claims.items() if k != "cnf"} == CLAIMS
    assert set(result.disclosed_paths) == SD_PATHS
    assert result.holder_jwk == public_jwk_dict(HOLDER)
    assert result.kb_payload is not None
    assert result.kb_payload["aud"] == AUD


def test_selecting_a_nested_claim_brings_its_parents() -> None:
    issued = _issue()
    result = _verify(_present(issued.serialize(), disclose={("address", "locality"), ("nationalities", 1)}))
    assert result.claims["address"] == {"locality": "Köln", "country": "DE"}
    assert result.claims["nationalities"] == ["FR"]
    assert "given_name" not in result.claims
    assert set(result.disclosed_paths) == {("address",), ("address", "locality"), ("nationalities", 1)}


def test_selecting_a_claim_discloses_everything_beneath_it() -> None:
    result = _verify(_present(_issue().serialize(), disclose={("address",), ("credentialSubject",)}))
    assert result.claims["address"] == CLAIMS["address"]
    assert result.claims["credentialSubject"] == CLAIMS["credentialSubject"]


def test_nothing_disclosed_leaves_the_visible_claims() -> None:
    result = _verify(_present(_issue().serialize(), disclose=()))
    assert result.disclosed_paths == ()
    assert result.claims["nationalities"] == []
    assert result.claims["credentialSubject"] == {"degree": {"type": "BSc"}}
    assert "address" not in result.claims


def test_presentation_without_key_binding() -> None:
    text = present(_issue().serialize(), disclose={("given_name",)}, holder_key=None)
    assert text.endswith("~")
    result = _verify(text, require_kb=False, expected_aud=None, expected_nonce=None)
    assert result.claims["given_name"] == "Erika"
    assert result.kb_payload is None


def test_present_checks_its_arguments() -> None:
    issued = _issue().serialize()
    with pytest.raises(ValueError, match="cnf"):
        _present(issued, key=ec.generate_private_key(ec.SECP256R1()))
    with pytest.raises(ValueError, match="aud"):
        present(issued, disclose=(), holder_key=HOLDER, aud=AUD, nonce=None, iat=NOW)
    with pytest.raises(MalformedInput):
        _present(_present(issued))  # a presentation is not an issuance
    with pytest.raises(ValueError, match="expected_aud"):
        _verify(_present(issued), expected_aud=None)


def test_unrequired_key_binding_is_still_verified() -> None:
    text = _present(_issue().serialize(), disclose={("given_name",)})
    assert _verify(text, require_kb=False, expected_aud=None, expected_nonce=None).kb_payload is not None
    _fails("kb-stale", text, require_kb=False, expected_aud=None, expected_nonce=None, now=NOW + 10_000)


def test_iat_window_is_inclusive_and_symmetric() -> None:
    text = _present(_issue().serialize())
    _verify(text, now=NOW + 300)
    _verify(text, now=NOW - 300)
    _fails("kb-stale", text, now=NOW + 301)
    _fails("kb-stale", text, now=NOW - 301)  # issued "in the future"
    _verify(text, now=NOW + 3000, iat_window=3000)


# ------------------------------------------------------------------------------------- interop (sd_jwt)


def _jwcrypto(key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey) -> JWK:
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return JWK.from_pem(pem)


@pytest.mark.parametrize("issuer", [_issuer(), ed25519.Ed25519PrivateKey.generate()], ids=["ES256", "EdDSA"])
def test_reference_verifier_accepts_our_issuance_and_presentation(
    issuer: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey,
) -> None:
    issued = issue_sd_jwt(CLAIMS, sd_paths=SD_PATHS, key=issuer, typ=TYP, holder_jwk=public_jwk_dict(HOLDER))
    now = int(time.time())
    text = _present(
        issued.serialize(), disclose={("address", "locality"), ("nationalities", 0), ("given_name",)}, iat=now
    )
    issuer_jwk = JWK(**public_jwk_dict(issuer))
    reference = SDJWTVerifier(text, lambda iss, header: issuer_jwk, expected_aud=AUD, expected_nonce=NONCE)
    ours = _verify(text, issuer_key=issuer.public_key(), now=now)
    assert reference.get_verified_payload() == ours.claims
    assert ours.claims["address"] == {"locality": "Köln", "country": "DE"}


def test_we_accept_the_reference_issuer_and_holder() -> None:
    user_claims = {
        "iss": "https://issuer.example",
        SDObj("given_name"): "Erika",
        SDObj("family_name"): "Mustermann",
        SDObj("address"): {SDObj("locality"): "Köln", "country": "DE"},
        "nationalities": [SDObj("DE"), SDObj("FR"), "IT"],
    }
    reference_issuer = SDJWTIssuer(
        user_claims,
        _jwcrypto(ISSUER),
        holder_key=_jwcrypto(HOLDER),
        add_decoy_claims=True,
        extra_header_parameters={"typ": TYP},
    )
    holder = SDJWTHolder(reference_issuer.sd_jwt_issuance)
    holder.create_presentation(
        {"given_name": True, "address": {"locality": True}, "nationalities": [False, True]},
        nonce=NONCE,
        aud=AUD,
        holder_key=_jwcrypto(HOLDER),
        sign_alg="ES256",
    )
    result = _verify(holder.sd_jwt_presentation, now=int(time.time()))
    assert result.claims["given_name"] == "Erika"
    assert result.claims["address"] == {"locality": "Köln", "country": "DE"}
    assert result.claims["nationalities"] == ["FR", "IT"]
    assert "family_name" not in result.claims
    assert set(result.disclosed_paths) == {
        ("given_name",),
        ("address",),
        ("address", "locality"),
        ("nationalities", 1),
    }
    # and our holder on the reference issuance
    ours = _verify(_present(reference_issuer.sd_jwt_issuance, disclose={("family_name",)}))
    assert ours.claims["family_name"] == "Mustermann"
    assert "given_name" not in ours.claims


# ---------------------------------------------------------------------------------------------- attacks


def _unsigned(header: dict[str, Any], payload: dict[str, Any], signature: bytes = b"") -> str:
    return ".".join(
        [b64url_encode(dump_json(header)), b64url_encode(dump_json(payload)), b64url_encode(signature)]
    )


def _crafted(payload: dict[str, Any], disclosures: list[Disclosure], *, kb: bool = True) -> str:
    """An SD-JWT whose issuer-signed payload is exactly ``payload`` (a misbehaving but genuine issuer)."""
    sd_jwt = "~".join([sign_jws(payload, ISSUER, typ=TYP), *(d.encoded for d in disclosures)]) + "~"
    return _kb(sd_jwt) if kb else sd_jwt


def _holder_cnf() -> dict[str, Any]:
    return {"jwk": public_jwk_dict(HOLDER)}


def test_issuer_jwt_with_alg_none_is_refused() -> None:
    payload = {**_issue().payload}
    text = _kb(_unsigned({"alg": "none", "typ": TYP}, payload) + "~")
    _fails("alg-not-allowed", text)


def test_issuer_jwt_hs256_keyed_with_the_public_key_is_refused() -> None:
    pem = ISSUER.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = b64url_encode(dump_json({"alg": "HS256", "typ": TYP}))
    body = b64url_encode(dump_json(_issue().payload))
    mac = hmac.new(pem, f"{header}.{body}".encode(), hashlib.sha256).digest()
    _fails("alg-not-allowed", _kb(f"{header}.{body}.{b64url_encode(mac)}~"))


def test_wrong_issuer_key() -> None:
    _fails("signature-invalid", _present(_issue().serialize()), issuer_key=_issuer().public_key())


def test_wrong_issuer_typ() -> None:
    _fails("typ-mismatch", _present(_issue(typ="vc+sd-jwt").serialize()))


def test_tampered_disclosure_is_unreferenced() -> None:
    issued = _issue()
    original = next(d for d in issued.disclosures if d.name == "given_name")
    forged = b64url_encode(dump_json([original.salt, "given_name", "Mallory"]))
    sd_jwt = f"{issued.jwt}~{forged}~"
    _fails("disclosure-unreferenced", _kb(sd_jwt))


def test_duplicated_disclosure() -> None:
    issued = _issue()
    given = next(d for d in issued.disclosures if d.name == "given_name")
    _fails("disclosure-duplicate", _kb(f"{issued.jwt}~{given.encoded}~{given.encoded}~"))


def test_unreferenced_disclosure() -> None:
    issued = _issue()
    stray = make_disclosure("role", "admin")
    _fails("disclosure-unreferenced", _kb(f"{issued.jwt}~{stray.encoded}~"))


def test_digest_used_twice_in_the_payload() -> None:
    d = make_disclosure("a", 1)
    _fails(
        "disclosure-duplicate",
        _crafted({"_sd": [d.digest], "x": {"_sd": [d.digest]}, "cnf": _holder_cnf()}, [d]),
    )
    decoy = b64url_encode(hashlib.sha256(b"decoy").digest())
    _fails("disclosure-duplicate", _crafted({"_sd": [decoy, decoy], "cnf": _holder_cnf()}, []))


def test_disclosed_name_collides_with_a_visible_claim() -> None:
    d = make_disclosure("given_name", "Mallory")
    _fails(
        "claim-name-collision",
        _crafted({"given_name": "Erika", "_sd": [d.digest], "cnf": _holder_cnf()}, [d]),
    )
    e = make_disclosure("given_name", "Eve")
    _fails("claim-name-collision", _crafted({"_sd": [d.digest, e.digest], "cnf": _holder_cnf()}, [d, e]))


def test_disclosure_kind_must_match_its_place() -> None:
    element = make_disclosure(None, "DE")
    _fails("disclosure-format-mismatch", _crafted({"_sd": [element.digest], "cnf": _holder_cnf()}, [element]))
    prop = make_disclosure("nat", "DE")
    _fails(
        "disclosure-format-mismatch", _crafted({"n": [{"...": prop.digest}], "cnf": _holder_cnf()}, [prop])
    )


def test_reserved_name_in_a_disclosure() -> None:
    issued = _issue()
    bad = b64url_encode(dump_json(["salt", "_sd", ["x"]]))
    _fails("disclosure-name-forbidden", _kb(f"{issued.jwt}~{bad}~"))


@pytest.mark.parametrize("alg", ["sha-512", "SHA-256", 256])
def test_only_sha256(alg: object) -> None:
    _fails("sd-alg-unsupported", _crafted({"_sd_alg": alg, "cnf": _holder_cnf()}, []))


def test_sd_alg_only_at_the_top() -> None:
    _fails("sd-alg-misplaced", _crafted({"x": {"_sd_alg": "sha-256"}, "cnf": _holder_cnf()}, []))


def test_malformed_digest_containers() -> None:
    _fails("sd-jwt-malformed", _crafted({"_sd": "abc", "cnf": _holder_cnf()}, []))
    _fails("sd-jwt-malformed", _crafted({"_sd": [1], "cnf": _holder_cnf()}, []))
    _fails("sd-jwt-malformed", _crafted({"n": [{"...": 1}], "cnf": _holder_cnf()}, []))


def test_disclosures_nested_too_deep() -> None:
    inner: list[Disclosure] = []
    value: object = 1
    for _ in range(MAX_NESTING + 2):
        d = make_disclosure("x", value)
        inner.append(d)
        value = {"_sd": [d.digest]}
    _fails("sd-jwt-too-deep", _crafted({**value, "cnf": _holder_cnf()}, inner))  # type: ignore[dict-item]


def test_missing_key_binding() -> None:
    _fails("kb-missing", present(_issue().serialize(), disclose=(), holder_key=None))


def test_key_binding_by_another_key() -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    sd_jwt = present(_issue().serialize(), disclose={("given_name",)}, holder_key=None)
    _fails("kb-signature-invalid", _kb(sd_jwt, key=other))
    _fails("kb-alg-key-mismatch", _kb(sd_jwt, key=ed25519.Ed25519PrivateKey.generate()))


def test_key_binding_alg_none_and_wrong_typ() -> None:
    sd_jwt = present(_issue().serialize(), disclose=(), holder_key=None)
    kb_claims = {"iat": NOW, "aud": AUD, "nonce": NONCE, "sd_hash": sd_hash(sd_jwt)}
    _fails("kb-alg-not-allowed", sd_jwt + _unsigned({"alg": "none", "typ": "kb+jwt"}, kb_claims))
    _fails("kb-typ-mismatch", sd_jwt + sign_jws(kb_claims, HOLDER, typ="jwt"))


def test_key_binding_without_a_holder_key() -> None:
    issued = issue_sd_jwt(CLAIMS, sd_paths=SD_PATHS, key=ISSUER, typ=TYP)
    _fails("kb-holder-key-missing", _kb(present(issued.serialize(), disclose=(), holder_key=None)))


def test_wrong_nonce_and_audience() -> None:
    text = _present(_issue().serialize())
    _fails("kb-nonce-mismatch", text, expected_nonce="another-nonce")
    _fails("kb-audience-mismatch", text, expected_aud="https://evil.example")
    sd_jwt = present(_issue().serialize(), disclose=(), holder_key=None)
    _fails("kb-claims-invalid", _kb(sd_jwt, aud=[AUD]))  # one audience, a string, nothing else
    _fails("kb-claims-invalid", _kb(sd_jwt, iat="1750000000"))
    _fails("kb-claims-invalid", _kb(sd_jwt, nonce=None))


def test_stale_key_binding() -> None:
    _fails("kb-stale", _present(_issue().serialize(), iat=NOW - 301))


def test_sd_hash_mismatch() -> None:
    issued = _issue()
    text = _present(issued.serialize(), disclose={("given_name",), ("family_name",)})
    parts = text.split("~")
    _fails("kb-sd-hash-mismatch", "~".join([parts[0], parts[1], parts[-1]]))  # a disclosure dropped
    extra = next(d for d in issued.disclosures if d.name == "birthdate").encoded
    _fails("kb-sd-hash-mismatch", "~".join([*parts[:-1], extra, parts[-1]]))  # a disclosure added


def test_oversized_input() -> None:
    text = _present(_issue().serialize())
    _fails("too-large", text + "A" * MAX_SD_JWT_CHARS)
    with pytest.raises(MalformedInput) as exc:
        parse_sd_jwt("~" * (MAX_JWS_CHARS * 2))
    assert exc.value.slug == "too-large"


@pytest.mark.parametrize(
    ("text", "slug"),
    [
        ("", "sd-jwt-malformed"),
        ("garbage", "sd-jwt-malformed"),
        ("garbage~", "jws-malformed"),
        ("a.b.c~~", "sd-jwt-malformed"),
        ("é~", "sd-jwt-malformed"),
        ("~", "sd-jwt-malformed"),
        ("~~~", "sd-jwt-malformed"),
    ],
)
def test_garbage(text: str, slug: str) -> None:
    _fails(slug, text)


def test_garbage_disclosure_and_kb() -> None:
    jwt = _issue().jwt
    _fails("disclosure-malformed", f"{jwt}~not*base64~")
    _fails("disclosure-malformed", f"{jwt}~{b64url_encode(b'not json')}~")
    _fails("kb-jws-malformed", f"{jwt}~kb.jwt")


# ------------------------------------------------------------------------------------------- hypothesis

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=10,
)
_SEGMENT = st.builds(lambda v: b64url_encode(json.dumps(v).encode()), _JSON) | st.text(max_size=12)
_VALID = _issue().jwt


@settings(max_examples=400, deadline=None)
@given(
    st.text(max_size=400)
    | st.lists(_SEGMENT, max_size=5).map("~".join)
    | st.lists(_SEGMENT, max_size=4).map(lambda parts: "~".join([_VALID, *parts]))
)
def test_parsers_raise_only_imi_input_errors(text: str) -> None:
    for call in (
        lambda: parse_sd_jwt(text),
        lambda: parse_disclosure(text),
        lambda: _verify(text),
        lambda: _verify(text, require_kb=False, expected_aud=None, expected_nonce=None),
    ):
        with contextlib.suppress(MalformedInput, VerificationFailed):
            call()


_CLAIM_NAME = st.text(alphabet="abcdefgh_", min_size=1, max_size=4).filter(lambda s: s not in {"_sd", "cnf"})
_CLAIMS = st.dictionaries(
    _CLAIM_NAME,
    st.recursive(
        st.integers() | st.text(max_size=4) | st.booleans(),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_CLAIM_NAME, inner, max_size=3),
        max_leaves=8,
    ),
    max_size=5,
)


def _all_paths(node: object, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    children: Iterable[tuple[Any, object]]
    if isinstance(node, dict):
        children = node.items()
    elif isinstance(node, list):
        children = enumerate(node)
    else:
        return []
    out: list[tuple[Any, ...]] = []
    for key, child in children:
        out.append((*path, key))
        out.extend(_all_paths(child, (*path, key)))
    return out


@settings(max_examples=100, deadline=None)
@given(_CLAIMS, st.data())
def test_any_selection_round_trips(claims: dict[str, Any], data: st.DataObject) -> None:
    paths = _all_paths(claims)
    sd_paths = data.draw(st.sets(st.sampled_from(paths)) if paths else st.just(set()))
    issued = issue_sd_jwt(claims, sd_paths=sd_paths, key=ISSUER, typ=TYP, holder_jwk=public_jwk_dict(HOLDER))
    everything = _verify(_present(issued.serialize(), disclose=lambda p: True))
    assert {k: v for k, v in everything.claims.items() if k != "cnf"} == claims
    assert set(everything.disclosed_paths) == sd_paths
    chosen = data.draw(st.sets(st.sampled_from(sorted(sd_paths, key=str))) if sd_paths else st.just(set()))
    partial = _verify(_present(issued.serialize(), disclose=lambda p: p in chosen))
    assert chosen <= set(partial.disclosed_paths) <= sd_paths


def test_present_survives_a_digest_referenced_twice() -> None:
    leaf = make_disclosure("leaf", 1)
    twice = make_disclosure("twice", {"_sd": [leaf.digest]})
    payload = {"_sd": [twice.digest], "again": {"_sd": [twice.digest]}, "cnf": _holder_cnf()}
    issued = _crafted(payload, [twice, leaf], kb=False)
    text = _present(issued, disclose=lambda path: True)
    _fails("disclosure-duplicate", text)
