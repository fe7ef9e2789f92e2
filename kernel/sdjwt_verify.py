"""SD-JWT verification (RFC 9901 section 7): Issuer signature, disclosures, Key Binding.

What is checked here, in this order:

1. form (:func:`kernel.sdjwt.parse_sd_jwt`): size, ``~`` structure, every disclosure decodes; no disclosure
   is named ``_sd``, ``...`` or ``_sd_alg`` (``disclosure-name-forbidden``);
2. the Issuer-signed JWT under ``issuer_key`` with an allowed ``alg`` and a ``typ`` in ``expected_typ``
   (:func:`kernel.jose.verify_jws`); ``_sd_alg`` is absent or ``sha-256`` (``sd-alg-unsupported``) and
   appears nowhere but at the top (``sd-alg-misplaced``);
3. the disclosures (section 7.1): each digest in an ``_sd`` array or a ``{"...": digest}`` element that
   matches a disclosure is replaced by it, recursively; an object-property disclosure must sit in ``_sd``
   and an array-element disclosure in ``...`` (``disclosure-format-mismatch``); a disclosed name must not
   exist already at its level (``claim-name-collision``); a digest met twice anywhere, or a disclosure sent
   twice, is refused (``disclosure-duplicate``); every disclosure must be referenced
   (``disclosure-unreferenced``); ``_sd``, ``_sd_alg`` and unmatched ``...`` elements are removed;
4. the Key Binding JWT (section 7.3) when present, and required when ``require_kb``: missing
   (``kb-missing``), no ``cnf.jwk`` (``kb-holder-key-missing``), signature under ``cnf.jwk`` and ``typ:
   kb+jwt`` (``kb-signature-invalid``, ``kb-typ-mismatch``, ``kb-alg-not-allowed``, ...), string ``aud``,
   ``nonce``, ``sd_hash`` and integer ``iat`` (``kb-claims-invalid``), ``sd_hash`` (``kb-sd-hash-mismatch``),
   ``aud`` (``kb-audience-mismatch``), ``nonce`` (``kb-nonce-mismatch``), ``iat`` within ``iat_window``
   seconds of ``now`` either way (``kb-stale``).

Not checked here: the Issuer-signed JWT's ``exp``, ``nbf``, ``iat``, ``iss`` and status. They are in
``VerifiedSdJwt.claims`` for the caller's verification rules, which own the clock skew and trust policy.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass, field
from typing import Any

from kernel.errors import MalformedInput, VerificationFailed
from kernel.jose import AnyKey, public_key_from_jwk, verify_jws
from kernel.sdjwt import (
    KB_JWT_TYP,
    MAX_NESTING,
    SD_ALG,
    ClaimPath,
    Disclosure,
    ParsedSdJwt,
    is_array_reference,
    parse_sd_jwt,
    sd_hash,
)


@dataclass(frozen=True)
class VerifiedSdJwt:
    header: dict[str, Any]  # of the Issuer-signed JWT
    issuer_payload: dict[str, Any]  # as signed: digests, _sd_alg and all
    claims: dict[str, Any]  # processed: disclosures applied, _sd / _sd_alg / undisclosed "..." removed
    disclosed_paths: tuple[ClaimPath, ...]  # in the order met; array positions as in the Issuer's array
    holder_jwk: dict[str, Any] | None  # cnf.jwk of the processed claims
    kb_payload: dict[str, Any] | None  # None when no Key Binding JWT came


@dataclass
class _Resolver:
    by_digest: dict[str, Disclosure]
    seen: set[str] = field(default_factory=set)
    paths: list[ClaimPath] = field(default_factory=list)

    def top(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        return self._object(dict(payload), (), 0)

    def value(self, node: object, path: ClaimPath, depth: int) -> object:
        if depth > MAX_NESTING:
            raise VerificationFailed(f"claims nest deeper than {MAX_NESTING} levels", slug="sd-jwt-too-deep")
        if isinstance(node, dict):
            return self._object(node, path, depth)
        if isinstance(node, list):
            return self._array(node, path, depth)
        return node

    def _claim(self, digest: object) -> Disclosure | None:
        if not isinstance(digest, str):
            raise MalformedInput("a digest must be a string", slug="sd-jwt-malformed")
        if digest in self.seen:
            raise VerificationFailed(f"digest {digest} occurs more than once", slug="disclosure-duplicate")
        self.seen.add(digest)
        return self.by_digest.get(digest)  # None: a decoy or an undisclosed claim

    def _object(self, node: dict[str, Any], path: ClaimPath, depth: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, child in node.items():
            if name == "_sd_alg" and depth > 0:
                raise VerificationFailed("_sd_alg may appear at the top level only", slug="sd-alg-misplaced")
            if name not in ("_sd", "_sd_alg"):
                out[name] = self.value(child, (*path, name), depth + 1)
        digests = node.get("_sd", [])
        if not isinstance(digests, list):
            raise MalformedInput("_sd must be an array of digests", slug="sd-jwt-malformed")
        for digest in digests:
            disclosure = self._claim(digest)
            if disclosure is None:
                continue
            if disclosure.name is None:
                raise VerificationFailed(
                    "an array-element disclosure is referenced from _sd", slug="disclosure-format-mismatch"
                )
            if disclosure.name in node or disclosure.name in out:
                raise VerificationFailed(
                    f"disclosed claim {disclosure.name!r} already exists at {path}",
                    slug="claim-name-collision",
                )
            claim_path = (*path, disclosure.name)
            self.paths.append(claim_path)
            out[disclosure.name] = self.value(disclosure.value, claim_path, depth + 1)
        return out

    def _array(self, node: list[Any], path: ClaimPath, depth: int) -> list[Any]:
        out: list[Any] = []
        for index, element in enumerate(node):
            if not is_array_reference(element):
                out.append(self.value(element, (*path, index), depth + 1))
                continue
            disclosure = self._claim(element["..."])
            if disclosure is None:
                continue
            if disclosure.name is not None:
                raise VerificationFailed(
                    "an object-property disclosure is referenced as an array element",
                    slug="disclosure-format-mismatch",
                )
            self.paths.append((*path, index))
            out.append(self.value(disclosure.value, (*path, index), depth + 1))
        return out


def resolve_disclosures(
    payload: Mapping[str, Any], disclosures: tuple[Disclosure, ...]
) -> tuple[dict[str, Any], tuple[ClaimPath, ...]]:
    """Apply ``disclosures`` to an Issuer-signed payload (section 7.1 steps 3 to 5); the payload's
    signature must have been checked already. Returns the processed claims and the disclosed claim paths."""
    by_digest: dict[str, Disclosure] = {}
    for disclosure in disclosures:
        if disclosure.digest in by_digest:
            raise VerificationFailed("the same disclosure was sent twice", slug="disclosure-duplicate")
        by_digest[disclosure.digest] = disclosure
    resolver = _Resolver(by_digest)
    claims = resolver.top(payload)
    unreferenced = by_digest.keys() - resolver.seen
    if unreferenced:
        raise VerificationFailed(
            f"{len(unreferenced)} disclosure(s) are referenced by no digest", slug="disclosure-unreferenced"
        )
    return claims, tuple(resolver.paths)


class AnyNonce:
    """Type of :data:`ANY_NONCE`."""

    def __repr__(self) -> str:
        return "ANY_NONCE"


# The verifier issued no nonce (a QR shown to any kiosk): the KB-JWT's own nonce is accepted, and freshness must
# come from ``iat`` and a replay cache instead.
ANY_NONCE = AnyNonce()


def _verify_kb(
    parsed: ParsedSdJwt,
    holder_jwk: dict[str, Any] | None,
    *,
    expected_aud: str | None,
    expected_nonce: str | AnyNonce | None,
    now: int,
    iat_window: int,
) -> dict[str, Any]:
    assert parsed.kb_jwt is not None
    if holder_jwk is None:
        raise VerificationFailed("the SD-JWT names no holder key (cnf.jwk)", slug="kb-holder-key-missing")
    holder_key = public_key_from_jwk(holder_jwk)
    try:
        kb = verify_jws(parsed.kb_jwt, holder_key, expected_typ=KB_JWT_TYP)
    except VerificationFailed as exc:
        raise VerificationFailed(f"Key Binding JWT: {exc.detail}", slug=f"kb-{exc.slug}") from None
    claims = kb.payload
    iat, aud, nonce = claims.get("iat"), claims.get("aud"), claims.get("nonce")
    if not isinstance(iat, int) or isinstance(iat, bool) or not isinstance(aud, str):
        raise VerificationFailed("the KB-JWT needs an integer iat and a string aud", slug="kb-claims-invalid")
    if not isinstance(nonce, str) or not isinstance(claims.get("sd_hash"), str):
        raise VerificationFailed("the KB-JWT needs a string nonce and sd_hash", slug="kb-claims-invalid")
    if claims["sd_hash"] != sd_hash(parsed.sd_jwt):
        raise VerificationFailed("the KB-JWT sd_hash does not match the SD-JWT", slug="kb-sd-hash-mismatch")
    if expected_aud is not None and aud != expected_aud:
        raise VerificationFailed("the KB-JWT is meant for another audience", slug="kb-audience-mismatch")
    if isinstance(expected_nonce, str) and nonce != expected_nonce:
        raise VerificationFailed("the KB-JWT nonce is not the one issued", slug="kb-nonce-mismatch")
    if abs(now - iat) > iat_window:
        raise VerificationFailed(f"the KB-JWT iat is {iat - now:+d}s from now", slug="kb-stale")
    return claims


def verify_sd_jwt(
    text: str | ParsedSdJwt,
    *,
    issuer_key: AnyKey,
    expected_typ: str | Set[str],
    require_kb: bool,
    expected_aud: str | None,
    expected_nonce: str | AnyNonce | None,
    now: int,
    iat_window: int = 300,
) -> VerifiedSdJwt:
    """Verify an SD-JWT or SD-JWT+KB; see the module docstring for the checks (exp/nbf are not among them).

    With ``require_kb`` the caller must pass ``expected_aud`` and ``expected_nonce``. A KB-JWT that comes
    although not required is still verified in full; then aud and nonce are compared only if given. ``text``
    may come parsed already (``kernel.sdjwt.parse_sd_jwt``).
    """
    if require_kb and (expected_aud is None or expected_nonce is None):
        raise ValueError("require_kb needs expected_aud and expected_nonce")
    parsed = text if isinstance(text, ParsedSdJwt) else parse_sd_jwt(text)
    issuer = verify_jws(parsed.jwt, issuer_key, expected_typ=expected_typ)
    sd_alg = issuer.payload.get("_sd_alg", SD_ALG)
    if sd_alg != SD_ALG:
        raise VerificationFailed(f"_sd_alg {sd_alg!r} is not supported", slug="sd-alg-unsupported")
    claims, paths = resolve_disclosures(issuer.payload, parsed.disclosures)
    cnf = claims.get("cnf")
    holder_jwk = cnf.get("jwk") if isinstance(cnf, dict) else None
    holder_jwk = holder_jwk if isinstance(holder_jwk, dict) else None
    kb_payload = None
    if parsed.kb_jwt is None:
        if require_kb:
            raise VerificationFailed("a Key Binding JWT is required", slug="kb-missing")
    else:
        kb_payload = _verify_kb(
            parsed,
            holder_jwk,
            expected_aud=expected_aud,
            expected_nonce=expected_nonce,
            now=now,
            iat_window=iat_window,
        )
    return VerifiedSdJwt(issuer.header, issuer.payload, claims, paths, holder_jwk, kb_payload)
