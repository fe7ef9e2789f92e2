# mypy: disable-error-code="arg-type,list-item,misc"
"""Tests for ledger.merkle (RFC 9162 / RFC 6962 Merkle tree math).

Expected values come from outside the module under test: the Certificate Transparency 8-leaf vectors
(tests/vectors/rfc6962_ct_8leaf.json, see its "source"), and a reference written here straight from the
recursive definitions of RFC 9162 2.1.1 (MTH), 2.1.3.1 (PATH) and 2.1.4.1 (PROOF / SUBPROOF).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import random
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kernel.errors import MalformedInput, VerificationFailed
from ledger.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    MAX_TREE_SIZE,
    NodeID,
    consistency_plan,
    fold,
    inclusion_plan,
    leaf_hash,
    materialize,
    node_hash,
    range_nodes,
    root_from_inclusion,
    root_of,
    root_plan,
    verify_consistency,
    verify_inclusion,
)

VECTORS = json.loads((Path(__file__).parents[1] / "vectors" / "rfc6962_ct_8leaf.json").read_text())
LEAF_INPUTS = [bytes.fromhex(x) for x in VECTORS["leaf_inputs"]]
NODES8 = {
    NodeID(level, index): bytes.fromhex(h)
    for level, row in enumerate(VECTORS["node_hashes"])
    for index, h in enumerate(row)
}
ROOTS = [bytes.fromhex(h) for h in VECTORS["root_hashes"]]
SOME_HASH = bytes.fromhex(VECTORS["some_hash"])
INCLUSION_VECTORS = VECTORS["inclusion_proofs"]
CONSISTENCY_VECTORS = VECTORS["consistency_proofs"]

BAD = (VerificationFailed, MalformedInput)
BAD_ARGS = "merkle-bad-arguments"
BAD_INCLUSION = "inclusion-proof-invalid"
BAD_CONSISTENCY = "consistency-proof-invalid"


# --- helpers independent of the module under test -------------------------------------------------


def sha_node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def sha_leaf(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def unhex(values: list[str]) -> list[bytes]:
    return [bytes.fromhex(v) for v in values]


def random_leaf_hashes(size: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    return [sha_leaf(rng.randbytes(rng.randrange(0, 40))) for _ in range(size)]


def all_perfect_nodes(leaf_hashes: list[bytes]) -> dict[NodeID, bytes]:
    """Every perfect subtree hash of the tree, level by level (an odd last node has no parent)."""
    nodes = {NodeID(0, i): h for i, h in enumerate(leaf_hashes)}
    row, level = list(leaf_hashes), 0
    while len(row) > 1:
        row = [sha_node(row[i], row[i + 1]) for i in range(0, len(row) - 1, 2)]
        level += 1
        nodes.update({NodeID(level, i): h for i, h in enumerate(row)})
    return nodes


def largest_power_below(n: int) -> int:
    """k of RFC 9162 2.1.1: the largest power of two smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


class RefTree:
    """RFC 9162 MTH / PATH / SUBPROOF written as the RFC writes them (recursion on D[lo:hi]), memoised."""

    def __init__(self, leaf_hashes: list[bytes]) -> None:
        self.leaves = leaf_hashes
        self.memo: dict[tuple[int, int], bytes] = {}

    def mth(self, lo: int, hi: int) -> bytes:
        if (lo, hi) not in self.memo:
            n = hi - lo
            if n == 0:
                value = hashlib.sha256(b"").digest()
            elif n == 1:
                value = self.leaves[lo]
            else:
                k = largest_power_below(n)
                value = sha_node(self.mth(lo, lo + k), self.mth(lo + k, hi))
            self.memo[lo, hi] = value
        return self.memo[lo, hi]

    def path(self, m: int, lo: int, hi: int) -> list[bytes]:
        n = hi - lo
        if n == 1:
            return []
        k = largest_power_below(n)
        if m < k:
            return [*self.path(m, lo, lo + k), self.mth(lo + k, hi)]
        return [*self.path(m - k, lo + k, hi), self.mth(lo, lo + k)]

    def subproof(self, m: int, lo: int, hi: int, b: bool) -> list[bytes]:
        n = hi - lo
        if m == n:
            return [] if b else [self.mth(lo, hi)]
        k = largest_power_below(n)
        if m <= k:
            return [*self.subproof(m, lo, lo + k, b), self.mth(lo + k, hi)]
        return [*self.subproof(m - k, lo + k, hi, False), self.mth(lo, lo + k)]

    def proof(self, m: int, n: int) -> list[bytes]:
        return [] if m in (0, n) else self.subproof(m, 0, n, True)


def assert_rejected(verify: Callable[..., None], slug: str, **kwargs: Any) -> None:
    """The call must fail with VerificationFailed(slug) or MalformedInput(merkle-bad-arguments)."""
    with pytest.raises(BAD) as info:
        verify(**kwargs)
    wanted = slug if isinstance(info.value, VerificationFailed) else BAD_ARGS
    assert info.value.slug == wanted


def flip(proof: list[bytes], pos: int, byte: int, mask: int) -> list[bytes]:
    changed = bytearray(proof[pos])
    changed[byte] ^= mask
    return [*proof[:pos], bytes(changed), *proof[pos + 1 :]]


def every_tampering(proof: list[bytes]) -> Iterator[list[bytes]]:
    """Each single byte changed, each element dropped, an element added at each position."""
    for pos in range(len(proof)):
        for byte in range(HASH_SIZE):
            yield flip(proof, pos, byte, 0x01)
        yield proof[:pos] + proof[pos + 1 :]
    for pos in range(len(proof) + 1):
        yield [*proof[:pos], SOME_HASH, *proof[pos:]]


# --- hashing and roots against the CT vectors -----------------------------------------------------


def test_constants() -> None:
    assert HASH_SIZE == 32
    assert MAX_TREE_SIZE == 2**63
    assert ROOTS[0] == EMPTY_ROOT
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_leaf_and_node_hashes_match_vectors() -> None:
    for index, data in enumerate(LEAF_INPUTS):
        assert leaf_hash(data) == NODES8[NodeID(0, index)]
    assert leaf_hash(bytearray(b"\x10")) == NODES8[NodeID(0, 2)]
    for node, value in NODES8.items():
        if node.level:
            left, right = NodeID(node.level - 1, 2 * node.index), NodeID(node.level - 1, 2 * node.index + 1)
            assert node_hash(NODES8[left], NODES8[right]) == value


@pytest.mark.parametrize("size", range(9))
def test_roots_match_vectors(size: int) -> None:
    leaf_hashes = [NODES8[NodeID(0, i)] for i in range(size)]
    assert root_of(leaf_hashes) == ROOTS[size]
    assert fold([NODES8[node] for node in root_plan(size)]) == ROOTS[size]


def test_fold_definition() -> None:
    a, b, c = (NODES8[NodeID(0, i)] for i in range(3))
    assert fold([]) == EMPTY_ROOT
    assert fold([a]) == a
    assert fold([a, b, c]) == sha_node(a, sha_node(b, c))


# --- plans ----------------------------------------------------------------------------------------


def test_range_nodes_examples() -> None:
    assert range_nodes(0, 0) == ()
    assert range_nodes(5, 5) == ()
    assert range_nodes(0, 13) == (NodeID(3, 0), NodeID(2, 2), NodeID(0, 12))
    assert range_nodes(3, 13) == (NodeID(0, 3), NodeID(2, 1), NodeID(2, 2), NodeID(0, 12))
    assert range_nodes(6, 7) == (NodeID(0, 6),)
    assert range_nodes(0, 2**63) == (NodeID(63, 0),)
    assert root_plan(7) == (NodeID(2, 0), NodeID(1, 2), NodeID(0, 6))
    assert root_plan(0) == ()


@given(st.integers(0, MAX_TREE_SIZE), st.integers(0, MAX_TREE_SIZE))
def test_range_nodes_is_the_canonical_decomposition(a: int, b: int) -> None:
    begin, end = min(a, b), max(a, b)
    nodes = range_nodes(begin, end)
    position = begin
    for node in nodes:
        assert node.index * 2**node.level == position  # contiguous and aligned
        position += 2**node.level
    assert position == end
    levels = [node.level for node in nodes]
    peak = levels.index(max(levels)) if levels else 0
    # Strictly rising then strictly falling (at most one plateau of two at the peak): nothing can merge.
    assert all(x < y for x, y in itertools.pairwise(levels[: peak + 1]))
    tail = levels[peak + 1 :]
    assert all(x > y for x, y in itertools.pairwise(tail))
    if tail:
        assert tail[0] <= levels[peak]
        if tail[0] == levels[peak]:
            assert nodes[peak].index % 2 == 1  # equal neighbours are never siblings
    if begin == 0:
        assert levels == sorted((i for i in range(64) if end >> i & 1), reverse=True)


def test_plans_match_rfc_recursion_exhaustively() -> None:
    leaf_hashes = random_leaf_hashes(64, seed=7)
    ref = RefTree(leaf_hashes)
    nodes = all_perfect_nodes(leaf_hashes)
    for n in range(1, 65):
        for m in range(n):
            assert materialize(inclusion_plan(m, n), nodes) == ref.path(m, 0, n), (m, n)
        for m in range(n + 1):
            assert materialize(consistency_plan(m, n), nodes) == ref.proof(m, n), (m, n)


def test_plan_examples() -> None:
    assert inclusion_plan(0, 1) == []
    assert inclusion_plan(2, 3) == [(NodeID(1, 0),)]
    assert inclusion_plan(0, 7) == [(NodeID(0, 1),), (NodeID(1, 1),), ((NodeID(1, 2), NodeID(0, 6)))]
    assert inclusion_plan(6, 7) == [(NodeID(1, 2),), (NodeID(2, 0),)]
    assert consistency_plan(3, 7) == [
        (NodeID(0, 2),),
        (NodeID(0, 3),),
        (NodeID(1, 0),),
        (NodeID(1, 2), NodeID(0, 6)),
    ]
    assert consistency_plan(4, 7) == [(NodeID(1, 2), NodeID(0, 6))]
    assert consistency_plan(0, 7) == []
    assert consistency_plan(7, 7) == []


def test_materialize_errors() -> None:
    with pytest.raises(KeyError):
        materialize(inclusion_plan(0, 9), NODES8)
    with pytest.raises(MalformedInput):
        materialize([()], NODES8)


# --- the CT inclusion vectors and their broken variants -------------------------------------------


def inclusion_probes(
    index: int, size: int, proof: list[bytes], root: bytes, leaf: bytes
) -> list[dict[str, Any]]:
    """The corruptions of transparency-dev/merkle proof/verify_test.go (corruptInclusionProof)."""
    base = {"leaf_hash": leaf, "index": index, "tree_size": size, "proof": proof, "root": root}
    probes = [
        {**base, "index": index - 1},
        {**base, "index": index + 1},
        {**base, "index": index ^ 2},
        {**base, "tree_size": size * 2},
        {**base, "tree_size": size // 2},
        {**base, "leaf_hash": b"WrongLeaf"},
        {**base, "leaf_hash": SOME_HASH},
        {**base, "root": EMPTY_ROOT},
        {**base, "root": SOME_HASH},
        {**base, "root": flip([root], 0, HASH_SIZE - 1, 1)[0]},  # not in verify_test.go: last byte only
        {**base, "leaf_hash": flip([leaf], 0, HASH_SIZE - 1, 1)[0]},
        {**base, "proof": [*proof, b""]},
        {**base, "proof": [*proof, root]},
        {**base, "proof": [b"", *proof]},
        {**base, "proof": [root, *proof]},
    ]
    probes += [{**base, "proof": flip(proof, i, 0, 8)} for i in range(len(proof))]
    if proof:
        probes.append({**base, "proof": proof[:-1]})
    if len(proof) > 1:
        probes.append({**base, "proof": [proof[0], SOME_HASH, *proof[1:]]})
    return probes


@pytest.mark.parametrize("vector", INCLUSION_VECTORS, ids=lambda v: f"{v['leaf_index']}-of-{v['tree_size']}")
def test_inclusion_vectors(vector: dict[str, Any]) -> None:
    index, size, proof = vector["leaf_index"], vector["tree_size"], unhex(vector["proof"])
    leaf, root = NODES8[NodeID(0, index)], ROOTS[size]
    assert materialize(inclusion_plan(index, size), NODES8) == proof
    assert root_from_inclusion(leaf_hash=leaf, index=index, tree_size=size, proof=proof) == root
    verify_inclusion(leaf_hash=leaf, index=index, tree_size=size, proof=proof, root=root)
    verify_inclusion(leaf_hash=leaf, index=index, tree_size=size, proof=tuple(proof), root=root)
    for probe in inclusion_probes(index, size, proof, root, leaf):
        assert_rejected(verify_inclusion, BAD_INCLUSION, **probe)


@pytest.mark.parametrize(("index", "size"), [(0, 0), (0, 1), (1, 0), (2, 1)])
def test_inclusion_degenerate_probes(index: int, size: int) -> None:
    """TestVerifyInclusion of verify_test.go: empty proofs against empty or unrelated hashes never verify."""
    for leaf, root in [(SOME_HASH, b""), (b"", EMPTY_ROOT), (SOME_HASH, EMPTY_ROOT)]:
        assert_rejected(
            verify_inclusion, BAD_INCLUSION, leaf_hash=leaf, index=index, tree_size=size, proof=[], root=root
        )


def test_inclusion_single_entry() -> None:
    """TestVerifyInclusionSingleEntry of verify_test.go: for one leaf the root is the leaf hash."""
    h = leaf_hash(b"data")
    verify_inclusion(leaf_hash=h, index=0, tree_size=1, proof=[], root=h)
    for leaf, root in [(h, b""), (b"", h), (b"", b""), (h, SOME_HASH)]:
        assert_rejected(
            verify_inclusion, BAD_INCLUSION, leaf_hash=leaf, index=0, tree_size=1, proof=[], root=root
        )


# --- the CT consistency vectors and their broken variants -----------------------------------------


def consistency_probes(
    size1: int, size2: int, proof: list[bytes], root1: bytes, root2: bytes
) -> list[dict[str, Any]]:
    """The corruptions of transparency-dev/merkle proof/verify_test.go (corruptConsistencyProof)."""
    base = {"size1": size1, "size2": size2, "proof": proof, "root1": root1, "root2": root2}
    probes = [
        {**base, "size1": size1 - 1},
        {**base, "size1": size1 + 1},
        {**base, "size1": size1 ^ 2},
        {**base, "size2": size2 * 2},
        {**base, "size2": size2 // 2},
        {**base, "root1": b"WrongRoot"},
        {**base, "root2": b"WrongRoot"},
        {**base, "root1": SOME_HASH},
        {**base, "root2": SOME_HASH},
        {**base, "root1": flip([root1], 0, HASH_SIZE - 1, 1)[0]},  # not in verify_test.go: last byte only
        {**base, "root2": flip([root2], 0, HASH_SIZE - 1, 1)[0]},
        {**base, "root1": root2, "root2": root1},
        {**base, "proof": []},
        {**base, "proof": [*proof, b""]},
        {**base, "proof": [*proof, root1]},
        {**base, "proof": [*proof, root2]},
        {**base, "proof": [b"", *proof]},
        {**base, "proof": [root1, *proof]},
        {**base, "proof": [root2, *proof]},
        {**base, "proof": [proof[0], *proof]},
        {**base, "proof": proof[:-1]},
    ]
    probes += [{**base, "proof": flip(proof, i, 0, 16)} for i in range(len(proof))]
    return probes


@pytest.mark.parametrize("vector", CONSISTENCY_VECTORS, ids=lambda v: f"{v['size1']}-to-{v['size2']}")
def test_consistency_vectors(vector: dict[str, Any]) -> None:
    size1, size2, proof = vector["size1"], vector["size2"], unhex(vector["proof"])
    root1, root2 = ROOTS[size1], ROOTS[size2]
    assert materialize(consistency_plan(size1, size2), NODES8) == proof
    verify_consistency(size1=size1, size2=size2, proof=proof, root1=root1, root2=root2)
    if proof:  # as in verify_test.go, only non-trivial proofs are corrupted
        for probe in consistency_probes(size1, size2, proof, root1, root2):
            assert_rejected(verify_consistency, BAD_CONSISTENCY, **probe)


DONT_CARE_1 = hashlib.sha256(b"don't care 1").digest()
DONT_CARE_2 = hashlib.sha256(b"don't care 2").digest()


@pytest.mark.parametrize(
    ("size1", "size2", "root1", "root2", "proof", "ok"),
    [
        (0, 0, DONT_CARE_1, DONT_CARE_2, [], False),
        (1, 1, DONT_CARE_1, DONT_CARE_2, [], False),
        (0, 0, DONT_CARE_1, DONT_CARE_1, [], True),
        (0, 1, DONT_CARE_1, DONT_CARE_2, [], True),
        (1, 1, DONT_CARE_2, DONT_CARE_2, [], True),
        (1, 0, DONT_CARE_1, DONT_CARE_2, [], False),
        (2, 1, DONT_CARE_1, DONT_CARE_2, [], False),
        (1, 2, DONT_CARE_1, DONT_CARE_2, [], False),
        (0, 0, EMPTY_ROOT, DONT_CARE_2, [], False),
        (1, 1, EMPTY_ROOT, DONT_CARE_2, [], False),
        (0, 0, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT], False),
        (0, 1, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT], False),
        (1, 1, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT], False),
    ],
)
def test_consistency_edge_cases(
    size1: int, size2: int, root1: bytes, root2: bytes, proof: list[bytes], ok: bool
) -> None:
    """TestVerifyConsistency of verify_test.go (the 'don't care' roots made 32 bytes long)."""
    kwargs = {"size1": size1, "size2": size2, "proof": proof, "root1": root1, "root2": root2}
    if ok:
        verify_consistency(**kwargs)
    else:
        assert_rejected(verify_consistency, BAD_CONSISTENCY, **kwargs)


# --- argument validation --------------------------------------------------------------------------

H = SOME_HASH


@pytest.mark.parametrize(
    "call",
    [
        lambda: inclusion_plan(True, 5),
        lambda: inclusion_plan(0, True),
        lambda: inclusion_plan(-1, 5),
        lambda: inclusion_plan(5, 5),
        lambda: inclusion_plan(0, 0),
        lambda: inclusion_plan(1.0, 5),
        lambda: inclusion_plan(0, 2**63 + 1),
        lambda: inclusion_plan(0, 10**5000),
        lambda: consistency_plan(3, 2),
        lambda: consistency_plan(-1, 2),
        lambda: consistency_plan(0, 2**64),
        lambda: consistency_plan(False, 2),
        lambda: range_nodes(3, 2),
        lambda: range_nodes(-1, 3),
        lambda: range_nodes(0, 2**63 + 1),
        lambda: root_plan(-1),
        lambda: root_plan("3"),
        lambda: leaf_hash("text"),
        lambda: node_hash(H, H[:31]),
        lambda: node_hash(H + b"\x00", H),
        lambda: root_of([H, b"x"]),
        lambda: fold([H, "x" * 32]),
        lambda: verify_inclusion(leaf_hash=H[:31], index=0, tree_size=1, proof=[], root=H),
        lambda: verify_inclusion(leaf_hash=H, index=0, tree_size=1, proof=[], root=H + b"\x00"),
        lambda: verify_inclusion(leaf_hash=H, index=0, tree_size=2, proof=["x" * 32], root=H),
        lambda: verify_inclusion(leaf_hash=H, index=0, tree_size=2, proof=H, root=H),
        lambda: verify_inclusion(leaf_hash=H, index=False, tree_size=2, proof=[H], root=H),
        lambda: verify_inclusion(leaf_hash=H, index=0, tree_size=2**63 + 1, proof=[H], root=H),
        lambda: root_from_inclusion(leaf_hash=H, index=2, tree_size=2, proof=[H]),
        lambda: verify_consistency(size1=3, size2=2, proof=[], root1=H, root2=H),
        lambda: verify_consistency(size1=True, size2=2, proof=[H], root1=H, root2=H),
        lambda: verify_consistency(size1=1, size2=2, proof=[H], root1=H[:1], root2=H),
        lambda: verify_consistency(size1=1, size2=2, proof=[H[:1]], root1=H, root2=H),
        lambda: verify_consistency(size1=0, size2=2, proof=None, root1=H, root2=H),
    ],
)
def test_bad_arguments(call: Callable[[], object]) -> None:
    with pytest.raises(MalformedInput) as info:
        call()
    assert info.value.slug == BAD_ARGS


def test_wrong_length_is_a_verification_failure() -> None:
    with pytest.raises(VerificationFailed) as info:
        root_from_inclusion(leaf_hash=H, index=0, tree_size=2, proof=[])
    assert info.value.slug == BAD_INCLUSION
    with pytest.raises(VerificationFailed) as info:
        verify_consistency(size1=1, size2=2, proof=[H, H], root1=H, root2=H)
    assert info.value.slug == BAD_CONSISTENCY


# --- property tests on random trees ---------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(size=st.integers(1, 300), seed=st.integers(0, 2**32), data=st.data())
def test_random_tree_inclusion(size: int, seed: int, data: st.DataObject) -> None:
    leaf_hashes = random_leaf_hashes(size, seed)
    nodes = all_perfect_nodes(leaf_hashes)
    root = root_of(leaf_hashes)
    assert root == RefTree(leaf_hashes).mth(0, size)
    for index in range(size):
        proof = materialize(inclusion_plan(index, size), nodes)
        verify_inclusion(leaf_hash=leaf_hashes[index], index=index, tree_size=size, proof=proof, root=root)

    index = data.draw(st.integers(0, size - 1), label="index")
    proof = materialize(inclusion_plan(index, size), nodes)
    base = {"leaf_hash": leaf_hashes[index], "index": index, "tree_size": size, "root": root}
    extra = data.draw(st.binary(min_size=HASH_SIZE, max_size=HASH_SIZE), label="extra")
    at = data.draw(st.integers(0, len(proof)), label="insert at")
    assert_rejected(verify_inclusion, BAD_INCLUSION, **base, proof=[*proof[:at], extra, *proof[at:]])
    byte = data.draw(st.integers(0, HASH_SIZE - 1), label="root byte")
    bad_root = flip([root], 0, byte, data.draw(st.integers(1, 255), label="root xor"))[0]
    assert_rejected(verify_inclusion, BAD_INCLUSION, **{**base, "root": bad_root}, proof=proof)
    if proof:
        pos = data.draw(st.integers(0, len(proof) - 1), label="element")
        byte = data.draw(st.integers(0, HASH_SIZE - 1), label="byte")
        mask = data.draw(st.integers(1, 255), label="xor")
        assert_rejected(verify_inclusion, BAD_INCLUSION, **base, proof=flip(proof, pos, byte, mask))
        assert_rejected(verify_inclusion, BAD_INCLUSION, **base, proof=proof[:pos] + proof[pos + 1 :])


@settings(max_examples=30, deadline=None)
@given(size2=st.integers(1, 300), seed=st.integers(0, 2**32), data=st.data())
def test_random_tree_consistency(size2: int, seed: int, data: st.DataObject) -> None:
    leaf_hashes = random_leaf_hashes(size2, seed)
    nodes = all_perfect_nodes(leaf_hashes)
    roots = [root_of(leaf_hashes[:size1]) for size1 in range(size2 + 1)]
    for size1 in range(size2 + 1):
        proof = materialize(consistency_plan(size1, size2), nodes)
        verify_consistency(size1=size1, size2=size2, proof=proof, root1=roots[size1], root2=roots[size2])

    if size2 < 2:
        return
    size1 = data.draw(st.integers(1, size2 - 1), label="size1")
    proof = materialize(consistency_plan(size1, size2), nodes)
    base = {"size1": size1, "size2": size2, "root1": roots[size1], "root2": roots[size2]}
    pos = data.draw(st.integers(0, len(proof) - 1), label="element")
    byte = data.draw(st.integers(0, HASH_SIZE - 1), label="byte")
    mask = data.draw(st.integers(1, 255), label="xor")
    extra = data.draw(st.binary(min_size=HASH_SIZE, max_size=HASH_SIZE), label="extra")
    at = data.draw(st.integers(0, len(proof)), label="insert at")
    assert_rejected(verify_consistency, BAD_CONSISTENCY, **base, proof=flip(proof, pos, byte, mask))
    assert_rejected(verify_consistency, BAD_CONSISTENCY, **base, proof=proof[:pos] + proof[pos + 1 :])
    assert_rejected(verify_consistency, BAD_CONSISTENCY, **base, proof=[*proof[:at], extra, *proof[at:]])
    which = data.draw(st.sampled_from(["root1", "root2"]), label="which root")
    bad_root = flip([base[which]], 0, byte, mask)[0]
    assert_rejected(verify_consistency, BAD_CONSISTENCY, **{**base, which: bad_root}, proof=proof)


class UniformNodes(Mapping[NodeID, bytes]):
    """Perfect nodes of a huge tree whose leaves are all equal: a node's hash depends on its level only."""

    def __init__(self) -> None:
        self.by_level = [sha_leaf(b"same")]
        for _ in range(63):
            self.by_level.append(sha_node(self.by_level[-1], self.by_level[-1]))

    def __getitem__(self, node: NodeID) -> bytes:
        return self.by_level[node.level]

    def __iter__(self) -> Iterator[NodeID]:
        raise NotImplementedError

    def __len__(self) -> int:
        return 2**64

    def root(self, n: int) -> bytes:
        """MTH of n uniform leaves by the RFC 9162 2.1.1 recursion."""
        if n & (n - 1) == 0:
            return self.by_level[n.bit_length() - 1]
        k = largest_power_below(n)
        return sha_node(self.root(k), self.root(n - k))


UNIFORM = UniformNodes()


@given(st.integers(1, MAX_TREE_SIZE), st.data())
def test_huge_trees(size2: int, data: st.DataObject) -> None:
    index = data.draw(st.integers(0, size2 - 1))
    size1 = data.draw(st.integers(0, size2))
    leaf, root1, root2 = (
        UNIFORM.by_level[0],
        UNIFORM.root(size1) if size1 else EMPTY_ROOT,
        UNIFORM.root(size2),
    )
    proof = materialize(inclusion_plan(index, size2), UNIFORM)
    verify_inclusion(leaf_hash=leaf, index=index, tree_size=size2, proof=proof, root=root2)
    if proof:
        assert_rejected(
            verify_inclusion,
            BAD_INCLUSION,
            leaf_hash=leaf,
            index=index,
            tree_size=size2,
            proof=proof[1:],
            root=root2,
        )
    proof = materialize(consistency_plan(size1, size2), UNIFORM)
    verify_consistency(size1=size1, size2=size2, proof=proof, root1=root1, root2=root2)
    if proof:
        bad = flip(proof, len(proof) - 1, 31, 0x80)
        assert_rejected(
            verify_consistency, BAD_CONSISTENCY, size1=size1, size2=size2, proof=bad, root1=root1, root2=root2
        )


# --- one larger tree ------------------------------------------------------------------------------


def test_ten_thousand_leaves() -> None:
    size, rng = 10_000, random.Random(20240601)
    leaf_hashes = random_leaf_hashes(size, seed=1)
    nodes = all_perfect_nodes(leaf_hashes)
    ref = RefTree(leaf_hashes)
    root = root_of(leaf_hashes)
    assert root == ref.mth(0, size)
    assert fold([nodes[node] for node in root_plan(size)]) == root

    for index in rng.sample(range(size), 2_000):
        proof = materialize(inclusion_plan(index, size), nodes)
        verify_inclusion(leaf_hash=leaf_hashes[index], index=index, tree_size=size, proof=proof, root=root)
    for index in [0, 4_095, 8_191, 9_999, *rng.sample(range(size), 2)]:
        proof = materialize(inclusion_plan(index, size), nodes)
        base = {"leaf_hash": leaf_hashes[index], "index": index, "tree_size": size, "root": root}
        for bad in every_tampering(proof):
            assert_rejected(verify_inclusion, BAD_INCLUSION, **base, proof=bad)

    pairs = [(0, size), (size, size), (1, size), (size - 1, size), (8_192, size)]
    pairs += [tuple(sorted(rng.sample(range(1, size + 1), 2))) for _ in range(495)]
    for size1, size2 in pairs:
        proof = materialize(consistency_plan(size1, size2), nodes)
        root1, root2 = ref.mth(0, size1), ref.mth(0, size2)
        verify_consistency(size1=size1, size2=size2, proof=proof, root1=root1, root2=root2)
        assert proof == ref.proof(size1, size2)
    for size1, size2 in pairs[2:6]:
        proof = materialize(consistency_plan(size1, size2), nodes)
        base = {"size1": size1, "size2": size2, "root1": ref.mth(0, size1), "root2": ref.mth(0, size2)}
        for bad in every_tampering(proof):
            assert_rejected(verify_consistency, BAD_CONSISTENCY, **base, proof=bad)
