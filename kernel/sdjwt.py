"""SD-JWT (RFC 9901): disclosures, issuance, parsing and the Holder's presentation with a Key Binding JWT.

Verification lives in :mod:`kernel.sdjwt_verify` (``verify_sd_jwt``); both share the types defined here.

Serialization (RFC 9901 section 4): ``<Issuer-signed JWT>~<Disclosure 1>~...~<Disclosure N>~`` is an SD-JWT;
an SD-JWT+KB appends the Key Binding JWT after the last ``~``. A Disclosure is the base64url of the JSON
array ``[salt, name, value]`` (an object property) or ``[salt, value]`` (an array element); its digest is the
base64url SHA-256 of that base64url text exactly as sent. Object properties hide as digests in the object's
``_sd`` array (sorted, padded with decoy digests); array elements hide as ``{"...": digest}`` in place.

Claim paths: a claim is named by a tuple from the top of the JWT claims, strings for object members and ints
for array positions, e.g. ``("address", "locality")`` or ``("nationalities", 0)``. An array position is
always the position in the Issuer's array, in issuance, presentation and verification alike (a Verifier's
processed array drops undisclosed elements, so there the same element may sit at a lower index).

Pure: time (``iat``) and randomness (``rng(n) -> n random bytes``, salts and decoys) are parameters.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from kernel.errors import MalformedInput, VerificationFailed
from kernel.jose import (
    PrivateKey,
    b64url_decode,
    b64url_encode,
    decode_jws_unverified,
    dump_json,
    jwk_thumbprint,
    load_json,
    public_jwk_dict,
    public_key_from_jwk,
    sign_jws,
)

ClaimPath = tuple[str | int, ...]
Rng = Callable[[int], bytes]

SD_ALG = "sha-256"
KB_JWT_TYP = "kb+jwt"
MAX_SD_JWT_CHARS = 64 * 1024
MAX_NESTING = 64  # claim nesting, counted through disclosures into disclosures
SALT_BYTES = 16  # 128 bits, RFC 9901 section 9.3
# Names a disclosure may not carry: "_sd" and "..." by RFC 9901 section 4.2.1, "_sd_alg" as top-level only.
RESERVED_NAMES = frozenset({"_sd", "...", "_sd_alg"})


def digest_of(encoded: str) -> str:
    """base64url(SHA-256(ASCII of the encoded disclosure)), the value ``_sd`` and ``...`` carry."""
    return b64url_encode(hashlib.sha256(encoded.encode("ascii")).digest())


def sd_hash(sd_jwt: str) -> str:
    """The KB-JWT ``sd_hash``: SHA-256 over the SD-JWT up to and including its last ``~``."""
    return b64url_encode(hashlib.sha256(sd_jwt.encode("ascii")).digest())


def is_array_reference(element: object) -> bool:
    """True for an array element of the form ``{"...": <anything>}`` (exactly one member)."""
    return isinstance(element, dict) and len(element) == 1 and "..." in element


@dataclass(frozen=True)
class Disclosure:
    salt: str
    name: str | None  # None for an array element
    value: Any
    encoded: str
    digest: str


def make_disclosure(name: str | None, value: object, *, rng: Rng = secrets.token_bytes) -> Disclosure:
    """A fresh disclosure of ``name: value`` (or of an array element when ``name`` is None)."""
    if name is not None and name in RESERVED_NAMES:
        raise ValueError(f"{name!r} cannot be a selectively disclosable claim name")
    salt = b64url_encode(rng(SALT_BYTES))
    array = [salt, value] if name is None else [salt, name, value]
    encoded = b64url_encode(dump_json(array))
    return Disclosure(salt, name, value, encoded, digest_of(encoded))


def parse_disclosure(encoded: str) -> Disclosure:
    """Decode one received disclosure strictly; its digest is taken over ``encoded`` as received."""
    array = load_json(b64url_decode(encoded, slug="disclosure-malformed"), slug="disclosure-malformed")
    if not isinstance(array, list) or len(array) not in (2, 3) or not isinstance(array[0], str):
        raise MalformedInput(
            "a disclosure is [salt, value] or [salt, name, value]", slug="disclosure-malformed"
        )
    name = None
    if len(array) == 3:
        name = array[1]
        if not isinstance(name, str):
            raise MalformedInput("a disclosure's claim name must be a string", slug="disclosure-malformed")
        if name in RESERVED_NAMES:
            raise VerificationFailed(
                f"a disclosure may not be named {name!r}", slug="disclosure-name-forbidden"
            )
    return Disclosure(array[0], name, array[-1], encoded, digest_of(encoded))


@dataclass(frozen=True)
class ParsedSdJwt:
    jwt: str  # the Issuer-signed JWT
    disclosures: tuple[Disclosure, ...]
    kb_jwt: str | None
    sd_jwt: str  # everything up to and including the last "~": what sd_hash covers


def parse_sd_jwt(text: str) -> ParsedSdJwt:
    """Split an SD-JWT or SD-JWT+KB (compact form) and decode its parts; nothing is verified yet."""
    if not isinstance(text, str):
        raise MalformedInput("an SD-JWT must be text", slug="sd-jwt-malformed")
    if len(text) > MAX_SD_JWT_CHARS:
        raise MalformedInput(f"the SD-JWT exceeds {MAX_SD_JWT_CHARS} characters", slug="too-large")
    parts = text.split("~")
    if len(parts) < 2 or not text.isascii() or any(not part for part in parts[:-1]):
        raise MalformedInput("an SD-JWT is <JWT>~<Disclosure>~...~[<KB-JWT>]", slug="sd-jwt-malformed")
    jwt, last = parts[0], parts[-1]
    decode_jws_unverified(jwt)
    disclosures = tuple(parse_disclosure(part) for part in parts[1:-1])
    if last:
        try:
            decode_jws_unverified(last)
        except MalformedInput as exc:
            raise MalformedInput(f"Key Binding JWT: {exc.detail}", slug=f"kb-{exc.slug}") from None
    return ParsedSdJwt(jwt, disclosures, last or None, text[: len(text) - len(last)])


# -------------------------------------------------------------------------------------------------- issuing


@dataclass(frozen=True)
class IssuedSdJwt:
    jwt: str
    disclosures: tuple[Disclosure, ...]
    payload: dict[str, Any]  # the signed payload, digests in place of the disclosable claims

    def serialize(self) -> str:
        return "~".join([self.jwt, *(d.encoded for d in self.disclosures)]) + "~"


def _check_claims(node: object, path: ClaimPath) -> None:
    if isinstance(node, dict):
        for name, child in node.items():
            if name in RESERVED_NAMES:
                raise ValueError(f"claims may not contain the reserved name {name!r} (at {path})")
            _check_claims(child, (*path, name))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            _check_claims(child, (*path, index))


@dataclass
class _Concealer:
    paths: frozenset[ClaimPath]
    decoys: int
    rng: Rng
    disclosures: list[Disclosure]
    used: set[ClaimPath]

    def conceal(self, node: object, path: ClaimPath) -> object:
        if isinstance(node, dict):
            out: dict[str, object] = {}
            digests: list[str] = []
            for name, child in node.items():
                value = self.conceal(child, (*path, name))
                if (*path, name) in self.paths:
                    digests.append(self._disclose(name, value, (*path, name)))
                else:
                    out[name] = value
            if digests:
                digests += [b64url_encode(hashlib.sha256(self.rng(32)).digest()) for _ in range(self.decoys)]
                out["_sd"] = sorted(digests)
            return out
        if isinstance(node, list):
            items: list[object] = []
            for index, child in enumerate(node):
                value = self.conceal(child, (*path, index))
                if (*path, index) in self.paths:
                    items.append({"...": self._disclose(None, value, (*path, index))})
                else:
                    items.append(value)
            return items
        return node

    def _disclose(self, name: str | None, value: object, path: ClaimPath) -> str:
        disclosure = make_disclosure(name, value, rng=self.rng)
        self.disclosures.append(disclosure)
        self.used.add(path)
        return disclosure.digest


def issue_sd_jwt(
    claims: Mapping[str, Any],
    *,
    sd_paths: Collection[ClaimPath],
    key: PrivateKey,
    typ: str,
    kid: str | None = None,
    decoys: int = 2,
    holder_jwk: Mapping[str, Any] | None = None,
    rng: Rng = secrets.token_bytes,
    extra_headers: Mapping[str, Any] | None = None,
) -> IssuedSdJwt:
    """Sign ``claims`` as an SD-JWT in which the claims named by ``sd_paths`` are selectively disclosable.

    A path below another disclosable path gives recursive disclosure (the inner claim is hidden inside the
    outer one's disclosure); a path below a plain claim gives structured disclosure. Every ``_sd`` array
    gets ``decoys`` decoy digests. ``holder_jwk`` (public members only) becomes ``cnf.jwk``; ``_sd_alg`` is
    always ``sha-256``. Raises ``ValueError`` for a path that names no claim or for reserved claim names.
    """
    _check_claims(claims, ())
    if holder_jwk is not None and "cnf" in claims:
        raise ValueError("claims already hold cnf; pass either cnf or holder_jwk")
    if decoys < 0:
        raise ValueError("decoys must be >= 0")
    paths = frozenset(tuple(path) for path in sd_paths)
    if () in paths:
        raise ValueError("the claims object itself cannot be selectively disclosable")
    concealer = _Concealer(paths, decoys, rng, [], set())
    payload = concealer.conceal(dict(claims), ())
    assert isinstance(payload, dict)
    missing = paths - concealer.used
    if missing:
        raise ValueError(f"sd_paths name no claim: {sorted(missing, key=str)}")
    payload["_sd_alg"] = SD_ALG
    if holder_jwk is not None:
        payload["cnf"] = {"jwk": public_jwk_dict(public_key_from_jwk(holder_jwk))}
    jwt = sign_jws(payload, key, typ=typ, kid=kid, extra_headers=extra_headers)
    return IssuedSdJwt(jwt, tuple(concealer.disclosures), payload)


# ---------------------------------------------------------------------------------------------- presenting


@dataclass
class _Selector:
    by_digest: dict[str, Disclosure]
    wanted: Callable[[ClaimPath], bool]
    chosen: set[str] = field(default_factory=set)
    seen: set[str] = field(default_factory=set)

    def walk(self, node: object, path: ClaimPath, chain: tuple[str, ...]) -> None:
        if len(path) > MAX_NESTING:  # every disclosure in the chain adds a step to the path
            raise MalformedInput(f"claims nest deeper than {MAX_NESTING} levels", slug="sd-jwt-too-deep")
        if isinstance(node, dict):
            for name, child in node.items():
                if name != "_sd":
                    self.walk(child, (*path, name), chain)
            digests = node.get("_sd")
            for digest in digests if isinstance(digests, list) else []:
                found = self.by_digest.get(digest) if isinstance(digest, str) else None
                if found is not None and found.name is not None:
                    self._consider(found, (*path, found.name), chain)
        elif isinstance(node, list):
            for index, element in enumerate(node):
                ref = element.get("...") if is_array_reference(element) else None
                found = self.by_digest.get(ref) if isinstance(ref, str) else None
                if found is not None and found.name is None:
                    self._consider(found, (*path, index), chain)
                elif ref is None:
                    self.walk(element, (*path, index), chain)

    def _consider(self, disclosure: Disclosure, path: ClaimPath, chain: tuple[str, ...]) -> None:
        if disclosure.digest in self.seen:  # referenced twice: no verifier accepts it, and no blow-up here
            return
        self.seen.add(disclosure.digest)
        chain = (*chain, disclosure.digest)
        if self.wanted(path):
            self.chosen.update(chain)  # the claim and every disclosure needed to reach it
        self.walk(disclosure.value, path, chain)


def _under_any(paths: Collection[ClaimPath]) -> Callable[[ClaimPath], bool]:
    prefixes = {tuple(path) for path in paths}

    def wanted(path: ClaimPath) -> bool:
        return any(path[: len(prefix)] == prefix for prefix in prefixes)

    return wanted


def present(
    issued_serialization: str,
    *,
    disclose: Collection[ClaimPath] | Callable[[ClaimPath], bool],
    holder_key: PrivateKey | None,
    aud: str | None = None,
    nonce: str | None = None,
    iat: int | None = None,
    extra_kb_claims: Mapping[str, Any] | None = None,
) -> str:
    """The Holder's presentation: the chosen disclosures, then a KB-JWT unless ``holder_key`` is None.

    ``disclose`` is either a predicate over claim paths or a collection of paths; a path in the collection
    discloses that claim and everything beneath it. Either way, the disclosures of the enclosing claims that
    are needed to reach a chosen one are kept too. The KB-JWT (``typ: kb+jwt``) carries ``iat``, ``aud``,
    ``nonce`` and ``sd_hash``; ``holder_key`` must match the credential's ``cnf.jwk`` if it has one.
    ``extra_kb_claims`` adds claims to the KB-JWT (RFC 9901 allows more; IMI puts the anchor receipt there).
    """
    parsed = parse_sd_jwt(issued_serialization)
    if parsed.kb_jwt is not None:
        raise MalformedInput("an issued SD-JWT carries no Key Binding JWT", slug="sd-jwt-malformed")
    wanted = disclose if callable(disclose) else _under_any(disclose)
    selector = _Selector({d.digest: d for d in parsed.disclosures}, wanted)
    payload = decode_jws_unverified(parsed.jwt).payload
    selector.walk(payload, (), ())
    kept = list({d.digest: d.encoded for d in parsed.disclosures if d.digest in selector.chosen}.values())
    sd_jwt = "~".join([parsed.jwt, *kept]) + "~"
    if holder_key is None:
        return sd_jwt
    if aud is None or nonce is None or iat is None:
        raise ValueError("a Key Binding JWT needs aud, nonce and iat")
    cnf = payload.get("cnf")
    cnf_jwk = cnf.get("jwk") if isinstance(cnf, dict) else None
    if isinstance(cnf_jwk, dict) and jwk_thumbprint(cnf_jwk) != jwk_thumbprint(holder_key):
        raise ValueError("holder_key is not the key the credential is bound to (cnf.jwk)")
    claims = {**(extra_kb_claims or {}), "iat": iat, "aud": aud, "nonce": nonce, "sd_hash": sd_hash(sd_jwt)}
    return sd_jwt + sign_jws(claims, holder_key, typ=KB_JWT_TYP)
