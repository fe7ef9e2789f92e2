"""Checking a scanned QR: read it, fetch a reference form, verify the presentation. Nothing is written here.

The same function serves the web worker (on its committer thread) and the check processes of
``verifier.check_pool``: what it reads is public material only (``ScanSources``), what it returns is the
presentation and its report; replay and record are booked afterwards, in the worker's database transaction.
"""

from __future__ import annotations

from dataclasses import dataclass

from kernel.errors import NotFound, VerificationFailed
from kernel.qr_payload import ScannedReference, read_qr
from kernel.sdjwt_verify import ANY_NONCE
from verifier.core import VerificationReport, verify_presentation
from verifier.fetch import Fetcher
from verifier.policy import IssuerKeys, StatusSource, TrustPolicy

QR_AUDIENCE = "urn:imi:qr-presentation"  # the audience a wallet puts in a QR it shows to any kiosk


@dataclass(frozen=True)
class ScanSources:
    """The public material a scan is checked against, and where a reference QR may point."""

    trust: TrustPolicy
    keys: IssuerKeys
    status: StatusSource
    fetcher: Fetcher
    reference_origins: tuple[str, ...] = ()


def check_scan(qr_text: str, sources: ScanSources, *, now: int) -> tuple[str, VerificationReport]:
    """The presentation a QR carries (or points to) and its report; raises ``ImiError`` for an unreadable QR
    or an unreachable reference. The wallet chose the nonce: freshness is the KB-JWT's ``iat`` window here, and
    the replay cache when the scan is booked."""
    scanned = read_qr(qr_text)
    presentation = (
        resolve_reference(scanned.url, sources)
        if isinstance(scanned, ScannedReference)
        else scanned.presentation
    )
    report = verify_presentation(
        presentation,
        expected_nonce=ANY_NONCE,
        expected_audience=QR_AUDIENCE,
        trust=sources.trust,
        keys=sources.keys,
        status=sources.status,
        replay=None,
        now=now,
    )
    return presentation, report


def resolve_reference(url: str, sources: ScanSources) -> str:
    # Only origins on the allow-list: a QR must not make the kiosk fetch arbitrary URLs (SSRF).
    if not any(url.startswith(origin.rstrip("/") + "/") for origin in sources.reference_origins):
        raise VerificationFailed("The reference points to an untrusted origin.", slug="reference-untrusted")
    fetched = sources.fetcher.get(url)
    if fetched.status != 200:
        raise NotFound("The referenced presentation is gone (used or expired).", slug="reference-gone")
    return fetched.body.decode("ascii", errors="replace").strip()
