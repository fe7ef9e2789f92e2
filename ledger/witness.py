"""Checkpoints (https://c2sp.org/tlog-checkpoint) and witness cosignatures of them (tlog-cosignature). Pure.

A checkpoint is a signed note (``ledger.note``) whose text is::

    <origin> "\\n" <tree size: decimal, no leading zero> "\\n" <base64 root hash> "\\n" (<extension> "\\n")*

A cosignature (cosignature/v1, Ed25519) is a signature line on it by a witness key of type 0x04::

    key ID    = SHA-256(witness name || "\\n" || 0x04 || Ed25519 public key)[:4]
    signature = key ID || timestamp (uint64, big-endian, at most 2^63 - 1) || Ed25519 signature[64]
    message   = "cosignature/v1\\n" "time " <timestamp, decimal> "\\n" <checkpoint text, extension lines too>
    vkey      = <witness name>+<hex key ID>+<base64(0x04 || public key)>

The message does not name the witness, so one witness key must never serve two witness names. The clock is
the caller's: timestamps are arguments. :func:`open_checkpoint` is the one safe way to read a checkpoint.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from kernel.errors import MalformedInput, VerificationFailed
from ledger.note import (
    ALG_COSIGNATURE_V1,
    MAX_TIMESTAMP,
    Note,
    NoteSigner,
    NoteVerifier,
    Signature,
    check_text,
    cosignature_message,
    decode_b64,
    encode_b64,
    key_id,
    parse_note,
    valid_name,
    verified_signers,
)

MAX_TREE_SIZE = 2**63 - 1  # int64, as golang.org/x/mod/sumdb/tlog and a SQL BIGINT
HASH_SIZE = 32
_DECIMAL = re.compile(r"0|[1-9][0-9]{0,18}")


@dataclass(frozen=True)
class Checkpoint:
    """A tree head: the log's ``origin``, its ``size`` in leaves and its RFC 6962 ``root_hash``."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        lines = (self.origin, *self.extensions)
        if (
            type(self.size) is not int
            or not 0 <= self.size <= MAX_TREE_SIZE
            or len(self.root_hash) != HASH_SIZE
            or not all(lines)
        ):
            raise MalformedInput(
                "Checkpoint size, root hash or lines are invalid.", slug="checkpoint-malformed"
            )
        if any("\n" in line for line in lines):
            raise MalformedInput("A checkpoint line must not contain a newline.", slug="checkpoint-malformed")
        check_text(self.body(), "checkpoint-malformed")

    def body(self) -> str:
        """The note text of this checkpoint."""
        head = f"{self.origin}\n{self.size}\n{encode_b64(self.root_hash)}\n"
        return head + "".join(f"{line}\n" for line in self.extensions)


def parse_checkpoint(body: str) -> Checkpoint:
    """Parse a checkpoint note text. Only ever parse a text whose signature has been verified."""
    lines = body.removesuffix("\n").split("\n")
    if not body.endswith("\n") or len(lines) < 3 or not _DECIMAL.fullmatch(lines[1]):
        raise MalformedInput("Not a checkpoint (origin, size, root hash).", slug="checkpoint-malformed")
    root_hash = decode_b64(lines[2], slug="checkpoint-malformed", what="Checkpoint root hash")
    return Checkpoint(lines[0], int(lines[1]), root_hash, tuple(lines[3:]))


@dataclass(frozen=True)
class WitnessVerifier:
    """A trusted witness: its name and cosignature/v1 public key."""

    name: str
    key_id: bytes
    public_key: Ed25519PublicKey = field(hash=False)

    def __post_init__(self) -> None:
        pub = self.public_key.public_bytes_raw()
        if not valid_name(self.name) or self.key_id != key_id(self.name, ALG_COSIGNATURE_V1, pub):
            raise MalformedInput("Witness name and key ID do not agree.", slug="vkey-malformed")

    @classmethod
    def from_public_key(cls, name: str, public_key: Ed25519PublicKey) -> WitnessVerifier:
        verifier = NoteVerifier.from_public_key(name, public_key, ALG_COSIGNATURE_V1)
        return cls(verifier.name, verifier.key_id, public_key)

    @classmethod
    def from_vkey(cls, vkey: str) -> WitnessVerifier:
        verifier = NoteVerifier.from_vkey(vkey)
        if verifier.alg != ALG_COSIGNATURE_V1:
            raise MalformedInput("Not a cosignature/v1 witness key (type 0x04).", slug="vkey-malformed")
        return cls(verifier.name, verifier.key_id, verifier.public_key)

    @property
    def note_verifier(self) -> NoteVerifier:
        return NoteVerifier(self.name, self.key_id, self.public_key, ALG_COSIGNATURE_V1)

    @property
    def vkey(self) -> str:
        return self.note_verifier.vkey


@dataclass(frozen=True)
class WitnessCosigner:
    """A witness signing key."""

    name: str
    key_id: bytes
    private_key: Ed25519PrivateKey = field(repr=False, compare=False)

    def __post_init__(self) -> None:
        pub = self.private_key.public_key().public_bytes_raw()
        if not valid_name(self.name) or self.key_id != key_id(self.name, ALG_COSIGNATURE_V1, pub):
            raise MalformedInput("Witness name and key ID do not agree.", slug="skey-malformed")

    @classmethod
    def from_ed25519(cls, name: str, private_key: Ed25519PrivateKey) -> WitnessCosigner:
        if not valid_name(name):
            raise MalformedInput(f"Invalid witness name {name!r}.", slug="skey-malformed")
        pub = private_key.public_key().public_bytes_raw()
        return cls(name, key_id(name, ALG_COSIGNATURE_V1, pub), private_key)

    @classmethod
    def from_skey(cls, skey: str) -> WitnessCosigner:
        """From a golang.org/x/mod/sumdb/note signer key; the key ID is recomputed for type 0x04."""
        signer = NoteSigner.from_skey(skey)
        return cls.from_ed25519(signer.name, signer.private_key)

    @property
    def verifier(self) -> WitnessVerifier:
        return WitnessVerifier(self.name, self.key_id, self.private_key.public_key())

    def cosign(self, checkpoint: Checkpoint, *, timestamp: int) -> str:
        """The cosignature line (without its newline) over ``checkpoint`` at POSIX time ``timestamp``."""
        if not 0 <= timestamp <= MAX_TIMESTAMP:
            raise ValueError(f"cosignature timestamp out of range: {timestamp}")
        signature = self.private_key.sign(cosignature_message(timestamp, checkpoint.body()))
        return Signature(self.name, self.key_id, timestamp.to_bytes(8, "big") + signature).line


def cosignature_timestamp(signature: Signature) -> int:
    """The POSIX time a cosignature/v1 signature claims (unverified unless its note was verified)."""
    if len(signature.raw) != 8 + 64:
        raise MalformedInput("Not a cosignature/v1 signature.", slug="cosignature-malformed")
    return int.from_bytes(signature.raw[:8], "big")


def verify_cosignatures(
    note: Note, checkpoint: Checkpoint, witnesses: Sequence[WitnessVerifier], *, threshold: int
) -> list[str]:
    """Names of the ``witnesses`` that cosigned ``checkpoint`` (carried by ``note``); at least ``threshold``.

    A witness counts once, however many of its keys signed. A cosignature naming a known witness key that does
    not verify rejects the note, as signed-note asks."""
    if threshold < 0:
        raise ValueError(f"negative witness threshold: {threshold}")
    if note.text != checkpoint.body():
        raise VerificationFailed(
            "The note does not carry this checkpoint.", slug="witness-checkpoint-mismatch"
        )
    verifiers = [w.note_verifier for w in witnesses]
    signed = verified_signers(note, verifiers, invalid_slug="witness-signature-invalid")
    names = list(dict.fromkeys(v.name for v in signed))
    if len(names) < threshold:
        raise VerificationFailed(
            f"{len(names)} of the {threshold} required witnesses cosigned the checkpoint.",
            slug="witness-threshold-not-met",
        )
    return names


def open_checkpoint(
    data: str | bytes,
    *,
    log_verifier: NoteVerifier,
    expected_origin: str,
    witnesses: Sequence[WitnessVerifier] = (),
    witness_threshold: int = 0,
) -> tuple[Checkpoint, Note]:
    """The safe way in: parse a signed checkpoint, check the log's signature, the origin, the witnesses."""
    note = parse_note(data)
    if not verified_signers(note, [log_verifier], invalid_slug="checkpoint-signature-invalid"):
        raise VerificationFailed("The log key did not sign the checkpoint.", slug="checkpoint-unknown-key")
    checkpoint = parse_checkpoint(note.text)
    if checkpoint.origin != expected_origin:
        raise VerificationFailed(
            f"Checkpoint origin {checkpoint.origin!r} is not {expected_origin!r}.",
            slug="checkpoint-origin-mismatch",
        )
    verify_cosignatures(note, checkpoint, witnesses, threshold=witness_threshold)
    return checkpoint, note
