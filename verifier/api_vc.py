"""W3C VC API verification: ``POST /credentials/verify`` and ``POST /presentations/verify``.

Accepted: an ``EnvelopedVerifiableCredential`` (``id`` = ``data:application/vc+jwt,...`` or
``data:application/vc+sd-jwt,...``) or the compact string itself; for presentations an SD-JWT+KB string or an
``EnvelopedVerifiablePresentation`` with ``data:application/vp+sd-jwt,...``/``vc+sd-jwt``; ``options.challenge``
is the expected nonce, ``options.domain`` the expected audience. Verified: 200; not verified: 400
problem+json carrying ``verified: false``, the checks and ``errors`` (what the W3C test suites look for).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from kernel.errors import MalformedInput, VerificationFailed
from verifier.api import VerifierDep
from verifier.core import VerificationReport, verify_credential
from verifier.service import report_json

router = APIRouter(tags=["vc-api"])
_MEDIA = ("application/vc+jwt", "application/vc+sd-jwt", "application/vp+sd-jwt", "application/dc+sd-jwt")


class VerifyOptions(BaseModel):
    model_config = ConfigDict(frozen=True, extra="allow")
    challenge: str | None = Field(default=None, max_length=512)
    domain: str | None = Field(default=None, max_length=512)


class VerifyCredentialIn(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    verifiableCredential: dict[str, Any] | str  # noqa: N815 - VC API field name
    options: VerifyOptions = VerifyOptions()


class VerifyPresentationIn(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    verifiablePresentation: dict[str, Any] | str  # noqa: N815 - VC API field name
    options: VerifyOptions = VerifyOptions()


def _unwrap(value: dict[str, Any] | str) -> str:
    if isinstance(value, str):
        return value
    ident = value.get("id")
    types = value.get("type", [])
    if not isinstance(ident, str) or not ident.startswith("data:") or "," not in ident:
        raise MalformedInput(
            "Only enveloped (JOSE / SD-JWT) credentials are supported.", slug="vc-envelope-required"
        )
    if not any(t.startswith("Enveloped") for t in (types if isinstance(types, list) else [types])):
        raise MalformedInput("Expected an Enveloped credential or presentation.", slug="vc-envelope-required")
    media, _, token = ident[len("data:") :].partition(",")
    if media not in _MEDIA:
        raise MalformedInput(f"Unsupported media type {media!r}.", slug="vc-media-type-unsupported")
    return token


def _answer(report: VerificationReport) -> JSONResponse:
    body = report_json(report)
    if report.verified:
        return JSONResponse({**body, "errors": []})
    failure = report.failure
    assert failure is not None
    raise VerificationFailed(
        failure.detail, slug=failure.slug, verified=False, checks=body["checks"], errors=[body["problem"]]
    )


@router.post("/credentials/verify", summary="W3C VC API: verify a credential")
def verify_credential_endpoint(body: VerifyCredentialIn, verifier: VerifierDep) -> JSONResponse:
    report = verify_credential(
        _unwrap(body.verifiableCredential),
        trust=verifier.trust,
        keys=verifier.keys,
        status=verifier.status,
        now=verifier.now(),
    )
    verifier.record(report, verifier_id="vc-api", channel="vc-api")
    return _answer(report)


@router.post(
    "/presentations/verify", summary="W3C VC API: verify a presentation (challenge = nonce, domain = aud)"
)
def verify_presentation_endpoint(body: VerifyPresentationIn, verifier: VerifierDep) -> JSONResponse:
    token = _unwrap(body.verifiablePresentation)
    report = verifier.verify(
        token,
        nonce=body.options.challenge,
        audience=body.options.domain,
        verifier_id="vc-api",
        channel="vc-api",
    )
    return _answer(report)
