"""Checks on a caller-supplied VCDM 2.0 credential (VC API issue): refuse what the data model forbids.

VCDM 2.0 sections 4.3 (contexts), 4.4 (identifiers), 4.5 (types), 4.7 (issuer), 4.8 (subject), 4.9 (validity).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from issuer.credentials import VCDM_V2_CONTEXT
from kernel.errors import Forbidden, MalformedInput, PayloadTooLarge
from kernel.jose import dump_json

# XML Schema dateTimeStamp: a time zone is required.
_DATETIME = re.compile(r"^-?\d{4,}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$")
_OURS = ("credentialStatus", "proof")
# VC-JOSE-COSE 3.1.1: the JWT claims "vc" and "vp" MUST NOT be present (the credential is the claims set).
_JWT_FORBIDDEN = ("vc", "vp")
# RFC 9901 section 4.2.1: names an SD-JWT reserves; no claim may carry them.
_SD_JWT_RESERVED = frozenset({"_sd", "_sd_alg", "..."})
# Secured, the credential must stay under the 64 KiB every JWS and SD-JWT reader here accepts.
MAX_CREDENTIAL_BYTES = 32 * 1024


def _bad(detail: str, slug: str) -> MalformedInput:
    return MalformedInput(detail, slug=slug)


def _check_context(vc: dict[str, Any]) -> None:
    ctx = vc.get("@context")
    if not isinstance(ctx, list) or not ctx or ctx[0] != VCDM_V2_CONTEXT:
        raise _bad(f"@context must be a list starting with {VCDM_V2_CONTEXT}.", "vc-context-invalid")
    if not all(isinstance(c, str | dict) for c in ctx):
        raise _bad("@context entries must be URLs or objects.", "vc-context-invalid")


def _check_types(value: object, required: str | None, slug: str) -> None:
    types = [value] if isinstance(value, str) else value
    if not isinstance(types, list) or not types or not all(isinstance(t, str) and t for t in types):
        raise _bad("type must be a string or a list of strings.", slug)
    if required and required not in types:
        raise _bad(f"type must include {required}.", slug)


def _check_datetime(vc: dict[str, Any], name: str) -> datetime | None:
    value = vc.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not _DATETIME.match(value):
        raise _bad(f"{name} must be an XML dateTimeStamp with a time zone.", "vc-validity-invalid")
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise _bad(f"{name} is not a real date and time.", "vc-validity-invalid") from None


def _check_subject(subject: object) -> None:
    subjects: list[object] = subject if isinstance(subject, list) else [subject]
    if not subjects or not all(isinstance(s, dict) and s for s in subjects):
        raise _bad("credentialSubject must be a non-empty object or list of objects.", "vc-subject-invalid")
    for s in subjects:
        assert isinstance(s, dict)
        if "id" in s and (not isinstance(s["id"], str) or not _URL.match(s["id"])):
            raise _bad("credentialSubject.id must be a URL.", "vc-subject-invalid")


def _check_names(vc: dict[str, Any]) -> None:
    for name in _JWT_FORBIDDEN:
        if name in vc:
            raise _bad(f"A credential secured as a JWT has no {name!r} member.", "vc-reserved-name")
    stack: list[object] = [vc]
    while stack:  # iterative: a deeply nested body cannot exhaust the Python stack
        node = stack.pop()
        if isinstance(node, dict):
            reserved = _SD_JWT_RESERVED.intersection(node)
            if reserved:
                raise _bad(f"{sorted(reserved)[0]!r} is a reserved SD-JWT name.", "vc-reserved-name")
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def _check_size(vc: dict[str, Any]) -> None:
    try:
        size = len(dump_json(vc))
    except ValueError:  # the HTTP layer's JSON parser lets NaN and Infinity through; JSON has no such numbers
        raise _bad(
            "The credential holds NaN or Infinity, which JSON cannot carry.", "vc-number-invalid"
        ) from None
    if size > MAX_CREDENTIAL_BYTES:
        raise PayloadTooLarge(
            f"The credential exceeds {MAX_CREDENTIAL_BYTES} bytes of JSON.", slug="vc-too-large"
        )


def validate_credential(vc: dict[str, Any], *, issuer_did: str) -> dict[str, Any]:
    """Return the credential if it is acceptable input for issuance, else raise ``MalformedInput``."""
    _check_size(vc)
    _check_context(vc)
    _check_types(vc.get("type"), "VerifiableCredential", "vc-type-invalid")
    if "id" in vc and (not isinstance(vc["id"], str) or not _URL.match(vc["id"])):
        raise _bad("id must be a URL.", "vc-id-invalid")
    issuer = vc.get("issuer", issuer_did)
    issuer_id = issuer.get("id") if isinstance(issuer, dict) else issuer
    if not isinstance(issuer_id, str) or not _URL.match(issuer_id):
        raise _bad("issuer must be a URL or an object with an id URL.", "vc-issuer-invalid")
    if issuer_id != issuer_did:
        raise Forbidden(f"This service issues only as {issuer_did}.", slug="vc-issuer-mismatch")
    if "credentialSubject" not in vc:
        raise _bad("credentialSubject is required.", "vc-subject-invalid")
    _check_subject(vc["credentialSubject"])
    start, end = _check_datetime(vc, "validFrom"), _check_datetime(vc, "validUntil")
    if start and end and end < start:
        raise _bad("validUntil is before validFrom.", "vc-validity-invalid")
    for name in ("name", "description"):
        if name in vc and not isinstance(vc[name], str | dict | list):
            raise _bad(f"{name} must be a string or language objects.", "vc-property-invalid")
    for key in ("credentialSchema", "evidence", "termsOfUse", "refreshService"):
        value = vc.get(key)
        if value is not None:
            for item in value if isinstance(value, list) else [value]:
                if not isinstance(item, dict) or "type" not in item:
                    raise _bad(f"each {key} entry must be an object with a type.", "vc-property-invalid")
    if "proof" in vc:
        raise _bad("Send the unsecured credential; this service secures it.", "vc-already-secured")
    _check_names(vc)
    return {k: v for k, v in vc.items() if k not in _OURS}
