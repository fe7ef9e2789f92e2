"""The wallet as an OpenID4VCI 1.0 client: redeem a pre-authorized credential offer with the PIN.

Any conformant issuer works: the offer names the issuer, whose metadata names its endpoints (sections 4.1,
12.2, 6, 7, 8); the holder key is proven with an ``openid4vci-proof+jwt`` (Appendix F.1).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from kernel.errors import InfrastructureFailure, MalformedInput, VerificationFailed
from kernel.jose import PrivateKey, public_jwk_dict, sign_jws

PRE_AUTH_GRANT = "urn:ietf:params:oauth:grant-type:pre-authorized_code"


@dataclass(frozen=True)
class CredentialOffer:
    credential_issuer: str
    configuration_id: str
    pre_authorized_code: str
    needs_pin: bool


@dataclass(frozen=True)
class Redeemed:
    credential: str
    configuration_id: str
    format: str
    receipt: dict[str, Any] | None


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _check_origin(url: str, allowed: tuple[str, ...] | None) -> None:
    # The wallet fetches what an offer names: only issuers it trusts, or a QR could make it probe the network.
    if allowed is not None and _origin(url) not in {_origin(a) for a in allowed}:
        raise VerificationFailed(
            "This offer comes from an issuer this wallet does not know.", slug="issuer-untrusted"
        )


def parse_offer(
    text: str, http: httpx.Client | None = None, *, allowed_issuers: tuple[str, ...] | None = None
) -> CredentialOffer:
    """Parse ``openid-credential-offer://?credential_offer=...`` (or ``credential_offer_uri``); with
    ``allowed_issuers`` refuse any other issuer (``issuer-untrusted``) before fetching anything."""
    try:
        query = parse_qs(urlsplit(text.strip()).query)
        if "credential_offer_uri" in query:
            _check_origin(query["credential_offer_uri"][0], allowed_issuers)
        if "credential_offer" in query:
            offer = json.loads(query["credential_offer"][0])
        elif "credential_offer_uri" in query and http is not None:
            offer = http.get(query["credential_offer_uri"][0]).json()  # origin checked by the caller first
        else:
            raise ValueError("no offer")
        grant = offer["grants"][PRE_AUTH_GRANT]
        _check_origin(str(offer["credential_issuer"]), allowed_issuers)
        return CredentialOffer(
            credential_issuer=str(offer["credential_issuer"]).rstrip("/"),
            configuration_id=str(offer["credential_configuration_ids"][0]),
            pre_authorized_code=str(grant["pre-authorized_code"]),
            needs_pin="tx_code" in grant,
        )
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise MalformedInput(
            "This is not a credential offer with a pre-authorized code.", slug="offer-malformed"
        ) from exc


def _json(resp: httpx.Response, what: str) -> dict[str, Any]:
    try:
        body = resp.json()
    except ValueError:
        body = {}
    if resp.status_code >= 500:
        raise InfrastructureFailure(
            f"The issuer failed at {what} ({resp.status_code}).", slug="issuer-unavailable"
        )
    if resp.status_code >= 400:
        # pass the issuer's own problem type on: the citizen needs to know "wrong PIN" from "expired offer"
        slug = str(body.get("type", "")).rsplit(":", 1)[-1] or "issuer-refused"
        raise VerificationFailed(str(body.get("detail") or body.get("error_description") or what), slug=slug)
    if not isinstance(body, dict):
        raise InfrastructureFailure(f"The issuer sent no JSON object at {what}.", slug="issuer-unavailable")
    return body


def redeem(
    http: httpx.Client, offer: CredentialOffer, *, pin: str | None, holder_key: PrivateKey
) -> Redeemed:
    """Token (code + PIN), nonce, credential request with a key proof: the credential bound to ``holder_key``."""
    issuer = offer.credential_issuer
    meta = _json(http.get(f"{issuer}/.well-known/openid-credential-issuer"), "issuer metadata")
    config = meta.get("credential_configurations_supported", {}).get(offer.configuration_id)
    if meta.get("credential_issuer", "").rstrip("/") != issuer or not isinstance(config, dict):
        raise VerificationFailed(
            "The issuer metadata does not match the offer.", slug="offer-metadata-mismatch"
        )
    auth_server = (meta.get("authorization_servers") or [issuer])[0].rstrip("/")
    token_endpoint = _json(http.get(f"{auth_server}/.well-known/oauth-authorization-server"), "AS metadata")[
        "token_endpoint"
    ]
    form = {"grant_type": PRE_AUTH_GRANT, "pre-authorized_code": offer.pre_authorized_code}
    if offer.needs_pin:
        form["tx_code"] = pin or ""
    token = _json(http.post(token_endpoint, data=form), "the token endpoint")
    nonce = (
        _json(http.post(meta["nonce_endpoint"]), "the nonce endpoint")["c_nonce"]
        if meta.get("nonce_endpoint")
        else None
    )
    claims: dict[str, Any] = {"aud": issuer, "iat": int(time.time())}
    if nonce:
        claims["nonce"] = nonce
    proof = sign_jws(
        claims, holder_key, typ="openid4vci-proof+jwt", extra_headers={"jwk": public_jwk_dict(holder_key)}
    )
    body = _json(
        http.post(
            meta["credential_endpoint"],
            headers={"Authorization": f"Bearer {token['access_token']}"},
            json={"credential_configuration_id": offer.configuration_id, "proofs": {"jwt": [proof]}},
        ),
        "the credential endpoint",
    )
    credential = body["credentials"][0]["credential"]
    return Redeemed(
        credential, offer.configuration_id, str(config.get("format", "")), body.get("imi_anchor_receipt")
    )
