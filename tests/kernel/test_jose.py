"""kernel.jose: compact JWS with the ES256/EdDSA allow-list, strict parsing, JWK helpers."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from hypothesis import given, settings
from hypothesis import strategies as st
from joserfc import jws as joserfc_jws
from joserfc.jwk import ECKey, OKPKey
from jwcrypto import jwk as jwcrypto_jwk

from kernel.errors import ImiError, MalformedInput, VerificationFailed
from kernel.jose import (
    ALLOWED_ALGS,
    MAX_JWS_CHARS,
    PrivateKey,
    alg_for_key,
    b64url_decode,
    b64url_encode,
    decode_jws_unverified,
    dump_json,
    jwk_thumbprint,
    public_jwk_dict,
    public_key_from_jwk,
    sign_jws,
    verify_jws,
)

VECTORS = json.loads((Path(__file__).parents[1] / "vectors" / "jose_rfc_vectors.json").read_text("utf-8"))


def _es256() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _ed25519() -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()


KEYS: dict[str, Callable[[], PrivateKey]] = {"ES256": _es256, "EdDSA": _ed25519}


def _raw_token(header: dict[str, Any], payload: dict[str, Any], signature: bytes = b"") -> str:
    return ".".join(
        [b64url_encode(dump_json(header)), b64url_encode(dump_json(payload)), b64url_encode(signature)]
    )


def _slug(exc_info: pytest.ExceptionInfo[ImiError]) -> str:
    return exc_info.value.slug


# ------------------------------------------------------------------------------------------- base64url


def test_b64url_round_trip_without_padding() -> None:
    for size in range(0, 40):
        data = bytes(range(size))
        text = b64url_encode(data)
        assert "=" not in text
        assert b64url_decode(text) == data


@pytest.mark.parametrize("text", ["YQ==", "YQ=", "Y", "a+b/", "YR", "ab c", "é", "YW\n"])
def test_b64url_decode_refuses_anything_but_the_canonical_spelling(text: str) -> None:
    with pytest.raises(MalformedInput) as exc:
        b64url_decode(text, slug="x-malformed")
    assert exc.value.slug == "x-malformed"


# ----------------------------------------------------------------------------------------- sign/verify


@pytest.mark.parametrize("alg", sorted(ALLOWED_ALGS))
def test_sign_verify_round_trip(alg: str) -> None:
    key = KEYS[alg]()
    token = sign_jws({"sub": "ü", "n": 1}, key, typ="example+jwt", kid="k1", extra_headers={"x5t": "abc"})
    decoded = verify_jws(token, key.public_key(), expected_typ="example+jwt")
    assert decoded.header == {"alg": alg, "typ": "example+jwt", "kid": "k1", "x5t": "abc"}
    assert decoded.payload == {"sub": "ü", "n": 1}
    assert decoded.compact == token
    assert len(decoded.signature) == 64  # ES256 raw r||s (RFC 7518 3.4), Ed25519 is 64 bytes too
    assert b64url_decode(token.split(".")[1]) == '{"sub":"ü","n":1}'.encode()  # compact JSON
    assert verify_jws(token, key, expected_typ=None).payload == decoded.payload  # private key also verifies


def test_bytes_payload_is_signed_as_given() -> None:
    key = _ed25519()
    token = sign_jws(b'{ "a" : 1 }', key, typ="jwt")
    assert b64url_decode(token.split(".")[1]) == b'{ "a" : 1 }'
    assert verify_jws(token, key.public_key(), expected_typ="jwt").payload == {"a": 1}


def test_typ_is_compared_case_insensitively_and_without_application_prefix() -> None:
    key = _es256()
    token = sign_jws({}, key, typ="application/KB+JWT")
    verify_jws(token, key.public_key(), expected_typ="kb+jwt")
    verify_jws(token, key.public_key(), expected_typ={"dc+sd-jwt", "kb+jwt"})
    with pytest.raises(VerificationFailed) as exc:
        verify_jws(token, key.public_key(), expected_typ={"dc+sd-jwt"})
    assert exc.value.slug == "typ-mismatch"


def test_missing_typ_fails_when_one_is_expected() -> None:
    key = _es256()
    r, s = 1, 1
    token = _raw_token({"alg": "ES256"}, {}, r.to_bytes(32, "big") + s.to_bytes(32, "big"))
    with pytest.raises(VerificationFailed) as exc:
        verify_jws(token, key.public_key(), expected_typ="jwt")
    assert exc.value.slug == "typ-mismatch"


def test_sign_refuses_reserved_extra_headers_and_public_keys() -> None:
    key = _es256()
    for name in ("alg", "typ", "kid", "crit", "b64"):
        with pytest.raises(ValueError, match=name):
            sign_jws({}, key, typ="jwt", extra_headers={name: "x"})
    with pytest.raises(TypeError):
        sign_jws({}, key.public_key(), typ="jwt")  # type: ignore[arg-type]


def test_alg_for_key() -> None:
    assert alg_for_key(_es256()) == "ES256"
    assert alg_for_key(_es256().public_key()) == "ES256"
    assert alg_for_key(_ed25519()) == "EdDSA"
    with pytest.raises(VerificationFailed) as exc:
        alg_for_key(ec.generate_private_key(ec.SECP384R1()))
    assert exc.value.slug == "key-unsupported"
    with pytest.raises(VerificationFailed) as exc:
        alg_for_key(b"secret")  # type: ignore[arg-type]
    assert exc.value.slug == "key-unsupported"


# ------------------------------------------------------------------------------------------- RFC vectors


def test_rfc7515_a3_es256_vector_verifies() -> None:
    vector = VECTORS["rfc7515_a3_es256"]
    key = public_key_from_jwk(vector["public_jwk"])
    decoded = verify_jws(vector["jws"], key, expected_typ=None)
    assert decoded.payload == vector["payload"]
    assert decoded.header == {"alg": "ES256"}
    tampered = vector["jws"][:-2] + ("A" if vector["jws"][-2] != "A" else "B") + vector["jws"][-1]
    with pytest.raises((VerificationFailed, MalformedInput)):
        verify_jws(tampered, key, expected_typ=None)


def test_rfc8037_thumbprint_vector() -> None:
    vector = VECTORS["rfc8037_a3_thumbprint"]
    assert jwk_thumbprint(vector["public_jwk"]) == vector["thumbprint"]
    key = public_key_from_jwk(vector["public_jwk"])
    assert jwk_thumbprint(key) == vector["thumbprint"]
    assert public_jwk_dict(key) == vector["public_jwk"]


@pytest.mark.parametrize("alg", sorted(ALLOWED_ALGS))
def test_thumbprint_matches_jwcrypto_and_ignores_extra_members(alg: str) -> None:
    key = KEYS[alg]()
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert jwk_thumbprint(key) == jwcrypto_jwk.JWK.from_pem(pem).thumbprint()
    assert jwk_thumbprint({**public_jwk_dict(key), "kid": "x", "use": "sig"}) == jwk_thumbprint(key)


# -------------------------------------------------------------------------------------------- interop


def test_joserfc_verifies_our_es256() -> None:
    key = _es256()
    token = sign_jws({"iss": "imi"}, key, typ="jwt")
    jwk: dict[str, str | list[str]] = dict(public_jwk_dict(key))
    obj = joserfc_jws.deserialize_compact(token, ECKey.import_key(jwk), algorithms=["ES256"])
    assert json.loads(obj.payload) == {"iss": "imi"}


def test_joserfc_verifies_our_eddsa() -> None:
    key = _ed25519()
    token = sign_jws({"iss": "imi"}, key, typ="jwt")
    jwk: dict[str, str | list[str]] = dict(public_jwk_dict(key))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # joserfc flags "EdDSA" as superseded by RFC 9864's "Ed25519"
        obj = joserfc_jws.deserialize_compact(token, OKPKey.import_key(jwk), algorithms=["EdDSA"])
    assert json.loads(obj.payload) == {"iss": "imi"}


def test_we_verify_joserfc_es256() -> None:
    key = ECKey.generate_key("P-256")
    token = joserfc_jws.serialize_compact({"alg": "ES256", "typ": "jwt"}, b'{"a":1}', key)
    public = public_key_from_jwk(key.as_dict(private=False))
    assert verify_jws(token, public, expected_typ="jwt").payload == {"a": 1}


# -------------------------------------------------------------------------------------------- attacks


def test_alg_none_is_refused() -> None:
    key = _es256()
    for alg in ("none", "None", "NONE"):
        with pytest.raises(VerificationFailed) as exc:
            verify_jws(
                _raw_token({"alg": alg, "typ": "jwt"}, {"sub": "x"}), key.public_key(), expected_typ="jwt"
            )
        assert exc.value.slug == "alg-not-allowed"


def test_hs256_keyed_with_the_public_key_bytes_is_refused() -> None:
    key = _es256()
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = b64url_encode(dump_json({"alg": "HS256", "typ": "jwt"}))
    payload = b64url_encode(dump_json({"sub": "admin"}))
    mac = hmac.new(pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    token = f"{header}.{payload}.{b64url_encode(mac)}"
    for verifier_key in (key.public_key(), pem):  # even if someone passes the bytes as the "key"
        with pytest.raises(VerificationFailed) as exc:
            verify_jws(token, verifier_key, expected_typ="jwt")  # type: ignore[arg-type]
        assert exc.value.slug == "alg-not-allowed"


@pytest.mark.parametrize("alg", ["RS256", "PS256", "ES384", "ES256K", "Ed25519", "HS512", 7, None])
def test_other_algorithms_are_refused(alg: object) -> None:
    header = {"typ": "jwt"} if alg is None else {"alg": alg, "typ": "jwt"}
    with pytest.raises(VerificationFailed) as exc:
        verify_jws(_raw_token(header, {}, b"\x00" * 64), _es256().public_key(), expected_typ="jwt")
    assert exc.value.slug == "alg-not-allowed"


def test_wrong_key_fails_signature() -> None:
    token = sign_jws({"a": 1}, _es256(), typ="jwt")
    with pytest.raises(VerificationFailed) as exc:
        verify_jws(token, _es256().public_key(), expected_typ="jwt")
    assert exc.value.slug == "signature-invalid"


def test_alg_must_match_the_key_type() -> None:
    token = sign_jws({"a": 1}, _es256(), typ="jwt")
    with pytest.raises(VerificationFailed) as exc:
        verify_jws(token, _ed25519().public_key(), expected_typ="jwt")
    assert exc.value.slug == "alg-key-mismatch"


def test_tampered_payload_fails_signature() -> None:
    key = _ed25519()
    header, _, signature = sign_jws({"role": "user"}, key, typ="jwt").split(".")
    forged = f"{header}.{b64url_encode(dump_json({'role': 'admin'}))}.{signature}"
    with pytest.raises(VerificationFailed) as exc:
        verify_jws(forged, key.public_key(), expected_typ="jwt")
    assert exc.value.slug == "signature-invalid"


def test_der_encoded_es256_signature_is_refused() -> None:
    key = _es256()
    header = b64url_encode(dump_json({"alg": "ES256", "typ": "jwt"}))
    payload = b64url_encode(dump_json({}))
    der = key.sign(f"{header}.{payload}".encode(), ec.ECDSA(hashes.SHA256()))
    with pytest.raises(VerificationFailed) as exc:
        verify_jws(f"{header}.{payload}.{b64url_encode(der)}", key.public_key(), expected_typ="jwt")
    assert exc.value.slug == "signature-invalid"


@pytest.mark.parametrize("extra", [{"crit": ["exp"], "exp": 1}, {"crit": []}, {"b64": False}])
def test_crit_and_b64_are_refused(extra: dict[str, Any]) -> None:
    key = _es256()
    token = _raw_token({"alg": "ES256", "typ": "jwt", **extra}, {}, b"\x01" * 64)
    with pytest.raises(VerificationFailed) as exc:
        verify_jws(token, key.public_key(), expected_typ="jwt")
    assert exc.value.slug == "crit-unsupported"


def test_oversized_token_is_refused_before_parsing() -> None:
    with pytest.raises(MalformedInput) as exc:
        decode_jws_unverified("a" * (MAX_JWS_CHARS + 1))
    assert exc.value.slug == "too-large"
    with pytest.raises(ValueError, match="exceed"):
        sign_jws({"blob": "x" * MAX_JWS_CHARS}, _es256(), typ="jwt")


def _parts(header: bytes, payload: bytes, signature: str = "") -> str:
    return f"{b64url_encode(header)}.{b64url_encode(payload)}.{signature}"


@pytest.mark.parametrize(
    "token",
    [
        "",
        "garbage",
        "a.b",
        "a.b.c.d",
        "....",
        "eyJhbGciOiJFUzI1NiJ9..",  # empty payload is not a JSON object
        _parts(b"[1]", b"{}"),
        _parts(b"{}", b"null"),
        _parts(b"{", b"{}"),
        _parts(b"{}", b"{}", "AAA="),
        _parts(b"{}", b"{}", "\u00e9"),
        b64url_encode(b'{"alg":"ES256"}') + "==." + b64url_encode(b"{}") + ".",
        _parts(b'{"a":1,"a":2}', b"{}"),  # duplicate member name
        _parts(b"{}", b'{"n":NaN}'),
        _parts(b"{}", b'{"n":1e999}'),
        _parts(b"{}", b"\xff\xfe{}"),  # not UTF-8
        _parts(b"{}", b'{"a":' * 70 + b"1" + b"}" * 70),  # nested too deep
        _parts(b"{}", b"[" * 30000 + b"]" * 30000),  # deeper than the parser's recursion
    ],
)
def test_garbage_is_malformed(token: str) -> None:
    with pytest.raises(MalformedInput) as exc:
        verify_jws(token, _es256().public_key(), expected_typ=None)
    assert exc.value.slug in {"jws-malformed", "too-large"}


# --------------------------------------------------------------------------------------------- JWKs


@pytest.mark.parametrize(
    ("jwk", "slug"),
    [
        ({"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}, "jwk-invalid"),
        (
            {"kty": "EC", "crv": "P-256", "x": b64url_encode(b"\x01" * 32), "y": b64url_encode(b"\x02" * 32)},
            "jwk-invalid",
        ),
        ({"kty": "OKP", "crv": "Ed25519"}, "jwk-invalid"),
        ({"kty": "OKP", "crv": "Ed25519", "x": b64url_encode(b"\x00" * 32), "d": "AA"}, "jwk-invalid"),
        ({"kty": "RSA", "n": "AQAB", "e": "AQAB"}, "key-unsupported"),
        ({"kty": "oct", "k": "c2VjcmV0"}, "key-unsupported"),
        ({"kty": "EC", "crv": "P-384", "x": "AA", "y": "AA"}, "key-unsupported"),
        ({"kty": "OKP", "crv": "X25519", "x": b64url_encode(b"\x09" * 32)}, "key-unsupported"),
    ],
)
def test_public_key_from_jwk_is_strict(jwk: dict[str, Any], slug: str) -> None:
    with pytest.raises((MalformedInput, VerificationFailed)) as exc:
        public_key_from_jwk(jwk)
    assert _slug(exc) == slug


@pytest.mark.parametrize("alg", sorted(ALLOWED_ALGS))
def test_public_jwk_round_trip(alg: str) -> None:
    key = KEYS[alg]()
    jwk = public_jwk_dict(key)
    assert "d" not in jwk
    assert public_jwk_dict(public_key_from_jwk(jwk)) == jwk


# ------------------------------------------------------------------------------------------ hypothesis

_B64_SEGMENT = st.builds(
    lambda v: b64url_encode(json.dumps(v).encode()),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=8),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
        max_leaves=8,
    ),
)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300) | st.lists(_B64_SEGMENT | st.text(max_size=20), max_size=4).map(".".join))
def test_decode_and_verify_raise_only_imi_input_errors(text: str) -> None:
    key = _ED_KEY.public_key()
    calls: tuple[Callable[[], object], ...] = (
        lambda: decode_jws_unverified(text),
        lambda: verify_jws(text, key, expected_typ="jwt"),
    )
    for call in calls:
        with contextlib.suppress(MalformedInput, VerificationFailed):
            call()


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=10), st.text(max_size=10) | st.booleans() | st.none(), max_size=4))
def test_public_key_from_random_dicts_raises_only_imi_input_errors(jwk: dict[str, Any]) -> None:
    with contextlib.suppress(MalformedInput, VerificationFailed):
        public_key_from_jwk({"kty": "OKP", "crv": "Ed25519", **jwk})


_ED_KEY = _ed25519()
