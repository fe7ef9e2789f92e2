"""Merkle tree math of RFC 9162 (Certificate Transparency 2.0, same trees as RFC 6962), as pure functions.

SHA-256, leaf hash ``H(0x00 || input)``, interior node ``H(0x01 || left || right)``. Nothing here does I/O:
bytes and integers go in, a hash, a plan or an exception comes out.

Proofs are described twice:

* a *plan* (``inclusion_plan``, ``consistency_plan``) names, per proof element, the perfect subtrees
  (``NodeID``) whose fold is that element, so that a log can answer from stored perfect nodes only;
* a *verifier* (``verify_inclusion``, ``verify_consistency``) runs the bit-walking algorithms of RFC 9162
  over the proof hashes and never looks at the leaves.

Bad arguments (wrong types, negative or out-of-range numbers, hashes that are not 32 bytes) raise
``MalformedInput(slug="merkle-bad-arguments")``; proofs that have the wrong length or do not lead to the
given root raise ``VerificationFailed`` with slug ``inclusion-proof-invalid`` or
``consistency-proof-invalid``.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from kernel.errors import MalformedInput, VerificationFailed

HASH_SIZE = 32
MAX_TREE_SIZE = 1 << 63  # no tree size, index or range bound may exceed this
EMPTY_ROOT: bytes = hashlib.sha256(b"").digest()

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"
_BAD_ARGS = "merkle-bad-arguments"
_BAD_INCLUSION = "inclusion-proof-invalid"
_BAD_CONSISTENCY = "consistency-proof-invalid"


@dataclass(frozen=True, order=True, slots=True)
class NodeID:
    """A perfect subtree: height ``level``, covers leaves ``[index * 2**level, (index + 1) * 2**level)``."""

    level: int
    index: int


# One entry per proof element: the perfect subtrees (largest/leftmost first) whose fold is that element.
ProofPlan = list[tuple[NodeID, ...]]


# --- argument checks ------------------------------------------------------------------------------


def _int_arg(name: str, value: object, upper: int) -> int:
    """Return ``value`` if it is a true ``int`` in ``[0, upper]``; raise ``MalformedInput`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedInput(f"{name} must be an integer", slug=_BAD_ARGS)
    if not 0 <= value <= upper:
        # The value itself is not echoed: an absurdly large int cannot even be turned into a string.
        raise MalformedInput(f"{name} is out of range", slug=_BAD_ARGS)
    return value


def _hash_arg(name: str, value: object) -> bytes:
    """Return ``value`` as ``bytes`` if it is a 32-byte string; raise ``MalformedInput`` otherwise."""
    if not isinstance(value, bytes | bytearray) or len(value) != HASH_SIZE:
        raise MalformedInput(f"{name} must be a {HASH_SIZE}-byte hash", slug=_BAD_ARGS)
    return bytes(value)


def _proof_arg(value: object, expected_len: int, slug: str) -> list[bytes]:
    """Check that ``value`` is a sequence of ``expected_len`` 32-byte hashes.

    Raises ``MalformedInput`` for a non-sequence or a bad element, ``VerificationFailed(slug)`` for a wrong
    length (checked first, so that an overlong proof is rejected before its elements are looked at).
    """
    if not isinstance(value, Sequence) or isinstance(value, bytes | bytearray | str):
        raise MalformedInput("proof must be a sequence of hashes", slug=_BAD_ARGS)
    if len(value) != expected_len:
        raise VerificationFailed(f"proof has {len(value)} hashes, expected {expected_len}", slug=slug)
    return [_hash_arg("proof element", element) for element in value]


# --- hashing (RFC 9162 section 2.1.1) -------------------------------------------------------------


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def leaf_hash(leaf_input: bytes) -> bytes:
    """``MTH({d(0)}) = HASH(0x00 || d(0))`` (RFC 9162 2.1.1). Raises ``MalformedInput`` if not bytes."""
    if not isinstance(leaf_input, bytes | bytearray):
        raise MalformedInput("leaf input must be bytes", slug=_BAD_ARGS)
    return hashlib.sha256(_LEAF_PREFIX + leaf_input).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``HASH(0x01 || left || right)`` (RFC 9162 2.1.1). Raises ``MalformedInput`` unless 32 + 32 bytes."""
    return _node(_hash_arg("left", left), _hash_arg("right", right))


def root_of(leaf_hashes: Sequence[bytes]) -> bytes:
    """``MTH(D[n])`` (RFC 9162 2.1.1) computed from the *leaf hashes*; ``EMPTY_ROOT`` for no leaves.

    Pairs neighbours level by level and lifts an odd last node unchanged, which yields exactly the RFC's
    split-at-the-largest-power-of-two tree. Raises ``MalformedInput`` if a hash is not 32 bytes.
    """
    level = [_hash_arg("leaf hash", h) for h in leaf_hashes]
    if not level:
        return EMPTY_ROOT
    while len(level) > 1:
        parents = [_node(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            parents.append(level[-1])
        level = parents
    return level[0]


def fold(hashes: Sequence[bytes]) -> bytes:
    """Fold perfect-subtree hashes ``p0 .. pk`` (leftmost first) into ``node(p0, node(p1, ... pk))``.

    This is how RFC 9162 2.1.1 joins the perfect subtrees of a non-perfect range on the right border;
    ``fold([]) == EMPTY_ROOT`` and ``fold([p]) == p``. Raises ``MalformedInput`` if a hash is not 32 bytes.
    """
    values = [_hash_arg("hash", h) for h in hashes]
    if not values:
        return EMPTY_ROOT
    acc = values[-1]
    for value in reversed(values[:-1]):
        acc = _node(value, acc)
    return acc


# --- plans: which perfect subtrees make up a root or a proof --------------------------------------


def _decompose(begin: int, end: int) -> tuple[NodeID, ...]:
    """Greedy split of ``[begin, end)`` into the largest aligned perfect subtrees, left to right."""
    out: list[NodeID] = []
    while begin < end:
        level = (end - begin).bit_length() - 1  # the largest subtree that fits ...
        align = (begin & -begin).bit_length() - 1  # ... and is aligned at begin (-1 for begin == 0)
        if 0 <= align < level:
            level = align
        out.append(NodeID(level, begin >> level))
        begin += 1 << level
    return tuple(out)


def range_nodes(begin: int, end: int) -> tuple[NodeID, ...]:
    """The perfect subtrees that make up leaves ``[begin, end)``, left to right (RFC 9162 2.1.1 structure).

    Levels first rise, then fall; for ``begin == 0`` this is the binary decomposition of ``end``, largest
    first. Raises ``MalformedInput`` unless ``0 <= begin <= end <= MAX_TREE_SIZE``.
    """
    _int_arg("end", end, MAX_TREE_SIZE)
    _int_arg("begin", begin, end)
    return _decompose(begin, end)


def root_plan(size: int) -> tuple[NodeID, ...]:
    """The perfect subtrees whose ``fold`` is ``MTH(D[size])`` (RFC 9162 2.1.1). Raises ``MalformedInput``."""
    return range_nodes(0, size)


def _path(start: int, level: int, size: int) -> ProofPlan:
    """Audit path, bottom up, of the perfect node ``(level, start >> level)`` in a tree of ``size`` leaves.

    The *fork* is the largest perfect subtree holding the node that fits in the tree: below it every sibling
    is perfect; its right neighbour is the (ephemeral) fold of the rest of the tree; above it every sibling is
    a perfect subtree on the left border. This is the recursion of RFC 9162 2.1.3.1 unrolled.
    """
    fork = (start ^ size).bit_length() - 1
    plan: ProofPlan = [(NodeID(lvl, (start >> lvl) ^ 1),) for lvl in range(level, fork)]
    fork_begin = (start >> fork) << fork
    fork_end = fork_begin + (1 << fork)
    if fork_end < size:
        plan.append(_decompose(fork_end, size))
    plan.extend((node,) for node in reversed(_decompose(0, fork_begin)))
    return plan


def _path_len(start: int, level: int, size: int) -> int:
    """``len(_path(start, level, size))`` by bit arithmetic alone."""
    fork = (start ^ size).bit_length() - 1
    right = 1 if size & ((1 << fork) - 1) else 0
    return fork - level + right + (size >> (fork + 1)).bit_count()


def inclusion_plan(index: int, size: int) -> ProofPlan:
    """``PATH(index, D[size])`` of RFC 9162 2.1.3.1, leaf-to-root order.

    Raises ``MalformedInput`` unless ``0 <= index < size <= MAX_TREE_SIZE``.
    """
    _int_arg("tree_size", size, MAX_TREE_SIZE)
    _int_arg("index", index, size - 1)
    return _path(index, 0, size)


def _last_subtree(size1: int) -> tuple[int, int]:
    """``(level, first leaf)`` of the smallest perfect subtree in the decomposition of ``size1 > 0``."""
    level = (size1 & -size1).bit_length() - 1
    return level, size1 - (1 << level)


def consistency_plan(size1: int, size2: int) -> ProofPlan:
    """``PROOF(size1, D[size2])`` of RFC 9162 2.1.4.1, in the RFC's order; empty if size1 is 0 or size2.

    It is the last perfect subtree of the old tree (left out when the old tree is perfect, as ``SUBPROOF``
    with ``b = true`` does) followed by that subtree's audit path in the new tree.
    Raises ``MalformedInput`` unless ``0 <= size1 <= size2 <= MAX_TREE_SIZE``.
    """
    _int_arg("size2", size2, MAX_TREE_SIZE)
    _int_arg("size1", size1, size2)
    if size1 in (0, size2):
        return []
    level, start = _last_subtree(size1)
    plan: ProofPlan = [(NodeID(level, start >> level),)] if start else []
    plan.extend(_path(start, level, size2))
    return plan


def materialize(plan: ProofPlan, nodes: Mapping[NodeID, bytes]) -> list[bytes]:
    """Turn a plan into proof hashes by folding the stored perfect nodes of each element (RFC 9162 2.1.1).

    Raises ``KeyError`` if a node is missing, ``MalformedInput`` for an empty element or a bad stored hash.
    """
    proof: list[bytes] = []
    for element in plan:
        if not element:
            raise MalformedInput("a proof element needs at least one node", slug=_BAD_ARGS)
        proof.append(fold([nodes[node] for node in element]))
    return proof


# --- verification ---------------------------------------------------------------------------------


def root_from_inclusion(*, leaf_hash: bytes, index: int, tree_size: int, proof: Sequence[bytes]) -> bytes:
    """The root implied by an inclusion proof: steps 1-5 of RFC 9162 2.1.3.2 (without the final compare).

    Raises ``MalformedInput`` for bad arguments (``0 <= index < tree_size <= MAX_TREE_SIZE``, 32-byte
    hashes) and ``VerificationFailed(slug="inclusion-proof-invalid")`` if the proof has the wrong length.
    """
    _int_arg("tree_size", tree_size, MAX_TREE_SIZE)
    _int_arg("index", index, tree_size - 1)
    r = _hash_arg("leaf_hash", leaf_hash)
    path = _proof_arg(proof, _path_len(index, 0, tree_size), _BAD_INCLUSION)
    fn, sn = index, tree_size - 1
    for p in path:
        if sn == 0:
            raise VerificationFailed("inclusion proof is too long", slug=_BAD_INCLUSION)
        if fn & 1 or fn == sn:
            r = _node(p, r)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = _node(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise VerificationFailed("inclusion proof is too short", slug=_BAD_INCLUSION)
    return r


def verify_inclusion(
    *, leaf_hash: bytes, index: int, tree_size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Verify that ``leaf_hash`` is leaf ``index`` of the tree ``root`` of ``tree_size`` (RFC 9162 2.1.3.2).

    Raises ``MalformedInput`` for bad arguments and ``VerificationFailed(slug="inclusion-proof-invalid")``
    if the proof has the wrong length or does not lead to ``root``.
    """
    expected = _hash_arg("root", root)
    got = root_from_inclusion(leaf_hash=leaf_hash, index=index, tree_size=tree_size, proof=proof)
    if not hmac.compare_digest(got, expected):
        raise VerificationFailed("inclusion proof does not lead to the root", slug=_BAD_INCLUSION)


def _consistency_roots(size1: int, size2: int, root1: bytes, path: list[bytes]) -> tuple[bytes, bytes]:
    """Steps 2-6 of RFC 9162 2.1.4.2 for ``0 < size1 < size2``: the old and new roots the path implies."""
    if size1 & (size1 - 1) == 0:
        path = [root1, *path]
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise VerificationFailed("consistency proof is too long", slug=_BAD_CONSISTENCY)
        if fn & 1 or fn == sn:
            fr, sr = _node(c, fr), _node(c, sr)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = _node(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise VerificationFailed("consistency proof is too short", slug=_BAD_CONSISTENCY)
    return fr, sr


def verify_consistency(*, size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes) -> None:
    """Verify that the tree ``root2`` of ``size2`` extends the tree ``root1`` of ``size1`` (RFC 9162 2.1.4.2).

    ``size1 == size2`` needs an empty proof and equal roots; ``size1 == 0`` needs an empty proof and is
    consistent with anything. Raises ``MalformedInput`` for bad arguments (``0 <= size1 <= size2 <=
    MAX_TREE_SIZE``, 32-byte hashes) and ``VerificationFailed(slug="consistency-proof-invalid")`` otherwise.
    """
    _int_arg("size2", size2, MAX_TREE_SIZE)
    _int_arg("size1", size1, size2)
    first, second = _hash_arg("root1", root1), _hash_arg("root2", root2)
    if size1 in (0, size2):
        _proof_arg(proof, 0, _BAD_CONSISTENCY)
        if size1 == size2 and not hmac.compare_digest(first, second):
            raise VerificationFailed("same tree size but different roots", slug=_BAD_CONSISTENCY)
        return
    level, start = _last_subtree(size1)
    expected_len = (1 if start else 0) + _path_len(start, level, size2)
    path = _proof_arg(proof, expected_len, _BAD_CONSISTENCY)
    fr, sr = _consistency_roots(size1, size2, first, path)
    if not (hmac.compare_digest(fr, first) and hmac.compare_digest(sr, second)):
        raise VerificationFailed("consistency proof does not lead to both roots", slug=_BAD_CONSISTENCY)
