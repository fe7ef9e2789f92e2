"""Anchor receipts (design.md "Receipt JSON") and their offline verification.

A receipt proves that a commitment to an object is in the log: the leaf's salt and object hash, an inclusion
proof, and the signed checkpoint it is proven against. Checking one needs only the log's verifier key (and the
witnesses' keys if a policy asks for cosignatures): no network, no database.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from kernel.errors import VerificationFailed
from ledger import merkle
from ledger.commitment import commitment, encode_leaf
from ledger.note import Checkpoint, NoteVerifier, WitnessVerifier, open_checkpoint

Hex32 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


class Receipt(BaseModel):
    """The receipt handed to whoever anchored something (and, for credentials, to the holder)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    origin: str = Field(max_length=256)
    index: int = Field(ge=0, lt=2**63)
    event_type: str = Field(max_length=64)
    salt: Hex32
    object_hash: Hex32
    commitment: Hex32
    tree_size: int = Field(gt=0, lt=2**63)
    inclusion_proof: list[Hex32] = Field(max_length=64)
    checkpoint: str = Field(max_length=16_384)


def verify_receipt(
    receipt: Receipt,
    *,
    log_verifier: NoteVerifier,
    expected_object_hash: bytes | None = None,
    expected_origin: str | None = None,
    witnesses: tuple[WitnessVerifier, ...] = (),
    witness_threshold: int = 0,
) -> Checkpoint:
    """Check a receipt offline. Returns the checkpoint it is proven against.

    Raises ``VerificationFailed`` with slug ``receipt-object-mismatch``, ``receipt-commitment-mismatch``,
    ``receipt-size-mismatch``, ``inclusion-proof-invalid`` or one of the checkpoint slugs of ``ledger.note``.
    """
    origin = expected_origin or receipt.origin
    checkpoint, _ = open_checkpoint(
        receipt.checkpoint,
        log_verifier=log_verifier,
        expected_origin=origin,
        witnesses=witnesses,
        witness_threshold=witness_threshold,
    )
    if receipt.origin != checkpoint.origin:
        raise VerificationFailed("The receipt names another log.", slug="checkpoint-origin-mismatch")
    object_hash = bytes.fromhex(receipt.object_hash)
    if expected_object_hash is not None and expected_object_hash != object_hash:
        raise VerificationFailed("The receipt is for another object.", slug="receipt-object-mismatch")
    c = commitment(receipt.event_type, bytes.fromhex(receipt.salt), object_hash)
    if c.hex() != receipt.commitment:
        raise VerificationFailed(
            "Salt and object hash do not give the commitment.", slug="receipt-commitment-mismatch"
        )
    if checkpoint.size != receipt.tree_size:
        raise VerificationFailed("The proof is for another tree size.", slug="receipt-size-mismatch")
    merkle.verify_inclusion(
        leaf_hash=merkle.leaf_hash(encode_leaf(receipt.event_type, c)),
        index=receipt.index,
        tree_size=receipt.tree_size,
        proof=[bytes.fromhex(h) for h in receipt.inclusion_proof],
        root=checkpoint.root_hash,
    )
    return checkpoint
