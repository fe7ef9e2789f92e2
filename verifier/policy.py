"""What a verifier trusts, and the small interfaces through which it reads the outside world.

The verifier trusts only public material: issuer DIDs (and the keys their DID documents list), status lists
signed by those issuers, and checkpoints signed by the log (optionally cosigned by witnesses).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from kernel.jose import PublicKey
from ledger.note import NoteVerifier, WitnessVerifier


class IssuerKeys(Protocol):
    """Resolves a JWS ``kid`` (a DID URL) to a public key; raises ``VerificationFailed(unknown-kid)``."""

    def key_for(self, kid: str) -> PublicKey: ...


class StatusSource(Protocol):
    """Reads one bit of a Bitstring Status List; raises ``InfrastructureFailure`` if the list is unavailable."""

    def bit(self, list_url: str, index: int, *, issuer: str, purpose: str) -> bool: ...


class ReplayGuard(Protocol):
    """Remembers presentations seen; ``first_use`` is atomic across processes."""

    def first_use(self, key: str, *, expires_at: int) -> bool: ...


@dataclass(frozen=True)
class TrustPolicy:
    trusted_issuers: frozenset[str]
    log_verifier: NoteVerifier | None = None
    witnesses: tuple[WitnessVerifier, ...] = ()
    witness_threshold: int = 0
    require_anchor: bool = False  # QR-only offline presentations carry no receipt; see docs/verifier.md
    require_holder_binding: bool = True
    iat_window: int = 120  # seconds a KB-JWT stays fresh
    accepted_types: frozenset[str] = field(
        default_factory=lambda: frozenset({"RealNameIdentityCredential", "LegalEntityCredential"})
    )


@dataclass(frozen=True)
class Expectations:
    """What this particular verification expects (keyword-only at the call site)."""

    nonce: str | None
    audience: str | None
    extra: Mapping[str, Any] = field(default_factory=dict)
