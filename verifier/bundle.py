"""Offline trust bundles: everything a kiosk without network needs, in one signed file.

A bundle holds the trusted issuers' DID documents, every status list they publish (each still signed by its
issuer), the log's verifier key and latest checkpoint (signed by the log), and the witness policy. The whole
is a JWS (``typ: imi-trust-bundle+jwt``) signed by the verifier service that built it, with ``exp`` = built
time + max age: a kiosk started from it refuses to verify, clearly, once it is older than that.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kernel.did import StaticResolver, did_web_to_url
from kernel.errors import InfrastructureFailure, MalformedInput, VerificationFailed
from kernel.jose import (
    PrivateKey,
    decode_jws_unverified,
    jwk_thumbprint,
    public_jwk_dict,
    public_key_from_jwk,
    sign_jws,
    verify_jws,
)
from verifier.fetch import Fetched, Fetcher

BUNDLE_TYP = "imi-trust-bundle+jwt"


@dataclass(frozen=True)
class TrustBundle:
    issued_at: int
    expires_at: int
    trusted_issuers: tuple[str, ...]
    issuers: Mapping[str, dict[str, Any]]  # DID -> DID document
    status_lists: Mapping[str, str]  # URL -> status list credential (vc+jwt)
    log_vkey: str | None
    checkpoint: str | None
    witnesses: tuple[str, ...]
    witness_threshold: int
    signer_thumbprint: str

    def resolver(self) -> StaticResolver:
        return StaticResolver(self.issuers)


class BundleFetcher:
    """``Fetcher`` answering only from the bundle's status lists (a kiosk offline fetches nothing else)."""

    def __init__(self, bundle: TrustBundle) -> None:
        self._lists = bundle.status_lists

    def get(self, url: str, headers: Mapping[str, str] | None = None) -> Fetched:
        body = self._lists.get(url)
        if body is None:
            raise InfrastructureFailure(f"{url} is not in the offline bundle.", slug="status-unavailable")
        return Fetched(200, body.encode(), {})


def _get_json(fetcher: Fetcher, url: str) -> Any:  # noqa: ANN401 - JSON
    fetched = fetcher.get(url)
    if fetched.status != 200:
        raise InfrastructureFailure(f"GET {url} answered {fetched.status}.", slug="remote-unreachable")
    return json.loads(fetched.body)


def build_bundle(
    fetcher: Fetcher,
    *,
    trusted_issuers: tuple[str, ...],
    log_url: str | None,
    witnesses: tuple[str, ...],
    witness_threshold: int,
    max_age: int,
    now: int,
    key: PrivateKey,
    kid: str,
) -> str:
    """Fetch the public material of ``trusted_issuers`` (did:web) and the log, and sign it as a bundle."""
    issuers: dict[str, dict[str, Any]] = {}
    lists: dict[str, str] = {}
    for did in trusted_issuers:
        doc_url = did_web_to_url(did)
        issuers[did] = _get_json(fetcher, doc_url)
        base = doc_url.removesuffix("/.well-known/did.json")
        for url in _get_json(fetcher, f"{base}/issuer/status").get("lists", []):
            fetched = fetcher.get(url)
            if fetched.status == 200:
                lists[url] = fetched.body.decode("ascii", errors="replace").strip()
    vkey = checkpoint = None
    if log_url:
        vkey = fetcher.get(f"{log_url}/vkey").body.decode().strip()
        checkpoint = fetcher.get(f"{log_url}/checkpoint").body.decode()
    claims = {
        "iat": now,
        "exp": now + max_age,
        "trusted_issuers": list(trusted_issuers),
        "issuers": issuers,
        "status_lists": lists,
        "log_vkey": vkey,
        "checkpoint": checkpoint,
        "witnesses": list(witnesses),
        "witness_threshold": witness_threshold,
    }
    return sign_jws(claims, key, typ=BUNDLE_TYP, kid=kid, extra_headers={"jwk": public_jwk_dict(key)})


def open_bundle(token: str, *, pinned_thumbprint: str | None, now: int) -> TrustBundle:
    """Verify a bundle's signature (against the pinned key, if given) and its age. Raises ``VerificationFailed``."""
    try:
        header = decode_jws_unverified(token.strip()).header
        jwk = header.get("jwk")
        key = public_key_from_jwk(jwk if isinstance(jwk, dict) else {})
    except MalformedInput as exc:
        raise VerificationFailed(
            f"The trust bundle is malformed: {exc.detail}", slug="bundle-invalid"
        ) from exc
    thumbprint = jwk_thumbprint(key)
    if pinned_thumbprint and thumbprint != pinned_thumbprint:
        raise VerificationFailed("The trust bundle is signed by an unexpected key.", slug="bundle-untrusted")
    try:
        claims = verify_jws(token.strip(), key, expected_typ=BUNDLE_TYP).payload
    except VerificationFailed as exc:
        raise VerificationFailed(
            f"The trust bundle does not verify: {exc.detail}", slug="bundle-invalid"
        ) from exc
    bundle = TrustBundle(
        issued_at=int(claims["iat"]),
        expires_at=int(claims["exp"]),
        trusted_issuers=tuple(claims.get("trusted_issuers", [])),
        issuers=dict(claims.get("issuers", {})),
        status_lists=dict(claims.get("status_lists", {})),
        log_vkey=claims.get("log_vkey"),
        checkpoint=claims.get("checkpoint"),
        witnesses=tuple(claims.get("witnesses", [])),
        witness_threshold=int(claims.get("witness_threshold", 0)),
        signer_thumbprint=thumbprint,
    )
    check_fresh(bundle, now)
    return bundle


def check_fresh(bundle: TrustBundle, now: int) -> None:
    if now > bundle.expires_at:
        raise VerificationFailed(
            "The offline trust bundle is older than its maximum age; run `imi verifier sync` again.",
            slug="bundle-expired",
        )
