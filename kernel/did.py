"""DIDs: the ``did:web`` URL mapping, the self-resolving ``did:jwk`` and ``did:key``, and key resolution.

Three methods are understood here. ``did:web`` (https://w3c-ccg.github.io/did-method-web/) names a document
at an HTTPS URL, which a :class:`DidResolver` fetches (``verifier.fetch.DidWebResolver`` over the network,
:class:`StaticResolver` from a dict). ``did:jwk`` (https://github.com/quartzjer/did-jwk/blob/main/spec.md)
and ``did:key`` (https://w3c-ccg.github.io/did-method-key/) carry their key inside the identifier and
resolve without any I/O. Only P-256 and Ed25519 keys exist, as in :mod:`kernel.jose`.

:func:`resolve_key` turns a DID URL (a ``kid``) into a public key: the verification method must be in the
document and referenced by the verification relationship asked for (``assertionMethod`` for credentials).

Every parse is strict. Failures raise :class:`MalformedInput` (``did-malformed``, ``jwk-invalid``,
``did-document-malformed``) or :class:`VerificationFailed` (``unknown-kid``, ``did-key-not-authorized``,
``did-document-mismatch``, ``key-unsupported``). Nothing here does I/O except through the resolver.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Protocol
from urllib.parse import quote, unquote

import pydid
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from kernel.errors import MalformedInput, VerificationFailed
from kernel.jose import (
    AnyKey,
    PublicKey,
    alg_for_key,
    b64url_decode,
    b64url_encode,
    load_json_object,
    public_jwk_dict,
    public_key_from_jwk,
)

MAX_DID_URL_CHARS = 4096
DEFAULT_INSECURE_HOSTS = frozenset({"localhost", "127.0.0.1", "testserver"})
# Verification relationships (DID Core section 5.3) and their pydid attribute names.
RELATIONSHIPS = {
    "authentication": "authentication",
    "assertionMethod": "assertion_method",
    "keyAgreement": "key_agreement",
    "capabilityInvocation": "capability_invocation",
    "capabilityDelegation": "capability_delegation",
}

_IDCHAR = r"(?:[A-Za-z0-9._-]|%[0-9A-Fa-f]{2})"
# DID Core 1.0 section 3.1: did = "did:" method-name ":" method-specific-id
_DID = re.compile(rf"did:[a-z0-9]+:(?:{_IDCHAR}*:)*{_IDCHAR}+")
# RFC 3986 fragment = *( pchar / "/" / "?" ), required to be non-empty here.
_FRAGMENT = re.compile(r"(?:[A-Za-z0-9._~!$&'()*+,;=:@/?-]|%[0-9A-Fa-f]{2})+")
_HOST_PORT = re.compile(r"(?P<host>[A-Za-z0-9.-]{1,253})(?::(?P<port>[1-9][0-9]{0,4}))?")
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_NUMERIC_LABEL = re.compile(r"[0-9]+|0x[0-9a-f]*")
_B58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {ch: i for i, ch in enumerate(_B58_ALPHABET)}
# Multicodec varint prefixes (https://github.com/multiformats/multicodec table.csv): ed25519-pub 0xed,
# p256-pub 0x1200; with the raw key length that follows them (P-256: SEC 1 compressed point).
_ED25519_PREFIX = b"\xed\x01"
_P256_PREFIX = b"\x80\x24"
_KEY_LENGTHS = {_ED25519_PREFIX: 32, _P256_PREFIX: 33}
_DID_KEY_PURPOSES = frozenset(
    {"authentication", "assertionMethod", "capabilityInvocation", "capabilityDelegation"}
)


class DidResolver(Protocol):
    def resolve(self, did: str) -> dict[str, Any]:
        """The DID document of ``did``, not yet checked (the caller checks its ``id`` and its keys)."""
        ...


class StaticResolver(DidResolver):
    """A fixed set of DID documents (offline bundles, tests). Unknown DIDs fail to resolve."""

    def __init__(self, documents: Mapping[str, Mapping[str, Any]]) -> None:
        self._documents = {did: json.loads(json.dumps(doc)) for did, doc in documents.items()}

    def resolve(self, did: str) -> dict[str, Any]:
        doc = self._documents.get(did)
        if doc is None:
            raise VerificationFailed(f"{did!r} is not among the known DIDs", slug="did-resolution-failed")
        copy: dict[str, Any] = json.loads(json.dumps(doc))
        return copy


def _malformed(detail: str) -> MalformedInput:
    return MalformedInput(detail, slug="did-malformed")


def _check_did(did: object) -> str:
    if not isinstance(did, str) or len(did) > MAX_DID_URL_CHARS or not _DID.fullmatch(did):
        raise _malformed("not a DID (did:<method>:<method-specific-id>)")
    return did


def split_did_url(did_url: str) -> tuple[str, str | None]:
    """``did#fragment`` -> (``did``, ``fragment`` or None). DID URL paths and queries are refused."""
    if not isinstance(did_url, str) or len(did_url) > MAX_DID_URL_CHARS:
        raise _malformed("a DID URL must be text of at most 4096 characters")
    did, sep, fragment = did_url.partition("#")
    if sep and not _FRAGMENT.fullmatch(fragment):
        raise _malformed("the DID URL fragment is empty or not a URI fragment")
    return _check_did(did), fragment if sep else None


# ----------------------------------------------------------------------------------------------- did:web


def did_web_to_url(did: str, *, insecure_hosts: frozenset[str] = DEFAULT_INSECURE_HOSTS) -> str:
    """The URL of a ``did:web`` document (did:web spec 3.2.2): https, ``/.well-known`` only without a path.

    The host must be a DNS name (no IP address, did:web spec 2.4); the port colon is the only
    percent-encoding allowed in it. Hosts in ``insecure_hosts`` (with or without the port) use http://.
    """
    if not _check_did(did).startswith("did:web:"):
        raise _malformed("not a did:web DID")
    authority, *path = did.removeprefix("did:web:").split(":")
    if not authority or not all(path):
        raise _malformed("a did:web DID has an empty host or path segment")
    match = _HOST_PORT.fullmatch(re.sub("%3[Aa]", ":", authority, count=1))
    if match is None:
        raise _malformed("the did:web host is not host or host%3Aport")
    host, port = match.group("host").lower(), match.group("port")
    labels = host.split(".")
    if not all(_LABEL.fullmatch(label) for label in labels) or (port is not None and int(port) > 65535):
        raise _malformed("the did:web host is not a valid domain name and port")
    netloc = f"{host}:{port}" if port else host
    insecure = host in insecure_hosts or netloc in insecure_hosts
    if _NUMERIC_LABEL.fullmatch(labels[-1]) and not insecure:  # WHATWG URL: "ends in a number" = IPv4
        raise _malformed("a did:web host must not be an IP address")
    segments = []
    for raw in path:
        try:
            segment = unquote(raw, errors="strict")
        except UnicodeDecodeError:
            raise _malformed("a did:web path segment is not UTF-8") from None
        if segment in (".", "..") or any(ch in "/\\\x7f" or ord(ch) < 0x20 for ch in segment):
            raise _malformed("a did:web path segment is not a plain path segment")
        segments.append(quote(segment, safe=""))
    tail = "/".join([*segments, "did.json"]) if segments else ".well-known/did.json"
    return f"{'http' if insecure else 'https'}://{netloc}/{tail}"


# ----------------------------------------------------------------------------------------------- did:key


def _b58encode(data: bytes) -> str:
    number, digits = int.from_bytes(data, "big"), []
    while number:
        number, rest = divmod(number, 58)
        digits.append(_B58_ALPHABET[rest])
    zeros = len(data) - len(data.lstrip(b"\0"))
    return "1" * zeros + "".join(reversed(digits))


def _b58decode(text: str) -> bytes:
    number = 0
    for ch in text:
        digit = _B58_INDEX.get(ch)
        if digit is None:
            raise _malformed("not base58btc")
        number = number * 58 + digit
    zeros = len(text) - len(text.lstrip("1"))
    return b"\0" * zeros + number.to_bytes((number.bit_length() + 7) // 8, "big")


def multikey_public_key(multibase: str) -> PublicKey:
    """A ``publicKeyMultibase`` (base58btc 'z', multicodec ed25519-pub or p256-pub) -> a public key."""
    if not isinstance(multibase, str) or not multibase.startswith("z") or len(multibase) > 128:
        raise _malformed("the key is not multibase base58btc ('z')")
    data = _b58decode(multibase[1:])
    if len(data) < 3:
        raise _malformed("the multibase key is too short")
    prefix, raw = data[:2], data[2:]
    size = _KEY_LENGTHS.get(prefix)
    if size is None:
        raise VerificationFailed("the multicodec key type is not supported", slug="key-unsupported")
    if len(raw) != size:
        raise _malformed(f"the multicodec key is {len(raw)} bytes, not {size}")
    try:
        if prefix == _ED25519_PREFIX:
            return ed25519.Ed25519PublicKey.from_public_bytes(raw)
        if raw[0] not in (2, 3):
            raise ValueError("not a compressed point")
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
    except ValueError:
        raise _malformed("the multicodec key is not a valid public key") from None


def multikey_encode(key: AnyKey) -> str:
    """The base58btc multibase (``z...``) of a P-256 or Ed25519 public key, as did:key and Multikey use."""
    alg_for_key(key)  # refuses curves other than P-256
    public = (
        key.public_key() if isinstance(key, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey) else key
    )
    if isinstance(public, ec.EllipticCurvePublicKey):
        point = public.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint)
        return "z" + _b58encode(_P256_PREFIX + point)
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "z" + _b58encode(_ED25519_PREFIX + raw)


def make_did_key(public_key: AnyKey) -> str:
    return "did:key:" + multikey_encode(public_key)


def did_key_public_key(did: str) -> PublicKey:
    if not _check_did(did).startswith("did:key:"):
        raise _malformed("not a did:key DID")
    return multikey_public_key(did.removeprefix("did:key:"))


# ----------------------------------------------------------------------------------------------- did:jwk


def make_did_jwk(jwk: Mapping[str, Any]) -> str:
    """``did:jwk`` of the public members of ``jwk`` (RFC 7638 set), as compact JSON with sorted names."""
    public = public_jwk_dict(public_key_from_jwk(jwk))
    return "did:jwk:" + b64url_encode(json.dumps(public, sort_keys=True, separators=(",", ":")).encode())


def did_jwk_document(did: str) -> dict[str, Any]:
    """The DID document of a ``did:jwk`` (did:jwk spec, "To create the DID Document"), one method ``#0``."""
    if not _check_did(did).startswith("did:jwk:") or ":" in did.removeprefix("did:jwk:"):
        raise _malformed("not a did:jwk DID")
    jwk = load_json_object(
        b64url_decode(did.removeprefix("did:jwk:"), slug="did-malformed"), slug="did-malformed"
    )
    public_key_from_jwk(jwk)  # a public P-256 or Ed25519 key, or an error
    method_id = f"{did}#0"
    use = jwk.get("use")
    doc: dict[str, Any] = {
        "@context": ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/suites/jws-2020/v1"],
        "id": did,
        "verificationMethod": [
            {"id": method_id, "type": "JsonWebKey2020", "controller": did, "publicKeyJwk": jwk}
        ],
    }
    if use != "enc":
        for relationship in (
            "assertionMethod",
            "authentication",
            "capabilityInvocation",
            "capabilityDelegation",
        ):
            doc[relationship] = [method_id]
    if use != "sig":
        doc["keyAgreement"] = [method_id]
    return doc


# ------------------------------------------------------------------------------------------ resolve_key


def _absolute(ref: str, did: str) -> str:
    return did + ref if ref.startswith("#") else ref


def _parse_document(doc: object, did: str) -> Any:  # noqa: ANN401 - pydid is untyped
    if not isinstance(doc, dict):
        raise MalformedInput("the DID document is not a JSON object", slug="did-document-malformed")
    if doc.get("id") != did:
        raise VerificationFailed(f"the DID document is not the one of {did}", slug="did-document-mismatch")
    try:
        return pydid.deserialize_document(doc, strict=True)
    except Exception as exc:  # pydid's validators leak ValueError, TypeError, AttributeError, IndexError...
        raise MalformedInput(f"not a DID document: {exc}", slug="did-document-malformed") from None


def _method_key(method: Any) -> PublicKey:  # noqa: ANN401 - pydid is untyped
    kind = method.type
    if kind in ("JsonWebKey2020", "JsonWebKey") and isinstance(method.public_key_jwk, dict):
        return public_key_from_jwk(method.public_key_jwk)
    if kind == "Multikey" and isinstance(method.public_key_multibase, str):
        return multikey_public_key(method.public_key_multibase)
    raise VerificationFailed(f"verification method type {kind!r} is not supported", slug="key-unsupported")


def key_from_document(doc: object, did_url: str, *, purpose: str = "assertionMethod") -> PublicKey:
    """The key ``did_url`` names in ``doc`` (already resolved), authorized for ``purpose``."""
    if purpose not in RELATIONSHIPS:
        raise ValueError(f"unknown verification relationship {purpose!r}")
    did, fragment = split_did_url(did_url)
    document = _parse_document(doc, did)
    methods = list(document.verification_method or [])
    allowed: list[str] = []
    for entry in getattr(document, RELATIONSHIPS[purpose]) or []:
        if isinstance(entry, str):
            allowed.append(_absolute(entry, did))
        else:
            methods.append(entry)
            allowed.append(_absolute(entry.id, did))
    if fragment is None:
        if len(set(allowed)) != 1:
            raise VerificationFailed(f"{did} has no single {purpose} key; name one", slug="unknown-kid")
        wanted = allowed[0]
    else:
        wanted = f"{did}#{fragment}"
    found = [m for m in methods if _absolute(m.id, did) == wanted]
    if not found:
        raise VerificationFailed(f"{wanted} is not a verification method of {did}", slug="unknown-kid")
    if wanted not in allowed:
        raise VerificationFailed(f"{wanted} is not listed under {purpose}", slug="did-key-not-authorized")
    return _method_key(found[0])


def resolve_key(did_url: str, resolver: DidResolver, *, purpose: str = "assertionMethod") -> PublicKey:
    """The public key a DID URL names, authorized for ``purpose``; did:jwk and did:key need no resolver."""
    if purpose not in RELATIONSHIPS:
        raise ValueError(f"unknown verification relationship {purpose!r}")
    did, fragment = split_did_url(did_url)
    if did.startswith("did:key:"):
        key = did_key_public_key(did)
        if fragment is not None and fragment != did.removeprefix("did:key:"):
            raise VerificationFailed(f"{did_url} is not the key of {did}", slug="unknown-kid")
        if purpose not in _DID_KEY_PURPOSES:
            raise VerificationFailed(f"a did:key is not a {purpose} key", slug="did-key-not-authorized")
        return key
    doc = did_jwk_document(did) if did.startswith("did:jwk:") else resolver.resolve(did)
    return key_from_document(doc, did_url, purpose=purpose)
