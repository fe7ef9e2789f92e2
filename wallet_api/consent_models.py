"""Wire models of the consent API (frozen pydantic; the SQL tables are in ``wallet_api.consent_tables``)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from wallet_api.consent_terms import Frequency, Item, Period, PurposeLimits, Terms, claim_key

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
# W3C DPV 2.0 terms as CURIEs: dpv:CreditChecking, dpv-health:..., eu-gdpr:A6-1-a
Term = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,30}:[A-Za-z0-9][A-Za-z0-9_-]{0,80}$")]
ClaimKey = Annotated[str, StringConstraints(pattern=r"^credentialSubject\.[A-Za-z][A-Za-z0-9_]{0,63}$")]
NONCE_PATTERN = r"^[A-Za-z0-9_-]{8,128}$"


class _In(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FrequencyIn(_In):
    count: int = Field(ge=1, le=100_000)
    period: Period

    def value(self) -> Frequency:
        return Frequency(self.count, self.period)


class ItemIn(_In):
    path: list[str] = Field(
        min_length=2, max_length=2, description='A claim path, e.g. ["credentialSubject", "name"]'
    )
    required: bool = True
    sensitive: bool = Field(default=False, description="Forced on for ID numbers, face images, health data")


class RequestIn(_In):
    """A consent request (the notice the citizen sees)."""

    purpose: Term = Field(description="A purpose registered for this client, e.g. dpv:CreditChecking")
    items: list[ItemIn] = Field(min_length=1, max_length=30)
    recipients: list[Text] = Field(default_factory=list, max_length=10)
    validity_days: int = Field(ge=1, le=3650)
    frequency: FrequencyIn
    retention_days: int = Field(ge=0, le=3650, description="How long the recipient may keep the data")
    one_time: bool = False
    credential_type: Text = "RealNameIdentityCredential"
    notice: str = Field(default="", max_length=1000)

    def terms(self) -> Terms:
        items = tuple(Item(claim_key(i.path), i.required, i.sensitive) for i in self.items)
        return Terms(
            purpose=self.purpose,
            items=items,
            recipients=tuple(self.recipients),
            validity_days=self.validity_days,
            frequency=self.frequency.value(),
            retention_days=self.retention_days,
            one_time=self.one_time,
            credential_type=self.credential_type,
            notice=self.notice,
        )


class ClientIn(_In):
    name: Text
    organisation_code: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
    contact: Text
    purposes: list[Term] = Field(min_length=1, max_length=20)
    jwks: dict[str, Any] = Field(description="JWK Set of the client's assertion keys (P-256 or Ed25519)")
    webhook_url: str | None = Field(default=None, max_length=500)


class PurposeIn(_In):
    label: Text
    legal_basis: Term = "dpv:Consent"
    max_validity_days: int = Field(ge=1, le=3650)
    max_frequency: FrequencyIn
    max_retention_days: int = Field(ge=0, le=3650)
    active: bool = True

    def limits(self, term: str) -> PurposeLimits:
        return PurposeLimits(
            term=term,
            legal_basis=self.legal_basis,
            max_validity_days=self.max_validity_days,
            max_frequency=self.max_frequency.value(),
            max_retention_days=self.max_retention_days,
            active=self.active,
        )


class GrantIn(_In):
    items: list[ClaimKey] = Field(min_length=1, max_length=30, description="The items granted")
    sensitive_confirmed: list[ClaimKey] = Field(
        default_factory=list, max_length=30, description="Separate consent to each granted sensitive item"
    )
    credential_id: str | None = Field(default=None, max_length=64)


class GuardianIn(_In):
    name: Text
    relationship: Text


class CounterGrantIn(GrantIn):
    """An assisted grant at a counter: the citizen signs in on the counter terminal (their session token)."""

    citizen_session: str = Field(min_length=1, max_length=200)
    guardian: GuardianIn | None = None


class NarrowIn(_In):
    items: list[ClaimKey] | None = Field(default=None, min_length=1, max_length=30)
    valid_until: int | None = Field(default=None, ge=0, description="Epoch seconds, earlier than now")
    frequency_count: int | None = Field(default=None, ge=1)


class TokenOut(BaseModel):
    model_config = ConfigDict(frozen=True)
    access_token: str
    token_type: str = "Bearer"  # noqa: S105 - the RFC 6750 scheme name
    expires_in: int


class ReleaseOut(BaseModel):
    model_config = ConfigDict(frozen=True)
    sub: str = Field(description="The citizen's pairwise pseudonym for this client")
    consent_id: str
    version: int
    presentation: str = Field(
        description="SD-JWT+KB; KB aud imi-client:<client id>, nonce <id>.<version>.<nonce>"
    )
    items: list[str]
    released_at: int
    retain_until: int
