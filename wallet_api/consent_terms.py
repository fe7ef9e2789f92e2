"""Consent terms (pure): DPV purposes with fair-use limits, requested items, grants and narrowing.

A third party's request names a purpose (a DPV term such as ``dpv:CreditChecking``, W3C DPV 2.0 "Purposes"),
the claims it wants (each required or optional, sensitive or not), its recipients, validity, release frequency,
how long it keeps the data (retention) and whether it is one-time. India's Account Aggregator calls the
purpose's bounds "fair use": each registered purpose has a longest validity, a highest frequency and a longest
retention; a request must fit them (:func:`validate_request`).

The citizen grants all, or leaves out optional items (:func:`check_grant`); sensitive items (ID number, face
image, health: PIPL art. 28) are granted only with their own explicit toggle (PIPL art. 29). Narrowing
(:func:`narrow`) makes a new version that is never wider than the last. Nothing here does I/O.

Errors (``kernel.errors``)::

    Forbidden          purpose-not-allowed, purpose-suspended, purpose-limit-{validity,frequency,retention}
    VerificationFailed consent-item-not-requested, consent-items-empty, consent-required-item-missing,
                       sensitive-item-unconfirmed, sensitive-toggle-invalid, narrowing-widens
    Conflict           narrowing-noop
    MalformedInput     claim-path-invalid, items-duplicate
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from fractions import Fraction
from types import MappingProxyType
from typing import Any, Final

from kernel.errors import Conflict, Forbidden, MalformedInput, VerificationFailed

# ------------------------------------------------------------------------------------------ purposes and terms


class Period(StrEnum):
    HOUR = "hour"
    DAY = "day"
    WEEK = "week"
    MONTH = "month"  # 30 days
    YEAR = "year"  # 365 days


PERIOD_SECONDS: Final[Mapping[Period, int]] = MappingProxyType(
    {
        Period.HOUR: 3600,
        Period.DAY: 86_400,
        Period.WEEK: 604_800,
        Period.MONTH: 2_592_000,
        Period.YEAR: 31_536_000,
    }
)


@dataclass(frozen=True)
class Frequency:
    """At most ``count`` releases per ``period`` (a fixed window that opens at its first release)."""

    count: int
    period: Period

    @property
    def seconds(self) -> int:
        return PERIOD_SECONDS[self.period]

    @property
    def rate(self) -> Fraction:
        return Fraction(self.count, self.seconds)


@dataclass(frozen=True)
class PurposeLimits:
    """A registered DPV purpose and its fair-use limits."""

    term: str
    legal_basis: str
    max_validity_days: int
    max_frequency: Frequency
    max_retention_days: int
    active: bool = True


SUBJECT: Final = "credentialSubject"
_SEGMENT = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
# PIPL art. 28 sensitive personal information: identity numbers, biometrics (face), health, finance, whereabouts.
SENSITIVE_CLAIMS: Final = frozenset(
    {"idNumber", "documentNumber", "portrait", "faceImage", "photo", "picture"}
)
_SENSITIVE_PREFIXES = ("health", "medical", "biometric", "fingerprint", "religio", "bankaccount", "location")


def claim_key(path: Sequence[str]) -> str:
    """``["credentialSubject", "name"]`` -> ``"credentialSubject.name"``; only top-level subject claims exist
    (the issuer makes exactly those selectively disclosable). ``MalformedInput(claim-path-invalid)`` otherwise."""
    if len(path) != 2 or path[0] != SUBJECT or not isinstance(path[1], str) or not _SEGMENT.match(path[1]):
        raise MalformedInput(
            f"Claim path {list(path)!r} is not [credentialSubject, <claim>].", slug="claim-path-invalid"
        )
    return f"{SUBJECT}.{path[1]}"


def claim_name(key: str) -> str:
    return key.split(".", 1)[1]


def is_sensitive(key: str) -> bool:
    name = claim_name(key)
    return name in SENSITIVE_CLAIMS or name.lower().startswith(_SENSITIVE_PREFIXES)


@dataclass(frozen=True)
class Item:
    key: str  # "credentialSubject.<claim>"
    required: bool
    sensitive: bool


@dataclass(frozen=True)
class Terms:
    """What a third party asks for (a consent request; ISO/IEC TS 27560 "notice" contents)."""

    purpose: str
    items: tuple[Item, ...]
    recipients: tuple[str, ...]
    validity_days: int
    frequency: Frequency
    retention_days: int
    one_time: bool
    credential_type: str
    notice: str = ""

    def item(self, key: str) -> Item | None:
        return next((i for i in self.items if i.key == key), None)

    def to_json(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if k not in ("items", "frequency")}
        data["items"] = [i.__dict__ for i in self.items]
        data["frequency"] = {"count": self.frequency.count, "period": self.frequency.period.value}
        data["recipients"] = list(self.recipients)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Terms:
        freq = data["frequency"]
        return cls(
            **{k: v for k, v in data.items() if k not in ("items", "frequency", "recipients")},
            items=tuple(Item(**i) for i in data["items"]),
            recipients=tuple(data["recipients"]),
            frequency=Frequency(int(freq["count"]), Period(freq["period"])),
        )


def validate_request(
    terms: Terms, limits: PurposeLimits | None, *, client_purposes: Collection[str]
) -> Terms:
    """Check a request against the client's registered purposes and the purpose's fair-use limits; returns the
    terms with ``sensitive`` forced on for the claims that are sensitive whatever the requester says."""
    if terms.purpose not in client_purposes or limits is None:
        raise Forbidden(
            f"Purpose {terms.purpose!r} is not registered for this client.", slug="purpose-not-allowed"
        )
    check_purpose_active(limits)
    if terms.validity_days > limits.max_validity_days:
        raise Forbidden(
            f"Validity is limited to {limits.max_validity_days} days.", slug="purpose-limit-validity"
        )
    if terms.frequency.rate > limits.max_frequency.rate:
        top = limits.max_frequency
        raise Forbidden(
            f"At most {top.count} releases per {top.period.value}.", slug="purpose-limit-frequency"
        )
    if terms.retention_days > limits.max_retention_days:
        raise Forbidden(
            f"Retention is limited to {limits.max_retention_days} days.", slug="purpose-limit-retention"
        )
    keys = [i.key for i in terms.items]
    if len(set(keys)) != len(keys):
        raise MalformedInput("An item is listed twice.", slug="items-duplicate")
    items = tuple(replace(i, sensitive=i.sensitive or is_sensitive(i.key)) for i in terms.items)
    return replace(terms, items=items)


def check_purpose_active(limits: PurposeLimits) -> None:
    if not limits.active:
        raise Forbidden(f"Purpose {limits.term!r} is suspended by the registry.", slug="purpose-suspended")


# ------------------------------------------------------------------------------------------ grants, narrowing


@dataclass(frozen=True)
class Grant:
    """What the citizen allowed in one version of a consent."""

    items: tuple[str, ...]
    valid_until: int
    frequency: Frequency


def check_grant(
    terms: Terms, granted: Collection[str], sensitive_confirmed: Collection[str]
) -> tuple[str, ...]:
    """The granted item keys in request order. Every required item must be granted (to leave one out, refuse);
    every granted sensitive item needs its own explicit toggle in ``sensitive_confirmed`` (PIPL art. 29)."""
    chosen, confirmed = set(granted), set(sensitive_confirmed)
    unknown = chosen - {i.key for i in terms.items}
    if unknown:
        raise VerificationFailed(f"Not requested: {sorted(unknown)}.", slug="consent-item-not-requested")
    if not chosen:
        raise VerificationFailed("Grant at least one item, or refuse.", slug="consent-items-empty")
    missing = {i.key for i in terms.items if i.required} - chosen
    if missing:
        raise VerificationFailed(
            f"Required: {sorted(missing)}; refuse instead.", slug="consent-required-item-missing"
        )
    sensitive = {i.key for i in terms.items if i.sensitive and i.key in chosen}
    if sensitive - confirmed:
        raise VerificationFailed(
            f"Sensitive items need their own consent: {sorted(sensitive - confirmed)}.",
            slug="sensitive-item-unconfirmed",
        )
    if confirmed - sensitive:
        raise VerificationFailed(
            "Only granted sensitive items can be confirmed.", slug="sensitive-toggle-invalid"
        )
    return tuple(i.key for i in terms.items if i.key in chosen)


def narrow(
    terms: Terms,
    current: Grant,
    *,
    items: Collection[str] | None,
    valid_until: int | None,
    frequency_count: int | None,
    now: int,
) -> Grant:
    """The next version's grant: fewer optional items, an earlier end, or fewer releases; never wider."""
    new_items = current.items if items is None else tuple(k for k in current.items if k in set(items))
    if items is not None and set(items) - set(current.items):
        raise VerificationFailed("Narrowing cannot add items.", slug="narrowing-widens")
    if not new_items:
        raise VerificationFailed("Keep at least one item, or withdraw.", slug="consent-items-empty")
    dropped_required = {i.key for i in terms.items if i.required} & (set(current.items) - set(new_items))
    if dropped_required:
        raise VerificationFailed(
            f"{sorted(dropped_required)} are required; withdraw instead.",
            slug="consent-required-item-missing",
        )
    until = current.valid_until if valid_until is None else valid_until
    count = current.frequency.count if frequency_count is None else frequency_count
    if until > current.valid_until or count > current.frequency.count:
        raise VerificationFailed("Narrowing cannot extend validity or frequency.", slug="narrowing-widens")
    if until <= now or count < 1:
        raise VerificationFailed(
            "Narrowed consent would be unusable; withdraw instead.", slug="narrowing-widens"
        )
    result = Grant(new_items, until, Frequency(count, current.frequency.period))
    if result == current:
        raise Conflict("Nothing would change.", slug="narrowing-noop")
    return result
