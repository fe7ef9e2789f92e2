"""Consent rules (pure): the lifecycle as a transition table, release checks, pseudonyms and the event chain.

Nothing here does I/O, reads the clock or draws randomness: times (epoch seconds) and keys are parameters.

Lifecycle (design.md "Personal data space"; ISO/IEC TS 27560 consent status; DPV ``ConsentStatus``)::

    requested ─grant─▶ given ◀─resume─┐           given | paused ─withdraw─▶ withdrawn   (the citizen)
        │              │ └──pause─▶ paused         given | paused ─revoke───▶ revoked     (third party, admin)
        ├─refuse─▶ refused                         given | paused ─expire───▶ expired     (time)
        ├─revoke─▶ revoked                         given | paused ─narrow───▶ superseded  (a new version
        └─expire─▶ expired                         given ─consume─▶ consumed (one-time)     keeps the state)

Only ``given`` releases data (:func:`release_refusal`), at most as often as the stricter of the consent's
frequency and its purpose's current limit (:func:`take_release`, a fixed window opened by its first release).

Every event (the request, each transition, each release) is chained per consent:
``hash = SHA-256("imi-consent-event-v1" 0x00 || prev_hash || canonical(body))`` from 32 zero bytes, and the
body carries only the SHA-256 of the event's details, so a third party can check the chain without seeing
what is meant for the citizen alone (officer, guardian).

Errors (``kernel.errors``)::

    Conflict           consent-transition-invalid; a release refused by state: consent-not-given,
                       consent-paused, consent-withdrawn, consent-revoked, consent-expired, consent-consumed,
                       consent-refused, consent-superseded
    Forbidden          consent-item-not-granted
    RateLimited        consent-frequency-exceeded (``retry_after`` seconds in the problem)
    VerificationFailed consent-chain-broken
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Final

from kernel.errors import Conflict, Forbidden, ImiError, RateLimited, VerificationFailed
from kernel.jose import b64url_encode
from ledger.commitment import EventType
from wallet_api.consent_terms import Frequency


class ConsentState(StrEnum):
    REQUESTED = "requested"
    GIVEN = "given"
    PAUSED = "paused"
    WITHDRAWN = "withdrawn"
    REVOKED = "revoked"
    EXPIRED = "expired"
    CONSUMED = "consumed"
    SUPERSEDED = "superseded"
    REFUSED = "refused"


class Action(StrEnum):
    GRANT = "grant"
    REFUSE = "refuse"
    PAUSE = "pause"
    RESUME = "resume"
    NARROW = "narrow"
    WITHDRAW = "withdraw"
    REVOKE = "revoke"
    EXPIRE = "expire"
    CONSUME = "consume"


class EventKind(StrEnum):
    """What the event chain records: every transition, the filing of the request, and every release."""

    REQUESTED = "requested"
    GIVEN = "given"
    REFUSED = "refused"
    PAUSED = "paused"
    RESUMED = "resumed"
    NARROWED = "narrowed"
    WITHDRAWN = "withdrawn"
    REVOKED = "revoked"
    EXPIRED = "expired"
    CONSUMED = "consumed"
    RELEASED = "released"


_S, _A = ConsentState, Action
TRANSITIONS: Final[Mapping[tuple[ConsentState, Action], ConsentState]] = MappingProxyType(
    {
        (_S.REQUESTED, _A.GRANT): _S.GIVEN,
        (_S.REQUESTED, _A.REFUSE): _S.REFUSED,
        (_S.REQUESTED, _A.REVOKE): _S.REVOKED,
        (_S.REQUESTED, _A.EXPIRE): _S.EXPIRED,
        (_S.GIVEN, _A.PAUSE): _S.PAUSED,
        (_S.GIVEN, _A.NARROW): _S.SUPERSEDED,
        (_S.GIVEN, _A.CONSUME): _S.CONSUMED,
        (_S.GIVEN, _A.WITHDRAW): _S.WITHDRAWN,
        (_S.GIVEN, _A.REVOKE): _S.REVOKED,
        (_S.GIVEN, _A.EXPIRE): _S.EXPIRED,
        (_S.PAUSED, _A.RESUME): _S.GIVEN,
        (_S.PAUSED, _A.NARROW): _S.SUPERSEDED,
        (_S.PAUSED, _A.WITHDRAW): _S.WITHDRAWN,
        (_S.PAUSED, _A.REVOKE): _S.REVOKED,
        (_S.PAUSED, _A.EXPIRE): _S.EXPIRED,
    }
)
TERMINAL: Final = frozenset(s for s in ConsentState if not any(key[0] is s for key in TRANSITIONS))
LIVE: Final = frozenset({ConsentState.GIVEN, ConsentState.PAUSED})
EVENT_OF: Final[Mapping[Action, EventKind]] = MappingProxyType(
    {
        _A.GRANT: EventKind.GIVEN,
        _A.REFUSE: EventKind.REFUSED,
        _A.PAUSE: EventKind.PAUSED,
        _A.RESUME: EventKind.RESUMED,
        _A.NARROW: EventKind.NARROWED,
        _A.WITHDRAW: EventKind.WITHDRAWN,
        _A.REVOKE: EventKind.REVOKED,
        _A.EXPIRE: EventKind.EXPIRED,
        _A.CONSUME: EventKind.CONSUMED,
    }
)
# Leaf event types in the log (design.md "Leaf encoding"); the four the design names, and precise words for the rest.
LOG_EVENT_TYPE: Final[Mapping[EventKind, str]] = MappingProxyType(
    {
        **{kind: f"consent.{kind.value}" for kind in EventKind},
        EventKind.GIVEN: EventType.CONSENT_GIVEN.value,
        EventKind.NARROWED: EventType.CONSENT_NARROWED.value,
        EventKind.WITHDRAWN: EventType.CONSENT_WITHDRAWN.value,
        EventKind.RELEASED: EventType.DATA_RELEASED.value,
    }
)


def transition(state: ConsentState, action: Action) -> ConsentState:
    """The state after ``action``; ``Conflict(consent-transition-invalid)`` if the table has no such arrow."""
    after = TRANSITIONS.get((state, action))
    if after is None:
        raise Conflict(
            f"A {state.value} consent cannot be {action.value}ed.", slug="consent-transition-invalid"
        )
    return after


# ------------------------------------------------------------------------------------------------- releases


@dataclass(frozen=True)
class Window:
    start: int
    count: int


def release_refusal(state: ConsentState, *, valid_until: int | None, now: int) -> ImiError | None:
    """Why a release must not happen, or None. Past ``valid_until`` a live consent is ``consent-expired``
    (the caller records the transition); other states refuse with ``consent-<state>``."""
    if state in LIVE and valid_until is not None and now >= valid_until:
        return Conflict("The consent has expired.", slug="consent-expired")
    if state is not ConsentState.GIVEN:
        slug = "consent-not-given" if state is ConsentState.REQUESTED else f"consent-{state.value}"
        return Conflict(f"The consent is {state.value}; no data is released.", slug=slug)
    return None


def effective_frequency(consent: Frequency, purpose: Frequency) -> Frequency:
    """The stricter of the consent's frequency and the purpose's current limit (rates compared exactly)."""
    return purpose if purpose.count * consent.seconds < consent.count * purpose.seconds else consent


def take_release(window: Window, limit: Frequency, now: int) -> Window:
    """Count one release in the fixed window, opening a new one when the last has ended."""
    if now >= window.start + limit.seconds or now < window.start:
        window = Window(now, 0)
    if window.count >= limit.count:
        wait = window.start + limit.seconds - now
        raise RateLimited(
            f"At most {limit.count} releases per {limit.period.value}.",
            slug="consent-frequency-exceeded",
            retry_after=wait,
        )
    return Window(window.start, window.count + 1)


def check_items_granted(granted: Sequence[str], wanted: Collection[str] | None) -> tuple[str, ...]:
    """The items of one release: all granted ones, or the asked subset (``consent-item-not-granted``)."""
    if not wanted:
        return tuple(granted)
    extra = set(wanted) - set(granted)
    if extra:
        raise Forbidden(f"Not granted: {sorted(extra)}.", slug="consent-item-not-granted")
    return tuple(k for k in granted if k in set(wanted))


def client_audience(client_id: str) -> str:
    """The KB-JWT ``aud`` of a release to ``client_id``."""
    return f"imi-client:{client_id}"


def kb_nonce(consent_id: str, version: int, nonce: str) -> str:
    """The KB-JWT ``nonce`` of a release: bound to the consent, its version and the third party's nonce."""
    return f"{consent_id}.{version}.{nonce}"


def pairwise_subject(key: bytes, citizen_id: str, client_id: str) -> str:
    """``base64url(HMAC-SHA256(key, citizen_id || 0x00 || client_id))[:22]``: 132 bits, stable per pair."""
    mac = hmac.new(key, citizen_id.encode() + b"\x00" + client_id.encode(), hashlib.sha256).digest()
    return b64url_encode(mac)[:22]


# ----------------------------------------------------------------------------------------------- event chain

GENESIS: Final = "00" * 32
_CHAIN_TAG = b"imi-consent-event-v1\x00"


def canonical(value: object) -> bytes:
    """Sorted-key compact UTF-8 JSON (RFC 8785 for the strings and integers used here)."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def event_body(
    *, consent_id: str, seq: int, version: int, kind: EventKind, at: int, detail: Mapping[str, Any]
) -> dict[str, Any]:
    """The chained part of an event; ``detail`` enters as its SHA-256 so a party can check the chain
    without seeing details meant for the citizen only (officer, guardian)."""
    digest = hashlib.sha256(canonical(dict(detail))).hexdigest()
    return {
        "consent": consent_id,
        "seq": seq,
        "version": version,
        "kind": kind.value,
        "at": at,
        "detail": digest,
    }


def link(prev_hash: str, body: Mapping[str, Any]) -> str:
    """``SHA-256("imi-consent-event-v1" 0x00 || prev_hash[32] || canonical(body))`` in hex."""
    return hashlib.sha256(_CHAIN_TAG + bytes.fromhex(prev_hash) + canonical(dict(body))).hexdigest()


def verify_chain(events: Sequence[tuple[Mapping[str, Any], str]]) -> str:
    """Check ``(body, hash)`` pairs from the first event on; returns the head hash."""
    head = GENESIS
    for position, (body, claimed) in enumerate(events, start=1):
        if body.get("seq") != position or link(head, body) != claimed:
            raise VerificationFailed(
                f"Event {position} does not link to its predecessor.", slug="consent-chain-broken"
            )
        head = claimed
    return head
