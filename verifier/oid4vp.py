"""OpenID for Verifiable Presentations 1.0 pieces (pure): DCQL queries and the signed request object.

Cross-device flow: the kiosk shows ``openid4vp://?client_id=...&request_uri=...`` (section 5.10); the wallet
fetches the request object (``typ: oauth-authz-req+jwt``) and answers by ``direct_post`` to ``response_uri``
with ``vp_token`` = ``{"<query id>": ["<SD-JWT+KB>"]}``. The client identifier uses the
``decentralized_identifier:`` prefix with the verifier's did:web, so a wallet can check the request's signature.
The KB-JWT ``aud`` is the full client identifier, prefix included (Appendix B.3.6).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

from kernel.errors import MalformedInput
from kernel.jose import ALLOWED_ALGS

CLIENT_ID_PREFIX = "decentralized_identifier:"
REQUEST_TYP = "oauth-authz-req+jwt"
QUERY_ID = "imi_credential"
_CLAIM = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
# Our credentials are W3C VCDM 2.0 secured as vc+sd-jwt; OpenID4VP 1.0 has no format identifier for them, so
# we use the media type as the format, as the OpenID4VCI 1.1 drafts do for issuance.
FORMAT = "vc+sd-jwt"


def dcql_query(claims: Sequence[str], credential_type: str = "RealNameIdentityCredential") -> dict[str, Any]:
    """A DCQL query (section 6) for one credential of ``credential_type`` with the named subject claims."""
    if not claims or len(claims) > 20 or not all(isinstance(c, str) and _CLAIM.match(c) for c in claims):
        raise MalformedInput("Ask for 1 to 20 claim names (letters, digits, _).", slug="dcql-invalid")
    if not _CLAIM.match(credential_type):
        raise MalformedInput("Unknown credential type.", slug="dcql-invalid")
    return {
        "credentials": [
            {
                "id": QUERY_ID,
                "format": FORMAT,
                "meta": {"type_values": [["VerifiableCredential", credential_type]]},
                "claims": [{"path": ["credentialSubject", c]} for c in dict.fromkeys(claims)],
            }
        ]
    }


def requested_claims(dcql: dict[str, Any]) -> list[str]:
    """The subject claim names a DCQL query of :func:`dcql_query` asks for."""
    try:
        return [str(c["path"][1]) for c in dcql["credentials"][0]["claims"]]
    except (KeyError, IndexError, TypeError):
        raise MalformedInput("Malformed DCQL query.", slug="dcql-invalid") from None


def request_object(
    *, client_id: str, response_uri: str, nonce: str, state: str, dcql: dict[str, Any], iat: int
) -> dict[str, Any]:
    """The claims of the signed Authorization Request (sections 5.1, 5.2, 8.2)."""
    algs = sorted(ALLOWED_ALGS)
    return {
        "client_id": client_id,
        "response_type": "vp_token",
        "response_mode": "direct_post",
        "response_uri": response_uri,
        "nonce": nonce,
        "state": state,
        "dcql_query": dcql,
        "client_metadata": {
            "vp_formats_supported": {FORMAT: {"sd-jwt_alg_values": algs, "kb-jwt_alg_values": algs}}
        },
        "aud": "https://self-issued.me/v2",
        "iat": iat,
        "exp": iat + 300,
    }


def request_qr_text(*, client_id: str, request_uri: str) -> str:
    """The text of the kiosk's QR code (section 5.10, request by reference)."""
    return "openid4vp://?" + urlencode({"client_id": client_id, "request_uri": request_uri})
