"""Leaf encoding of the IMI log (normative; design.md "Leaf encoding").

Leaves are commitments, never personal data::

    commitment = SHA-256("imi-commitment-v1" 0x00 || event_type || 0x00 || salt[32] || object_hash[32])
    leaf_input = "imi-log-v1" 0x00 || event_type || 0x00 || commitment[32]
    leaf_hash  = SHA-256(0x00 || leaf_input)            (RFC 6962)

The salt stays off-log, with the party that made the commitment and in the holder's receipt; erasing the salt
erases the link between the leaf and the object.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from enum import StrEnum

from kernel.errors import MalformedInput

COMMITMENT_TAG = b"imi-commitment-v1\x00"
LEAF_TAG = b"imi-log-v1\x00"
SALT_BYTES = 32
HASH_BYTES = 32
_EVENT_TYPE = re.compile(rb"^[a-z][a-z0-9_.-]{0,63}$")


class EventType(StrEnum):
    CREDENTIAL_ISSUED = "credential.issued"
    STATUS_CHANGED = "status.changed"
    CONSENT_GIVEN = "consent.given"
    CONSENT_NARROWED = "consent.narrowed"
    CONSENT_WITHDRAWN = "consent.withdrawn"
    DATA_RELEASED = "data.released"
    KEY_ROTATED = "key.rotated"
    ERASURE = "erasure"
    NOTARIZATION = "notarization"


@dataclass(frozen=True, slots=True)
class LeafInput:
    event_type: str
    commitment: bytes


def _event_bytes(event_type: str) -> bytes:
    raw = event_type.encode("ascii", errors="replace")
    if not _EVENT_TYPE.match(raw):
        raise MalformedInput(
            f"Event type {event_type!r} is not a short lowercase ASCII word.", slug="event-type-invalid"
        )
    return raw


def _check_len(name: str, value: bytes, size: int) -> None:
    if len(value) != size:
        raise MalformedInput(f"{name} must be {size} bytes, got {len(value)}.", slug="commitment-bad-length")


def commitment(event_type: str, salt: bytes, object_hash: bytes) -> bytes:
    """The 32-byte commitment to ``object_hash`` under ``salt``. Raises ``MalformedInput`` on bad sizes."""
    _check_len("salt", salt, SALT_BYTES)
    _check_len("object_hash", object_hash, HASH_BYTES)
    return hashlib.sha256(COMMITMENT_TAG + _event_bytes(event_type) + b"\x00" + salt + object_hash).digest()


def encode_leaf(event_type: str, commitment_hash: bytes) -> bytes:
    """The ``leaf_input`` stored in the log and in entry bundles."""
    _check_len("commitment", commitment_hash, HASH_BYTES)
    return LEAF_TAG + _event_bytes(event_type) + b"\x00" + commitment_hash


def decode_leaf(leaf_input: bytes) -> LeafInput:
    """Parse a ``leaf_input``. Raises ``MalformedInput`` if it is not an IMI leaf."""
    if not leaf_input.startswith(LEAF_TAG) or len(leaf_input) < len(LEAF_TAG) + 2 + HASH_BYTES:
        raise MalformedInput("Not an IMI log leaf.", slug="leaf-malformed")
    body = leaf_input[len(LEAF_TAG) : -HASH_BYTES]
    if not body.endswith(b"\x00"):
        raise MalformedInput("Not an IMI log leaf.", slug="leaf-malformed")
    event = body[:-1]
    if not _EVENT_TYPE.match(event):
        raise MalformedInput("Leaf has an invalid event type.", slug="leaf-malformed")
    return LeafInput(event.decode("ascii"), leaf_input[-HASH_BYTES:])


def object_hash(signed_object: bytes | str) -> bytes:
    """SHA-256 of a signed object; for a credential, of the issuer-signed JWT in compact form."""
    data = signed_object.encode("ascii") if isinstance(signed_object, str) else signed_object
    return hashlib.sha256(data).digest()
