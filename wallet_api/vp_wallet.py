"""The wallet as an OpenID4VP 1.0 wallet: read a kiosk's request, check who asks for what, answer it.

The request object must be signed (``typ: oauth-authz-req+jwt``) by a key of the verifier named in
``client_id`` (``decentralized_identifier:`` prefix, resolved as a DID); its ``client_id`` must equal the one in
the QR. Only then is the citizen shown the request; the answer is a ``direct_post`` to ``response_uri``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from kernel.did import DidResolver, resolve_key
from kernel.errors import InfrastructureFailure, MalformedInput, VerificationFailed
from kernel.jose import decode_jws_unverified, verify_jws

CLIENT_ID_PREFIX = "decentralized_identifier:"


@dataclass(frozen=True)
class VpRequest:
    client_id: str
    verifier_did: str
    response_uri: str
    nonce: str
    state: str
    query_id: str
    credential_types: tuple[str, ...]
    claims: tuple[str, ...]


def read_request(qr_text: str, *, http: httpx.Client, resolver: DidResolver) -> VpRequest:
    """Fetch and check the request object named by an ``openid4vp://`` QR code."""
    query = parse_qs(urlsplit(qr_text.strip()).query)
    client_id = (query.get("client_id") or [""])[0]
    request_uri = (query.get("request_uri") or [""])[0]
    if (
        not qr_text.startswith("openid4vp://")
        or not client_id
        or not request_uri.startswith(("https://", "http://"))
    ):
        raise MalformedInput("This is not an OpenID4VP request QR code.", slug="vp-request-malformed")
    if not client_id.startswith(CLIENT_ID_PREFIX):
        raise VerificationFailed(
            "Only verifiers identified by a DID are accepted.", slug="vp-client-unsupported"
        )
    resp = http.get(request_uri)
    if resp.status_code != 200:
        raise InfrastructureFailure(
            f"The verifier answered {resp.status_code}.", slug="vp-request-unavailable"
        )
    jwt = resp.text.strip()
    did = client_id.removeprefix(CLIENT_ID_PREFIX)
    kid = str(decode_jws_unverified(jwt).header.get("kid", ""))
    if not kid.startswith(did + "#"):
        raise VerificationFailed(
            "The request is not signed by the verifier it names.", slug="vp-request-signature-invalid"
        )
    claims = verify_jws(
        jwt, resolve_key(kid, resolver, purpose="assertionMethod"), expected_typ="oauth-authz-req+jwt"
    ).payload
    if claims.get("client_id") != client_id:
        raise VerificationFailed("client_id differs between QR and request.", slug="vp-client-mismatch")
    if claims.get("response_mode") != "direct_post" or claims.get("response_type") != "vp_token":
        raise VerificationFailed(
            "Only response_mode=direct_post with vp_token is supported.", slug="vp-request-unsupported"
        )
    return _parse_request(claims, client_id, did)


def _parse_request(claims: dict[str, Any], client_id: str, did: str) -> VpRequest:
    try:
        query = claims["dcql_query"]["credentials"][0]
        types = tuple(query.get("meta", {}).get("type_values", [[]])[0])
        wanted = tuple(str(c["path"][-1]) for c in query.get("claims", []))
        return VpRequest(
            client_id=client_id,
            verifier_did=did,
            response_uri=str(claims["response_uri"]),
            nonce=str(claims["nonce"]),
            state=str(claims.get("state", "")),
            query_id=str(query["id"]),
            credential_types=types,
            claims=wanted,
        )
    except (KeyError, IndexError, TypeError, AttributeError) as exc:
        raise MalformedInput(
            "The request's DCQL query is not understood.", slug="vp-request-malformed"
        ) from exc


def post_answer(http: httpx.Client, request: VpRequest, presentation: str) -> dict[str, Any]:
    """``direct_post`` (section 8.2): form-encoded ``vp_token`` keyed by the DCQL query id, and ``state``."""
    vp_token = json.dumps({request.query_id: [presentation]})
    resp = http.post(request.response_uri, data={"vp_token": vp_token, "state": request.state})
    try:
        body = resp.json()
    except ValueError:
        body = {}
    if resp.status_code >= 500:
        raise InfrastructureFailure("The verifier failed.", slug="vp-verifier-unavailable")
    if resp.status_code >= 400:
        slug = str(body.get("type", "")).rsplit(":", 1)[-1] or "vp-refused"
        raise VerificationFailed(str(body.get("detail", "The verifier refused the presentation.")), slug=slug)
    return body if isinstance(body, dict) else {}
