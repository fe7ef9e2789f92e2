"""Wire models of the issuer: the officer's in-person check, issuance requests, status changes.

Frozen pydantic models; the ``kind`` tag discriminates people from companies. Personal data arrives here and
leaves only encrypted (``issuer.store``) or inside a signed credential.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class CheckMethod(StrEnum):
    ID_CARD_CHIP = "id-card-chip"  # the chip of the resident ID card was read and its signature checked
    FACE_MATCH = "face-match"  # live face compared with the chip photo
    DOCUMENT_INSPECTION = "document-inspection"  # officer inspected the paper document (companies)


class CheckResult(StrEnum):
    PASSED = "passed"
    FAILED = "failed"


class CredentialFormat(StrEnum):
    SD_JWT = "vc+sd-jwt"
    JWT = "vc+jwt"


class StatusAction(StrEnum):
    REVOKE = "revoke"
    SUSPEND = "suspend"
    REINSTATE = "reinstate"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FaceMatch(_Frozen):
    score: float = Field(ge=0, le=1)
    threshold: float = Field(ge=0, le=1)


class PersonCheckIn(_Frozen):
    """What the officer records after checking a person at the counter."""

    kind: Literal["person"] = "person"
    counter: Text = Field(description="Where: the service counter's id")
    methods: list[CheckMethod] = Field(min_length=1, max_length=5)
    document_type: Literal["CN-resident-id-card"] = "CN-resident-id-card"
    document_number: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32)]
    name: Text
    birth_date: date
    sex: Literal["M", "F"]
    nationality: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2,3}$")] = "CHN"
    address: Text
    face_match: FaceMatch | None = None
    result: CheckResult = CheckResult.PASSED


class CompanyCheckIn(_Frozen):
    """What the officer records after checking a company's registration and its representative."""

    kind: Literal["company"] = "company"
    counter: Text
    methods: list[CheckMethod] = Field(min_length=1, max_length=5)
    document_type: Literal["CN-business-licence"] = "CN-business-licence"
    credit_code: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32)]
    name: Text
    legal_representative: Text
    registered_address: Text
    result: CheckResult = CheckResult.PASSED


CheckIn = Annotated[PersonCheckIn | CompanyCheckIn, Field(discriminator="kind")]


class CheckOut(_Frozen):
    id: str
    kind: Literal["person", "company"]
    result: CheckResult
    officer: str
    counter: str
    checked_at: str
    document_number_masked: str


class IssueRequest(_Frozen):
    """Issue from a passed check. Without ``holder_jwk`` the answer is a credential offer (QR + PIN)."""

    check_id: str = Field(max_length=64)
    format: CredentialFormat = CredentialFormat.SD_JWT
    valid_days: int = Field(default=3650, ge=1, le=3650 * 2)
    holder_jwk: dict[str, Any] | None = Field(default=None, description="Bind directly to this device key")


class StatusChange(_Frozen):
    action: StatusAction
    reason: Annotated[str, StringConstraints(max_length=200)] = ""
