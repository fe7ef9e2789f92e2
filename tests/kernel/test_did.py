"""kernel.did: did:web URLs, did:key and did:jwk against their specs' vectors, key resolution from documents."""

from __future__ import annotations

import contextlib
import json
import string
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from hypothesis import given, settings
from hypothesis import strategies as st
from pydid import DIDDocumentBuilder
from pydid.verification_method import Ed25519VerificationKey2018, JsonWebKey2020, Multikey

from kernel.did import (
    StaticResolver,
    did_jwk_document,
    did_key_public_key,
    did_web_to_url,
    key_from_document,
    make_did_jwk,
    make_did_key,
    multikey_encode,
    resolve_key,
)
from kernel.did_document import did_document, did_web
from kernel.errors import ImiError, MalformedInput, VerificationFailed
from kernel.jose import PublicKey, b64url_encode, dump_json, public_jwk_dict, public_key_from_jwk

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parents[1] / "vectors" / "did_key.json").read_text("utf-8")
)
B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
DID = "did:web:example.com"


def _b58decode(text: str) -> bytes:  # independent of kernel.did's codec, to check it
    number = 0
    for ch in text:
        number = number * 58 + B58.index(ch)
    body = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return b"\0" * (len(text) - len(text.lstrip("1"))) + body


def _b58encode(data: bytes) -> str:
    number, out = int.from_bytes(data, "big"), ""
    while number:
        number, digit = divmod(number, 58)
        out = B58[digit] + out
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + out


def _slug(exc: pytest.ExceptionInfo[ImiError]) -> str:
    return exc.value.slug


def _same(a: PublicKey, b: PublicKey) -> bool:
    return public_jwk_dict(a) == public_jwk_dict(b)


class NoResolver:
    """A resolver that must not be asked (did:jwk and did:key resolve locally)."""

    def resolve(self, did: str) -> dict[str, Any]:
        raise AssertionError(f"resolver called for {did}")


# ------------------------------------------------------------------------------------------------ did:web


@pytest.mark.parametrize(("did", "url"), VECTORS["did_web_urls"])
def test_did_web_spec_examples(did: str, url: str) -> None:
    assert did_web_to_url(did) == url


@pytest.mark.parametrize(
    ("did", "url"),
    [
        ("did:web:example.com%3A3000", "https://example.com:3000/.well-known/did.json"),
        ("did:web:Example.COM", "https://example.com/.well-known/did.json"),
        ("did:web:example.com:a%20b:%C3%A9", "https://example.com/a%20b/%C3%A9/did.json"),
        ("did:web:localhost", "http://localhost/.well-known/did.json"),
        ("did:web:localhost%3A8000:tenant", "http://localhost:8000/tenant/did.json"),
        ("did:web:127.0.0.1%3A8000", "http://127.0.0.1:8000/.well-known/did.json"),
        ("did:web:testserver", "http://testserver/.well-known/did.json"),
    ],
)
def test_did_web_ports_paths_and_local_hosts(did: str, url: str) -> None:
    assert did_web_to_url(did) == url


def test_did_web_insecure_hosts_are_configurable() -> None:
    assert did_web_to_url("did:web:localhost", insecure_hosts=frozenset()).startswith("https://")
    hosts = frozenset({"demo.internal:8443"})
    assert did_web_to_url("did:web:demo.internal%3A8443", insecure_hosts=hosts).startswith("http://")
    assert did_web_to_url("did:web:demo.internal", insecure_hosts=hosts).startswith("https://")


@pytest.mark.parametrize(
    "public_url", ["https://issuer.example", "http://localhost:8000", "https://example.com/tenants/a b"]
)
def test_did_web_round_trips_with_the_issuer(public_url: str) -> None:
    url = did_web_to_url(did_web(public_url))
    assert url.removesuffix("did.json").removesuffix(".well-known/") == public_url.replace(" ", "%20") + "/"


@pytest.mark.parametrize(
    "did",
    [
        "did:web:",
        "did:web:example.com:",
        "did:web::user",
        "did:web:example.com::alice",
        "did:web:exa mple.com",
        "did:web:example..com",
        "did:web:example.com.",
        "did:web:-example.com",
        "did:web:example.com%2Fevil",
        "did:web:example.com%3A0",
        "did:web:example.com%3A99999",
        "did:web:example.com%3A1%3A2",
        "did:web:user%40example.com",
        "did:web:1.2.3.4",
        "did:web:10.0.0.1%3A80",
        "did:web:0x7f000001",
        "did:web:example.com:..",
        "did:web:example.com:%2E%2E",
        "did:web:example.com:a%2Fb",
        "did:web:example.com:%FF",
        "did:web:example.com:%0A",
        "did:web:example.com%ZZ",
        "did:WEB:example.com",
        "did:web:example.com#key-1",
        "did:web:example.com/path",
        "did:web:example.com?x=1",
        "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp",
        "https://example.com",
        "did:web:" + "a" * 5000,
    ],
)
def test_did_web_malformed(did: str) -> None:
    with pytest.raises(MalformedInput) as exc:
        did_web_to_url(did)
    assert _slug(exc) == "did-malformed"


# ------------------------------------------------------------------------------------------------ did:key


@pytest.mark.parametrize("vector", VECTORS["ed25519"], ids=lambda v: v["did"][-8:])
def test_did_key_ed25519_vectors(vector: dict[str, str]) -> None:
    private = ed25519.Ed25519PrivateKey.from_private_bytes(bytes.fromhex(vector["seed"]))
    assert make_did_key(private.public_key()) == vector["did"]
    assert make_did_key(private) == vector["did"]
    key = did_key_public_key(vector["did"])
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert raw == _b58decode(vector["publicKeyBase58"])
    assert resolve_key(vector["did"], NoResolver()) is not None


@pytest.mark.parametrize("vector", VECTORS["p256"], ids=lambda v: v["did"][-8:])
def test_did_key_p256_vectors(vector: dict[str, Any]) -> None:
    key = did_key_public_key(vector["did"])
    assert public_jwk_dict(key) == vector["publicKeyJwk"]
    assert make_did_key(public_key_from_jwk(vector["publicKeyJwk"])) == vector["did"]


@pytest.mark.parametrize("make", [ec.generate_private_key, ed25519.Ed25519PrivateKey.generate])
def test_did_key_round_trip(make: Any) -> None:
    private = make(ec.SECP256R1()) if make is ec.generate_private_key else make()
    did = make_did_key(private)
    assert _same(did_key_public_key(did), private.public_key())
    fragment = did.removeprefix("did:key:")
    assert _same(resolve_key(f"{did}#{fragment}", NoResolver()), private.public_key())
    assert _same(resolve_key(did, NoResolver(), purpose="authentication"), private.public_key())


def test_did_key_unsupported_curves() -> None:
    with pytest.raises(VerificationFailed) as exc:
        did_key_public_key(VECTORS["unsupported"][0])  # P-384
    assert _slug(exc) == "key-unsupported"
    with pytest.raises(VerificationFailed):
        make_did_key(ec.generate_private_key(ec.SECP384R1()).public_key())


def test_did_key_wrong_fragment_or_purpose() -> None:
    did = VECTORS["ed25519"][0]["did"]
    with pytest.raises(VerificationFailed) as exc:
        resolve_key(did + "#other", NoResolver())
    assert _slug(exc) == "unknown-kid"
    with pytest.raises(VerificationFailed) as exc:
        resolve_key(did, NoResolver(), purpose="keyAgreement")
    assert _slug(exc) == "did-key-not-authorized"
    with pytest.raises(ValueError, match="relationship"):
        resolve_key(did, NoResolver(), purpose="signing")


_P256_POINT = bytes.fromhex("02" + "ff" * 32)  # x >= p: on no curve


@pytest.mark.parametrize(
    "did",
    [
        "did:key:",
        "did:key:6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp",  # no multibase prefix
        "did:key:uAe0B",  # base64url multibase: not supported
        "did:key:z",
        "did:key:z0OIl",  # not in the base58 alphabet
        "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp:x",
        "did:key:z" + _b58encode(b"\xed\x01" + bytes(31)),
        "did:key:z" + _b58encode(b"\x80\x24" + _P256_POINT),
        "did:key:z" + _b58encode(b"\x80\x24\x04" + bytes(64)),  # uncompressed points are refused
        "did:key:z" + "2" * 200,
    ],
)
def test_did_key_malformed(did: str) -> None:
    with pytest.raises(MalformedInput) as exc:
        did_key_public_key(did)
    assert _slug(exc) == "did-malformed"


# ------------------------------------------------------------------------------------------------ did:jwk


def test_did_jwk_spec_vector() -> None:
    vector = VECTORS["did_jwk_p256"]
    assert make_did_jwk(vector["jwk"]) == vector["did"]
    assert did_jwk_document(vector["did"]) == vector["document"]
    assert public_jwk_dict(resolve_key(vector["did"] + "#0", NoResolver())) == {
        k: vector["jwk"][k] for k in ("kty", "crv", "x", "y")
    }


@pytest.mark.parametrize("make", [ec.generate_private_key, ed25519.Ed25519PrivateKey.generate])
def test_did_jwk_round_trip(make: Any) -> None:
    private = make(ec.SECP256R1()) if make is ec.generate_private_key else make()
    jwk = {**public_jwk_dict(private), "kid": "ignored", "alg": "ignored"}
    did = make_did_jwk(jwk)
    assert did == make_did_jwk(public_jwk_dict(private))  # only the public key members count
    for did_url in (did + "#0", did):
        assert _same(resolve_key(did_url, NoResolver()), private.public_key())
    with pytest.raises(VerificationFailed) as exc:
        resolve_key(did + "#1", NoResolver())
    assert _slug(exc) == "unknown-kid"


def _raw_did_jwk(jwk: object) -> str:
    return "did:jwk:" + b64url_encode(dump_json(jwk))


def test_did_jwk_use_limits_the_relationships() -> None:
    jwk = public_jwk_dict(ed25519.Ed25519PrivateKey.generate())
    signing = did_jwk_document(_raw_did_jwk({**jwk, "use": "sig"}))
    assert "assertionMethod" in signing
    assert "keyAgreement" not in signing
    encrypting = _raw_did_jwk({**jwk, "use": "enc"})
    assert set(did_jwk_document(encrypting)) == {"@context", "id", "verificationMethod", "keyAgreement"}
    with pytest.raises(VerificationFailed) as exc:
        resolve_key(encrypting + "#0", NoResolver())
    assert _slug(exc) == "did-key-not-authorized"


def test_did_jwk_refuses_private_and_unsupported_keys() -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    d = b64url_encode(private.private_numbers().private_value.to_bytes(32, "big"))
    with pytest.raises(MalformedInput) as exc:
        did_jwk_document(_raw_did_jwk({**public_jwk_dict(private), "d": d}))
    assert _slug(exc) == "jwk-invalid"
    with pytest.raises(VerificationFailed) as exc2:
        did_jwk_document(VECTORS["unsupported"][1])  # the spec's X25519 example
    assert _slug(exc2) == "key-unsupported"


@pytest.mark.parametrize(
    "did",
    [
        "did:jwk:",
        "did:jwk:eyJ9=",
        "did:jwk:e30:e30",
        "did:jwk:" + b64url_encode(b"not json"),
        "did:jwk:" + b64url_encode(b"[1]"),
        "did:jwk:" + b64url_encode(b'{"kty":"EC","kty":"OKP"}'),
    ],
)
def test_did_jwk_malformed(did: str) -> None:
    with pytest.raises(MalformedInput) as exc:
        did_jwk_document(did)
    assert _slug(exc) == "did-malformed"


# --------------------------------------------------------------------------------------------- resolve_key


def _issuer_doc() -> tuple[dict[str, Any], ec.EllipticCurvePrivateKey, ed25519.Ed25519PrivateKey]:
    p256, edkey = ec.generate_private_key(ec.SECP256R1()), ed25519.Ed25519PrivateKey.generate()
    jwks = [{**public_jwk_dict(p256), "kid": "k1"}, {**public_jwk_dict(edkey), "kid": "k2"}]
    return did_document(DID, jwks), p256, edkey


def test_resolve_key_from_an_issuer_document() -> None:
    doc, p256, edkey = _issuer_doc()
    resolver = StaticResolver({DID: doc})
    assert _same(resolve_key(f"{DID}#k1", resolver), p256.public_key())
    assert _same(resolve_key(f"{DID}#k2", resolver), edkey.public_key())
    with pytest.raises(VerificationFailed) as exc:
        resolve_key(DID, resolver)  # two assertion keys: the kid must name one
    assert _slug(exc) == "unknown-kid"


def test_resolve_key_unknown_fragment() -> None:
    doc, _, _ = _issuer_doc()
    with pytest.raises(VerificationFailed) as exc:
        resolve_key(f"{DID}#k3", StaticResolver({DID: doc}))
    assert _slug(exc) == "unknown-kid"


def test_resolve_key_needs_the_relationship() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = DIDDocumentBuilder(DID)
    listed = builder.verification_method.add(JsonWebKey2020, public_key_jwk=public_jwk_dict(key), ident="a")
    builder.verification_method.add(JsonWebKey2020, public_key_jwk=public_jwk_dict(key), ident="b")
    builder.assertion_method.reference(listed.id)
    builder.authentication.reference(listed.id)
    resolver = StaticResolver({DID: builder.build().serialize()})
    assert _same(resolve_key(f"{DID}#a", resolver), key.public_key())
    assert _same(resolve_key(DID, resolver), key.public_key())  # the one assertion key
    for did_url, purpose in [(f"{DID}#b", "assertionMethod"), (f"{DID}#a", "capabilityInvocation")]:
        with pytest.raises(VerificationFailed) as exc:
            resolve_key(did_url, resolver, purpose=purpose)
        assert _slug(exc) == "did-key-not-authorized"


def test_resolve_key_document_id_must_match() -> None:
    doc, _, _ = _issuer_doc()
    resolver = StaticResolver({"did:web:other.example": doc})
    with pytest.raises(VerificationFailed) as exc:
        resolve_key("did:web:other.example#k1", resolver)
    assert _slug(exc) == "did-document-mismatch"


def test_resolve_key_relative_embedded_and_multikey_methods() -> None:
    jwk_key, multi_key = ed25519.Ed25519PrivateKey.generate(), ec.generate_private_key(ec.SECP256R1())
    doc = {
        "@context": ["https://www.w3.org/ns/did/v1"],
        "id": DID,
        "verificationMethod": [
            {
                "id": "#multi",
                "type": "Multikey",
                "controller": DID,
                "publicKeyMultibase": multikey_encode(multi_key),
            }
        ],
        "assertionMethod": [
            "#multi",
            {
                "id": f"{DID}#jwk",
                "type": "JsonWebKey",
                "controller": DID,
                "publicKeyJwk": public_jwk_dict(jwk_key),
            },
        ],
    }
    assert _same(key_from_document(doc, f"{DID}#multi"), multi_key.public_key())
    assert _same(key_from_document(doc, f"{DID}#jwk"), jwk_key.public_key())
    builder = DIDDocumentBuilder(DID)
    method = builder.assertion_method.embed(
        Multikey, public_key_multibase=multikey_encode(jwk_key), ident="m"
    )
    assert _same(key_from_document(builder.build().serialize(), method.id), jwk_key.public_key())


def test_resolve_key_unsupported_method_type() -> None:
    builder = DIDDocumentBuilder(DID)
    method = builder.verification_method.add(
        Ed25519VerificationKey2018,
        public_key_base58="4zvwRjXUKGfvwnParsHAS3HuSVzV5cA4McphgmoCtajS",
        ident="old",
    )
    builder.assertion_method.reference(method.id)
    with pytest.raises(VerificationFailed) as exc:
        key_from_document(builder.build().serialize(), method.id)
    assert _slug(exc) == "key-unsupported"


@pytest.mark.parametrize(
    "doc",
    [
        [],
        {"id": DID, "verificationMethod": [5]},
        {"id": DID, "assertionMethod": [[1]]},
        {"id": DID, "verificationMethod": "x"},
        {"id": DID, "@context": 5},
        {"id": DID, "verificationMethod": [{"controller": []}]},
        {"id": DID, "verificationMethod": [{"type": [], "controller": None}]},
    ],
)
def test_resolve_key_malformed_documents(doc: Any) -> None:
    with pytest.raises(MalformedInput) as exc:
        key_from_document(doc, f"{DID}#k1")
    assert _slug(exc) == "did-document-malformed"


def test_static_resolver() -> None:
    doc, _, _ = _issuer_doc()
    resolver = StaticResolver({DID: doc})
    resolver.resolve(DID)["id"] = "changed"
    assert resolver.resolve(DID) == doc
    with pytest.raises(VerificationFailed) as exc:
        resolver.resolve("did:web:unknown.example")
    assert _slug(exc) == "did-resolution-failed"


# ---------------------------------------------------------------------------------------------- hypothesis

_ID_TEXT = st.text(alphabet=string.ascii_letters + string.digits + ".-_%:#/?3Aa", max_size=60)
_PARSERS: list[Callable[[str], object]] = [
    did_web_to_url,
    did_key_public_key,
    did_jwk_document,
    lambda d: resolve_key(d, StaticResolver({})),
]


def _only_our_errors(value: str) -> None:
    for parse in _PARSERS:
        with contextlib.suppress(MalformedInput, VerificationFailed):
            parse(value)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.text(max_size=80),
        st.builds(lambda m, t: f"did:{m}:{t}", st.sampled_from(["web", "key", "jwk", "x"]), _ID_TEXT),
        st.builds(lambda t: "did:key:z" + t, st.text(alphabet=B58 + "0:#", max_size=60)),
        st.builds(lambda b: "did:key:z" + _b58encode(b), st.binary(max_size=40)),
        st.builds(lambda b: "did:jwk:" + b64url_encode(b), st.binary(max_size=80)),
    )
)
def test_parsers_raise_only_input_errors(value: str) -> None:
    _only_our_errors(value)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10) | st.sampled_from(["#k1", f"{DID}#k1"]),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                ["id", "type", "controller", "publicKeyJwk", "publicKeyMultibase", "kty", "crv", "x"]
            ),
            inner,
            max_size=4,
        )
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["verificationMethod", "assertionMethod", "@context", "controller"]), _JSON
    )
)
def test_random_documents_raise_only_input_errors(body: dict[str, Any]) -> None:
    with contextlib.suppress(MalformedInput, VerificationFailed):
        key_from_document({**body, "id": DID}, f"{DID}#k1")
