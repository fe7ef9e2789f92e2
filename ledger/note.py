"""Signed notes (https://c2sp.org/signed-note). Pure: no I/O, no clock.

A signed note is a text, a blank line, and one or more signature lines::

    <text: UTF-8, no control character but newline, ending in "\\n">
    "\\n"
    ("— " <key name> " " base64(key ID[4] || signature) "\\n")+

    key ID        = SHA-256(key name || "\\n" || type || public key)[:4]
    verifier key  = <name>+<hex key ID>+<base64(type || public key)>
    signer key    = PRIVATE+KEY+<name>+<hex key ID>+<base64(0x01 || Ed25519 seed)>    (as golang.org/x/mod)

Types: 0x01 Ed25519 over the text; 0x04 timestamped Ed25519 cosignature (``ledger.witness``). Verification
(signed-note "Signatures"): a signature whose name or key ID is unknown is ignored; one that names a known key
(name *and* ID) must verify, else the whole note is rejected; at least one known key must have signed.

Checkpoints and witness cosignatures live in ``ledger.witness`` and are re-exported here.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from kernel.errors import MalformedInput, VerificationFailed

if TYPE_CHECKING:  # the checkpoint and witness half, re-exported by __getattr__ below
    from ledger.witness import Checkpoint as Checkpoint  # noqa: PLC0414
    from ledger.witness import WitnessCosigner as WitnessCosigner  # noqa: PLC0414
    from ledger.witness import WitnessVerifier as WitnessVerifier  # noqa: PLC0414
    from ledger.witness import cosignature_timestamp as cosignature_timestamp  # noqa: PLC0414
    from ledger.witness import open_checkpoint as open_checkpoint  # noqa: PLC0414
    from ledger.witness import parse_checkpoint as parse_checkpoint  # noqa: PLC0414
    from ledger.witness import verify_cosignatures as verify_cosignatures  # noqa: PLC0414

ALG_ED25519 = 0x01
ALG_COSIGNATURE_V1 = 0x04
MAX_SIGNATURES = 100  # signed-note: accept at least 16; golang.org/x/mod/sumdb/note stops at 100
MAX_TIMESTAMP = 2**63 - 1  # tlog-cosignature
_SIG_PREFIX = "— "
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")  # ASCII control characters other than newline
_HEX_ID = re.compile(r"[0-9a-fA-F]{8}")
# Unicode White_Space: the characters Go's unicode.IsSpace reports.
_SPACES = frozenset("\t\n\v\f\r \x85\xa0\u1680\u2028\u2029\u202f\u205f\u3000") | {
    chr(c) for c in range(0x2000, 0x200B)
}


def _utf8(text: str) -> bytes | None:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return None


def valid_name(name: str) -> bool:
    """A key name: non-empty UTF-8 with no Unicode space, no ``+`` and no control character."""
    return (
        bool(name)
        and "+" not in name
        and _SPACES.isdisjoint(name)
        and not _CONTROL.search(name)
        and _utf8(name) is not None
    )


def _require_name(name: str, slug: str) -> None:
    if not valid_name(name):
        raise MalformedInput(f"Invalid key name {name!r}.", slug=slug)


def key_id(name: str, alg: int, public_key: bytes) -> bytes:
    """SHA-256(name || "\\n" || type || public key)[:4]; ``name`` must be valid."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([alg]) + public_key).digest()[:4]


def encode_b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def decode_b64(text: str, *, slug: str, what: str) -> bytes:
    """Standard base64 (RFC 4648 section 4), padded and canonical: one encoding per byte string."""
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError as exc:  # binascii.Error, or non-ASCII text
        raise MalformedInput(f"{what} is not base64.", slug=slug) from exc
    if encode_b64(raw) != text:
        raise MalformedInput(f"{what} is not canonical base64.", slug=slug)
    return raw


def _raw(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes_raw()


def _ed25519_verify(public_key: Ed25519PublicKey, signature: bytes, message: bytes) -> bool:
    if len(signature) != 64:
        return False
    try:
        public_key.verify(signature, message)
    except InvalidSignature:
        return False
    return True


def cosignature_message(timestamp: int, body: str | bytes) -> bytes:
    """What a cosignature/v1 signs: ``"cosignature/v1\\ntime <timestamp>\\n"`` then the checkpoint body."""
    return f"cosignature/v1\ntime {timestamp}\n".encode() + (body.encode() if isinstance(body, str) else body)


@dataclass(frozen=True)
class NoteVerifier:
    """A known public key: Ed25519 (type 0x01), or a cosignature/v1 witness key (type 0x04)."""

    name: str
    key_id: bytes
    public_key: Ed25519PublicKey = field(hash=False)
    alg: int = ALG_ED25519

    def __post_init__(self) -> None:
        if (
            self.alg not in (ALG_ED25519, ALG_COSIGNATURE_V1)
            or not valid_name(self.name)
            or self.key_id != key_id(self.name, self.alg, _raw(self.public_key))
        ):
            raise MalformedInput("Verifier key name, type and key ID do not agree.", slug="vkey-malformed")

    @classmethod
    def from_public_key(cls, name: str, public_key: Ed25519PublicKey, alg: int = ALG_ED25519) -> NoteVerifier:
        _require_name(name, "vkey-malformed")
        return cls(name, key_id(name, alg, _raw(public_key)), public_key, alg)

    @classmethod
    def from_vkey(cls, vkey: str) -> NoteVerifier:
        """Parse ``<name>+<hex key ID>+<base64(type || public key)>``."""
        name, _, rest = vkey.partition("+")
        hex_id, _, encoded = rest.partition("+")
        _require_name(name, "vkey-malformed")
        if not _HEX_ID.fullmatch(hex_id):
            raise MalformedInput("Verifier key ID is not 8 hex digits.", slug="vkey-malformed")
        raw = decode_b64(encoded, slug="vkey-malformed", what="Verifier key")
        if len(raw) != 33 or raw[0] not in (ALG_ED25519, ALG_COSIGNATURE_V1):
            raise MalformedInput(
                "Verifier key is not a 32-byte Ed25519 key of type 1 or 4.", slug="vkey-malformed"
            )
        if key_id(name, raw[0], raw[1:]) != bytes.fromhex(hex_id):
            raise MalformedInput("Verifier key ID does not match the key.", slug="vkey-malformed")
        try:
            public_key = Ed25519PublicKey.from_public_bytes(raw[1:])
        except ValueError as exc:
            raise MalformedInput("Verifier key is not an Ed25519 key.", slug="vkey-malformed") from exc
        return cls(name, bytes.fromhex(hex_id), public_key, raw[0])

    @property
    def vkey(self) -> str:
        return f"{self.name}+{self.key_id.hex()}+{encode_b64(bytes([self.alg]) + _raw(self.public_key))}"

    def verify(self, text: bytes, signature: bytes) -> bool:
        """Whether ``signature`` (the bytes after the key ID) is this key's signature of the note ``text``."""
        if self.alg == ALG_ED25519:
            return _ed25519_verify(self.public_key, signature, text)
        if len(signature) != 8 + 64:
            return False
        timestamp = int.from_bytes(signature[:8], "big")
        message = cosignature_message(timestamp, text)
        return timestamp <= MAX_TIMESTAMP and _ed25519_verify(self.public_key, signature[8:], message)


@dataclass(frozen=True)
class NoteSigner:
    """An Ed25519 (type 0x01) note signing key."""

    name: str
    key_id: bytes
    private_key: Ed25519PrivateKey = field(repr=False, compare=False)

    def __post_init__(self) -> None:
        pub = _raw(self.private_key.public_key())
        if not valid_name(self.name) or self.key_id != key_id(self.name, ALG_ED25519, pub):
            raise MalformedInput("Signer key name and key ID do not agree.", slug="skey-malformed")

    @classmethod
    def from_ed25519(cls, name: str, private_key: Ed25519PrivateKey) -> NoteSigner:
        _require_name(name, "skey-malformed")
        return cls(name, key_id(name, ALG_ED25519, _raw(private_key.public_key())), private_key)

    @classmethod
    def from_skey(cls, skey: str) -> NoteSigner:
        """Parse ``PRIVATE+KEY+<name>+<hex key ID>+<base64(0x01 || seed)>``."""
        parts = skey.split("+", 4)
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"] or not _HEX_ID.fullmatch(parts[3]):
            raise MalformedInput("Not a signer key.", slug="skey-malformed")
        name = parts[2]
        _require_name(name, "skey-malformed")
        raw = decode_b64(parts[4], slug="skey-malformed", what="Signer key")
        if len(raw) != 33 or raw[0] != ALG_ED25519:
            raise MalformedInput("Signer key is not an Ed25519 seed.", slug="skey-malformed")
        signer = cls.from_ed25519(name, Ed25519PrivateKey.from_private_bytes(raw[1:]))
        if signer.key_id != bytes.fromhex(parts[3]):
            raise MalformedInput("Signer key ID does not match the key.", slug="skey-malformed")
        return signer

    @property
    def skey(self) -> str:
        seed = self.private_key.private_bytes_raw()
        return f"PRIVATE+KEY+{self.name}+{self.key_id.hex()}+{encode_b64(bytes([ALG_ED25519]) + seed)}"

    @property
    def verifier(self) -> NoteVerifier:
        return NoteVerifier(self.name, self.key_id, self.private_key.public_key(), ALG_ED25519)

    def sign(self, text: str) -> str:
        """The signature line (without its newline) of this key over the note text."""
        check_text(text, "note-malformed")
        return Signature(self.name, self.key_id, self.private_key.sign(text.encode())).line


@dataclass(frozen=True)
class Signature:
    """One signature line; ``raw`` is the signature proper, the bytes after the key ID."""

    name: str
    key_id: bytes
    raw: bytes

    @property
    def line(self) -> str:
        return f"{_SIG_PREFIX}{self.name} {encode_b64(self.key_id + self.raw)}"


@dataclass(frozen=True)
class Note:
    """A parsed, not yet verified, signed note. Its text means nothing until a known key's signature holds."""

    text: str
    signatures: tuple[Signature, ...]

    def format(self) -> str:
        return format_note(self.text, [s.line for s in self.signatures])


def check_text(text: str, slug: str) -> None:
    """A note text: UTF-8 with no control character but newline, ending in a newline."""
    if not text.endswith("\n") or _CONTROL.search(text) or _utf8(text) is None:
        raise MalformedInput(
            "Note text must be UTF-8 without control characters and end in a newline.", slug=slug
        )


def _parse_line(line: str) -> Signature:
    """One signature line, without its newline."""
    if not line.startswith(_SIG_PREFIX):
        raise MalformedInput("A note signature line must start with an em dash.", slug="note-malformed")
    name, _, encoded = line[len(_SIG_PREFIX) :].partition(" ")
    _require_name(name, "note-malformed")
    raw = decode_b64(encoded, slug="note-malformed", what="Note signature")
    if len(raw) < 5:
        raise MalformedInput("A note signature must be longer than its key ID.", slug="note-malformed")
    return Signature(name, raw[:4], raw[4:])


def _parse_lines(lines: Iterable[str]) -> tuple[Signature, ...]:
    """Parse and de-duplicate (keeping the first) signature lines; each may end in one newline."""
    signatures = tuple(dict.fromkeys(_parse_line(line.removesuffix("\n")) for line in lines))
    if not 1 <= len(signatures) <= MAX_SIGNATURES:
        raise MalformedInput(f"A note needs 1 to {MAX_SIGNATURES} signatures.", slug="note-malformed")
    return signatures


def parse_note(data: str | bytes) -> Note:
    """Split a signed note into text and signatures. Checks the syntax only; nothing is verified."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedInput("A note must be UTF-8.", slug="note-malformed") from exc
    if _CONTROL.search(data) or _utf8(data) is None:
        raise MalformedInput("A note must not contain control characters.", slug="note-malformed")
    split = data.rfind("\n\n")
    if split < 0 or not data.endswith("\n") or split + 2 == len(data):
        raise MalformedInput("A note must end in a blank line and signature lines.", slug="note-malformed")
    lines = data[split + 2 : -1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise MalformedInput(f"A note may carry at most {MAX_SIGNATURES} signatures.", slug="note-malformed")
    return Note(data[: split + 1], _parse_lines(lines))


def format_note(text: str, signature_lines: Iterable[str]) -> str:
    """Assemble a signed note from its text and signature lines (each with or without its newline)."""
    check_text(text, "note-malformed")
    return text + "\n" + "".join(s.line + "\n" for s in _parse_lines(signature_lines))


def sign_note(text: str, signers: Sequence[NoteSigner]) -> str:
    return format_note(text, [signer.sign(text) for signer in signers])


def verified_signers(
    note: Note, verifiers: Sequence[NoteVerifier], *, invalid_slug: str = "note-signature-invalid"
) -> list[NoteVerifier]:
    """The keys among ``verifiers`` that signed ``note``, maybe none. Any signature naming one must verify."""
    known: dict[tuple[str, bytes], list[NoteVerifier]] = {}
    for verifier in verifiers:
        known.setdefault((verifier.name, verifier.key_id), []).append(verifier)
    text = note.text.encode()
    signed: list[NoteVerifier] = []
    for sig in note.signatures:
        candidates = known.get((sig.name, sig.key_id), [])
        good = [v for v in candidates if v.verify(text, sig.raw)]
        if candidates and not good:
            raise VerificationFailed(f"The signature of {sig.name} does not verify.", slug=invalid_slug)
        if good and good[0] not in signed:
            signed.append(good[0])
    return signed


def verify_note(data: str | bytes, verifiers: Sequence[NoteVerifier]) -> tuple[Note, list[NoteVerifier]]:
    """Parse and verify a signed note; returns it and the trusted keys that signed it (at least one)."""
    note = parse_note(data)
    signed = verified_signers(note, verifiers)
    if not signed:
        raise VerificationFailed("None of the trusted keys signed the note.", slug="note-unknown-key")
    return note, signed


def add_cosignatures(signed_note: str | bytes, lines: Sequence[str]) -> str:
    """Append signature lines (say, witness cosignatures) to a signed note, dropping exact duplicates.

    Nothing is verified: check the new lines first (``verify_cosignatures``), or one bad line by a known key
    will make the whole note fail verification."""
    note = parse_note(signed_note)
    return format_note(note.text, [*(s.line for s in note.signatures), *lines])


_WITNESS_API = frozenset(
    {
        "Checkpoint",
        "WitnessCosigner",
        "WitnessVerifier",
        "cosignature_timestamp",
        "open_checkpoint",
        "parse_checkpoint",
        "verify_cosignatures",
    }
)


def __getattr__(name: str) -> object:
    """The witness half, re-exported lazily: ``ledger.witness`` imports this module."""
    if name in _WITNESS_API:
        from ledger import witness

        return getattr(witness, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
