"""Compact JWS (RFC 7515) with a closed algorithm allow-list, and the JSON and JWK helpers around it.

Only two algorithms exist here: ``ES256`` (ECDSA on P-256 with SHA-256, RFC 7518 section 3.4: the signature is
the raw ``r || s``, 64 bytes) and ``EdDSA`` (Ed25519, RFC 8037). ``none``, HMAC and RSA are refused before any
key is looked at, so the "alg confusion" attacks (``none``; HS256 keyed with the public key's bytes) cannot
reach a signature check. The algorithm must also match the key the caller passes: an ES256 token never
verifies under an Ed25519 key or the other way round.

Keys are ``cryptography`` key objects, the same objects :mod:`kernel.keystore` holds. A key that arrives as a
JWK dict (a ``cnf.jwk``, a JWKS entry) enters through :func:`public_key_from_jwk`, which accepts exactly the
public members of a P-256 or Ed25519 key. Keys named in a JOSE header (``jwk``, ``jku``, ``x5c``, ``kid``) are
never used to choose a key: the caller decides which key a token must verify under.

Every parse of untrusted text is strict: canonical unpadded base64url, UTF-8 JSON without duplicate member
names, non-finite numbers or deep nesting, and a 64 KiB ceiling. Failures raise :class:`MalformedInput` or
:class:`VerificationFailed` with a precise ``slug``. Nothing here does I/O or reads the clock.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import json
import math
import re
from collections.abc import Mapping, Set
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from kernel.errors import MalformedInput, VerificationFailed

ALLOWED_ALGS = frozenset({"ES256", "EdDSA"})
MAX_JWS_CHARS = 64 * 1024
MAX_JSON_DEPTH = 64

PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
PublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey
AnyKey = PrivateKey | PublicKey

_BASE64URL_NOPAD = re.compile(r"[A-Za-z0-9_-]*")
_P256_COORD_BYTES = 32
_ES256_SIG_BYTES = 64
_ED25519_KEY_BYTES = 32
# Header parameters a caller may not set through ``extra_headers``: they are decided here.
_RESERVED_HEADERS = frozenset({"alg", "typ", "kid", "crit", "b64"})
# RFC 7638 section 3.2: the required members of each key type, the only ones a thumbprint covers.
_THUMBPRINT_MEMBERS = {"EC": ("crv", "kty", "x", "y"), "OKP": ("crv", "kty", "x")}


# ---------------------------------------------------------------------------------------------- encodings


def b64url_encode(data: bytes) -> str:
    """Unpadded base64url (RFC 7515 section 2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str, *, slug: str = "base64url-malformed") -> bytes:
    """Decode the one canonical unpadded base64url spelling of a byte string; anything else is malformed."""
    if not isinstance(text, str) or not _BASE64URL_NOPAD.fullmatch(text) or len(text) % 4 == 1:
        raise MalformedInput("not unpadded base64url", slug=slug)
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise MalformedInput("not unpadded base64url", slug=slug) from None
    if b64url_encode(data) != text:  # non-zero spare bits: a second spelling of the same bytes
        raise MalformedInput("not canonical base64url", slug=slug)
    return data


def dump_json(value: object) -> bytes:
    """Compact UTF-8 JSON, the serialization of every JOSE header, payload and disclosure made here."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise ValueError("duplicate member name")
    return obj


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError("number out of range")
    return number


def _non_finite(text: str) -> float:
    raise ValueError(f"{text} is not JSON")


def _depth_exceeds(value: object, limit: int) -> bool:
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            if depth > limit:
                return True
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, depth + 1) for child in children)
    return False


def load_json(data: bytes, *, slug: str) -> object:
    """Parse untrusted JSON strictly: UTF-8, no duplicate names, finite numbers, at most 64 levels deep."""
    try:
        text = data.decode("utf-8")
        value: object = json.loads(
            text,
            object_pairs_hook=_reject_duplicates,
            parse_float=_finite_float,
            parse_constant=_non_finite,
        )
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise MalformedInput(f"not valid JSON: {exc}", slug=slug) from None
    # Nesting deeper than the limit needs more opening brackets than the limit: count first (cheap, C speed),
    # walk the tree only when there are that many.
    if text.count("[") + text.count("{") > MAX_JSON_DEPTH and _depth_exceeds(value, MAX_JSON_DEPTH):
        raise MalformedInput(f"JSON nested deeper than {MAX_JSON_DEPTH} levels", slug=slug)
    return value


def load_json_object(data: bytes, *, slug: str) -> dict[str, Any]:
    value = load_json(data, slug=slug)
    if not isinstance(value, dict):
        raise MalformedInput("not a JSON object", slug=slug)
    return value


# ---------------------------------------------------------------------------------------------------- keys


def alg_for_key(key: AnyKey) -> str:
    """The one JWS algorithm a key signs with: ``ES256`` for P-256, ``EdDSA`` for Ed25519."""
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        if isinstance(key.curve, ec.SECP256R1):
            return "ES256"
        raise VerificationFailed(f"EC curve {key.curve.name} is not supported", slug="key-unsupported")
    if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return "EdDSA"
    raise VerificationFailed(f"{type(key).__name__} is not a supported key", slug="key-unsupported")


def _public(key: AnyKey) -> PublicKey:
    if isinstance(key, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
        return key.public_key()
    return key


def public_jwk_dict(key: AnyKey) -> dict[str, str]:
    """The public JWK of a key: exactly the RFC 7638 required members (no ``kid``, ``use`` or ``alg``)."""
    alg_for_key(key)  # refuses curves other than P-256
    public = _public(key)
    if isinstance(public, ec.EllipticCurvePublicKey):
        numbers = public.public_numbers()
        return {
            "kty": "EC",
            "crv": "P-256",
            "x": b64url_encode(numbers.x.to_bytes(_P256_COORD_BYTES, "big")),
            "y": b64url_encode(numbers.y.to_bytes(_P256_COORD_BYTES, "big")),
        }
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {"kty": "OKP", "crv": "Ed25519", "x": b64url_encode(raw)}


def _jwk_member(jwk: Mapping[str, Any], name: str, size: int) -> bytes:
    value = jwk.get(name)
    if not isinstance(value, str):
        raise MalformedInput(f"JWK member {name!r} is missing", slug="jwk-invalid")
    data = b64url_decode(value, slug="jwk-invalid")
    if len(data) != size:
        raise MalformedInput(f"JWK member {name!r} is not {size} bytes", slug="jwk-invalid")
    return data


def public_key_from_jwk(jwk: Mapping[str, Any]) -> PublicKey:
    """Import an untrusted public JWK (P-256 or Ed25519). Private members are refused, not ignored."""
    if not isinstance(jwk, Mapping):
        raise MalformedInput("a JWK must be a JSON object", slug="jwk-invalid")
    if "d" in jwk:
        raise MalformedInput("a public JWK must not carry private key material", slug="jwk-invalid")
    kty, crv = jwk.get("kty"), jwk.get("crv")
    if kty == "EC" and crv == "P-256":
        x = int.from_bytes(_jwk_member(jwk, "x", _P256_COORD_BYTES), "big")
        y = int.from_bytes(_jwk_member(jwk, "y", _P256_COORD_BYTES), "big")
        try:
            return ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()
        except ValueError:
            raise MalformedInput("the JWK point is not on P-256", slug="jwk-invalid") from None
    if kty == "OKP" and crv == "Ed25519":
        try:
            return ed25519.Ed25519PublicKey.from_public_bytes(_jwk_member(jwk, "x", _ED25519_KEY_BYTES))
        except ValueError:
            raise MalformedInput("the JWK is not an Ed25519 public key", slug="jwk-invalid") from None
    raise VerificationFailed(f"JWK kty={kty!r} crv={crv!r} is not supported", slug="key-unsupported")


def jwk_thumbprint(jwk: Mapping[str, Any] | AnyKey) -> str:
    """RFC 7638 JWK thumbprint with SHA-256, base64url: of a JWK dict or of a key object's public JWK."""
    data: Mapping[str, Any] = jwk if isinstance(jwk, Mapping) else public_jwk_dict(jwk)
    kty = data.get("kty")
    members = _THUMBPRINT_MEMBERS.get(kty) if isinstance(kty, str) else None
    if members is None:
        raise VerificationFailed(f"JWK kty={kty!r} is not supported", slug="key-unsupported")
    required: dict[str, str] = {}
    for name in members:
        value = data.get(name)
        if not isinstance(value, str):
            raise MalformedInput(f"JWK member {name!r} is missing", slug="jwk-invalid")
        required[name] = value
    canonical = json.dumps(required, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return b64url_encode(hashlib.sha256(canonical.encode("utf-8")).digest())


# ----------------------------------------------------------------------------------------------------- JWS


@dataclass(frozen=True)
class DecodedJWS:
    header: dict[str, Any]
    payload: dict[str, Any]
    signing_input: bytes
    signature: bytes
    compact: str


def sign_jws(
    payload: Mapping[str, Any] | bytes,
    key: PrivateKey,
    *,
    typ: str,
    kid: str | None = None,
    extra_headers: Mapping[str, Any] | None = None,
) -> str:
    """Compact JWS over ``payload`` (a JSON object, serialized compactly, or the bytes of one)."""
    if not isinstance(key, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
        raise TypeError("sign_jws needs a private key")
    header: dict[str, Any] = {"alg": alg_for_key(key), "typ": typ}
    if kid is not None:
        header["kid"] = kid
    for name, value in (extra_headers or {}).items():
        if name in _RESERVED_HEADERS:
            raise ValueError(f"header parameter {name!r} cannot be set through extra_headers")
        header[name] = value
    body = payload if isinstance(payload, bytes) else dump_json(dict(payload))
    signing_input = f"{b64url_encode(dump_json(header))}.{b64url_encode(body)}"
    if isinstance(key, ec.EllipticCurvePrivateKey):
        r, s = decode_dss_signature(key.sign(signing_input.encode("ascii"), ec.ECDSA(hashes.SHA256())))
        signature = r.to_bytes(_P256_COORD_BYTES, "big") + s.to_bytes(_P256_COORD_BYTES, "big")
    else:
        signature = key.sign(signing_input.encode("ascii"))
    token = f"{signing_input}.{b64url_encode(signature)}"
    if len(token) > MAX_JWS_CHARS:
        raise ValueError(f"the JWS would exceed {MAX_JWS_CHARS} characters, which no verifier here accepts")
    return token


def decode_jws_unverified(token: str) -> DecodedJWS:
    """Split and decode a compact JWS without checking anything but its form. Never trust the result.

    Decoded tokens are memoised (one verification decodes the same JWS several times): treat ``header`` and
    ``payload`` as read-only.
    """
    if not isinstance(token, str):
        raise MalformedInput("a JWS must be text", slug="jws-malformed")
    return _decode_jws(token)


@functools.lru_cache(maxsize=2048)
def _decode_jws(token: str) -> DecodedJWS:
    if len(token) > MAX_JWS_CHARS:
        raise MalformedInput(f"the JWS exceeds {MAX_JWS_CHARS} characters", slug="too-large")
    parts = token.split(".")
    if len(parts) != 3 or not token.isascii():
        raise MalformedInput("a compact JWS has three base64url parts", slug="jws-malformed")
    header_b64, payload_b64, signature_b64 = parts
    header = load_json_object(b64url_decode(header_b64, slug="jws-malformed"), slug="jws-malformed")
    payload = load_json_object(b64url_decode(payload_b64, slug="jws-malformed"), slug="jws-malformed")
    signature = b64url_decode(signature_b64, slug="jws-malformed")
    signing_input = f"{header_b64}.{payload_b64}".encode("ascii")
    return DecodedJWS(header, payload, signing_input, signature, token)


def _normalize_typ(typ: str) -> str:
    # RFC 7515 section 4.1.9: media types compare case-insensitively, "application/" may be omitted.
    typ = typ.lower()
    return typ.removeprefix("application/")


def _signature_holds(alg: str, key: PublicKey, signing_input: bytes, signature: bytes) -> bool:
    try:
        if alg == "ES256" and isinstance(key, ec.EllipticCurvePublicKey):
            if len(signature) != _ES256_SIG_BYTES:
                return False
            r = int.from_bytes(signature[:_P256_COORD_BYTES], "big")
            s = int.from_bytes(signature[_P256_COORD_BYTES:], "big")
            key.verify(encode_dss_signature(r, s), signing_input, ec.ECDSA(hashes.SHA256()))
            return True
        if alg == "EdDSA" and isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, signing_input)
            return True
    except InvalidSignature:
        return False
    return False


def verify_jws(token: str, key: AnyKey, *, expected_typ: str | Set[str] | None) -> DecodedJWS:
    """Verify a compact JWS under ``key``; ``expected_typ`` (one value or a set) is required unless None.

    Checks, in order: form and size, ``alg`` in :data:`ALLOWED_ALGS`, ``alg`` matching the key, no ``crit``
    (no extension is understood here, RFC 7515 section 4.1.11) and no ``b64``, ``typ``, the signature.
    """
    decoded = decode_jws_unverified(token)
    header = decoded.header
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in ALLOWED_ALGS:
        raise VerificationFailed(f"JWS algorithm {alg!r} is not allowed", slug="alg-not-allowed")
    if alg != alg_for_key(key):
        raise VerificationFailed(f"a {alg} JWS cannot verify under this key", slug="alg-key-mismatch")
    if "crit" in header or "b64" in header:
        raise VerificationFailed("the JWS needs unsupported header extensions", slug="crit-unsupported")
    if expected_typ is not None:
        allowed = {expected_typ} if isinstance(expected_typ, str) else set(expected_typ)
        typ = header.get("typ")
        if not isinstance(typ, str) or _normalize_typ(typ) not in {_normalize_typ(t) for t in allowed}:
            raise VerificationFailed(f"JWS typ {typ!r} is not one of {sorted(allowed)}", slug="typ-mismatch")
    if not _signature_holds(alg, _public(key), decoded.signing_input, decoded.signature):
        raise VerificationFailed("the JWS signature does not verify", slug="signature-invalid")
    return decoded
