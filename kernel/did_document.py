"""The issuer's ``did:web`` identity: its DID and its DID document (built with pydid).

Every issuer key ever used stays in the document (retired ones too), so credentials signed before a rotation
keep verifying; ``assertionMethod`` lists them all, because what a key signed stays valid until revoked.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote, urlsplit

from pydid import DIDDocumentBuilder
from pydid.verification_method import JsonWebKey2020

JWS_2020_CONTEXT = "https://w3id.org/security/suites/jws-2020/v1"


def did_web(public_url: str) -> str:
    """``did:web`` for the host (and port, percent-encoded) and path of ``public_url`` (did:web spec 3.2)."""
    parts = urlsplit(public_url)
    did = "did:web:" + quote(parts.netloc, safe="")
    path = parts.path.strip("/")
    if path:
        did += ":" + ":".join(quote(p, safe="") for p in path.split("/"))
    return did


def verification_method_id(did: str, kid: str) -> str:
    return f"{did}#{kid}"


def did_document(did: str, public_jwks: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The DID document listing ``public_jwks`` (each with a ``kid``) as assertion methods."""
    builder = DIDDocumentBuilder(did, context=["https://www.w3.org/ns/did/v1", JWS_2020_CONTEXT])
    for jwk in public_jwks:
        public = {k: v for k, v in jwk.items() if k in ("kty", "crv", "x", "y")}
        method = builder.verification_method.add(JsonWebKey2020, public_key_jwk=public, ident=jwk["kid"])
        builder.assertion_method.reference(method.id)
    doc: dict[str, Any] = builder.build().serialize()
    return doc
