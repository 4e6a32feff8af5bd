"""The Merkle engine against RFC 9162 §2.1: the definitions written out literally here (MTH, PATH,
PROOF on the entries themselves), every proof for every size up to 64 checked by brute force, and
Hypothesis for larger trees and for tampered proofs."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, strategies as st

from qala.engines.merkle import (
    EMPTY_ROOT,
    Frontier,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    tree_root,
    verify_consistency,
    verify_inclusion,
)

SIZES = range(1, 65)


def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def k_of(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(d: list[bytes]) -> bytes:
    """RFC 9162 §2.1.1, on the entries (not their leaf hashes)."""
    if not d:
        return sha(b"")
    if len(d) == 1:
        return sha(b"\x00" + d[0])
    k = k_of(len(d))
    return sha(b"\x01" + mth(d[:k]) + mth(d[k:]))


def path(m: int, d: list[bytes]) -> list[bytes]:
    """RFC 9162 §2.1.3.1."""
    if len(d) == 1:
        return []
    k = k_of(len(d))
    if m < k:
        return [*path(m, d[:k]), mth(d[k:])]
    return [*path(m - k, d[k:]), mth(d[:k])]


def subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    """RFC 9162 §2.1.4.1."""
    n = len(d)
    if m == n:
        return [] if b else [mth(d)]
    k = k_of(n)
    if m <= k:
        return [*subproof(m, d[:k], b), mth(d[k:])]
    return [*subproof(m - k, d[k:], False), mth(d[:k])]


def shape(m: int, n: int) -> list[str]:
    """Which side each hash of PATH(m, D[n]) sits on. A proof says nothing else about the size
    (the signed head does): it verifies against another size exactly when the sides agree."""
    if n == 1:
        return []
    k = k_of(n)
    return [*shape(m, k), "right"] if m < k else [*shape(m - k, n - k), "left"]


def consistency_shape(m: int, n: int, b: bool = True) -> list[str]:
    """The same for PROOF(m, D[n])."""
    if m == n:
        return [] if b else ["old root"]
    k = k_of(n)
    if m <= k:
        return [*consistency_shape(m, k, b), "right"]
    return [*consistency_shape(m - k, n - k, False), "left"]


def entries(n: int) -> list[bytes]:
    return [f"entry {i}".encode() for i in range(n)]


def flipped(value: bytes, bit: int) -> bytes:
    data = bytearray(value)
    data[bit // 8 % len(data)] ^= 1 << (bit % 8)
    return bytes(data)


def test_the_hashes_by_hand() -> None:
    assert tree_root([]) == EMPTY_ROOT == sha(b"")
    a, b, c = (leaf_hash(x) for x in (b"a", b"b", b"c"))
    assert a == sha(b"\x00a")
    ab = sha(b"\x01" + a + b)
    assert tree_root([a, b]) == ab
    assert tree_root([a, b, c]) == sha(b"\x01" + ab + c)


@pytest.mark.parametrize("n", SIZES)
def test_every_size_matches_the_rfc_and_every_proof_verifies(n: int) -> None:
    d = entries(n)
    leaves = [leaf_hash(x) for x in d]
    root = tree_root(leaves)
    assert root == mth(d) == Frontier.of(leaves).root()
    for m in range(n):
        proof = inclusion_proof(leaves, m)
        assert proof == path(m, d)
        assert verify_inclusion(leaves[m], m, n, proof, root)
        for size in range(1, n + 3):
            same_sides = m < size and shape(m, size) == shape(m, n)
            assert verify_inclusion(leaves[m], m, size, proof, root) == same_sides
        for index in range(n + 2):
            same_sides = index < n and shape(index, n) == shape(m, n)
            assert verify_inclusion(leaves[m], index, n, proof, root) == same_sides
        assert not verify_inclusion(leaf_hash(b"other"), m, n, proof, root)
        if proof:
            assert not verify_inclusion(leaves[m], m, n, proof[:-1], root)
        assert not verify_inclusion(leaves[m], m, n, [*proof, root], root)
    for old in range(1, n + 1):
        proof = consistency_proof(leaves, old)
        assert proof == subproof(old, d, True)
        old_root = mth(d[:old])
        assert verify_consistency(old, n, old_root, root, proof)
        if old < n:
            assert not verify_consistency(old, n, root, root, proof)
            for size in range(old, n + 3):
                accepted = verify_consistency(old, size, old_root, root, proof)
                assert not accepted or consistency_shape(old, size) == consistency_shape(old, n)
            for other in range(1, n + 1):
                accepted = verify_consistency(other, n, old_root, root, proof)
                assert not accepted or consistency_shape(other, n) == consistency_shape(old, n)
            assert not verify_consistency(old, n, old_root, root, proof[:-1])
            assert not verify_consistency(old, n, old_root, root, [])


@pytest.mark.parametrize("n", SIZES)
def test_every_flipped_bit_in_an_inclusion_proof_fails(n: int) -> None:
    leaves = [leaf_hash(x) for x in entries(n)]
    root = tree_root(leaves)
    for m in range(0, n, max(1, n // 7)):
        proof = inclusion_proof(leaves, m)
        for i in range(len(proof)):
            for bit in (0, 77, 255):
                bad = [*proof[:i], flipped(proof[i], bit), *proof[i + 1 :]]
                assert not verify_inclusion(leaves[m], m, n, bad, root)
        assert not verify_inclusion(leaves[m], m, n, proof, flipped(root, 3))
        assert not verify_inclusion(flipped(leaves[m], 200), m, n, proof, root)


@pytest.mark.parametrize("n", SIZES)
def test_every_flipped_bit_in_a_consistency_proof_fails(n: int) -> None:
    leaves = [leaf_hash(x) for x in entries(n)]
    root = tree_root(leaves)
    for old in range(1, n):
        proof = consistency_proof(leaves, old)
        old_root = tree_root(leaves[:old])
        for i in range(len(proof)):
            bad = [*proof[:i], flipped(proof[i], 7 * i + old), *proof[i + 1 :]]
            assert not verify_consistency(old, n, old_root, root, bad)
        assert not verify_consistency(old, n, flipped(old_root, 1), root, proof)
        assert not verify_consistency(old, n, old_root, flipped(root, 250), proof)


def test_a_changed_entry_breaks_consistency_with_the_old_root() -> None:
    leaves = [leaf_hash(x) for x in entries(20)]
    old_root = tree_root(leaves[:13])
    rewritten = [*leaves[:5], leaf_hash(b"rewritten"), *leaves[6:]]
    proof = consistency_proof(rewritten, 13)
    assert not verify_consistency(13, 20, old_root, tree_root(rewritten), proof)


def test_proofs_outside_the_tree_are_refused() -> None:
    leaves = [leaf_hash(x) for x in entries(4)]
    with pytest.raises(ValueError, match="not in a tree of size 4"):
        inclusion_proof(leaves, 4)
    with pytest.raises(ValueError, match="from size 5 to size 4"):
        consistency_proof(leaves, 5)
    with pytest.raises(ValueError, match="from size 0"):
        consistency_proof(leaves, 0)
    assert not verify_inclusion(leaves[0], -1, 4, [], tree_root(leaves))
    assert not verify_consistency(0, 4, EMPTY_ROOT, tree_root(leaves), [])
    with pytest.raises(ValueError, match="holds 2 hashes, not 1"):
        Frontier(3, (leaves[0],))


@st.composite
def tree_and_index(draw: st.DrawFn) -> tuple[list[bytes], int, int]:
    n = draw(st.integers(1, 600))
    leaves = [leaf_hash(i.to_bytes(4, "big")) for i in range(n)]
    return leaves, draw(st.integers(0, n - 1)), draw(st.integers(1, n))


@given(tree_and_index(), st.integers(0, 10_000))
def test_random_trees_prove_and_refuse_tampering(
    case: tuple[list[bytes], int, int], bit: int
) -> None:
    leaves, index, old = case
    n = len(leaves)
    root = tree_root(leaves)
    assert Frontier.of(leaves).root() == root
    proof = inclusion_proof(leaves, index)
    assert verify_inclusion(leaves[index], index, n, proof, root)
    assert not verify_inclusion(leaves[index], index, n, proof, flipped(root, bit))
    if proof:
        i = bit % len(proof)
        bad = [*proof[:i], flipped(proof[i], bit), *proof[i + 1 :]]
        assert not verify_inclusion(leaves[index], index, n, bad, root)
    for size in (n - 1, n + 1, 2 * n):
        same_sides = index < size and shape(index, size) == shape(index, n)
        assert verify_inclusion(leaves[index], index, size, proof, root) == same_sides
    old_root = tree_root(leaves[:old])
    proof = consistency_proof(leaves, old)
    assert verify_consistency(old, n, old_root, root, proof)
    if proof:
        i = bit % len(proof)
        bad = [*proof[:i], flipped(proof[i], bit), *proof[i + 1 :]]
        assert not verify_consistency(old, n, old_root, root, bad)
    if old < n:
        assert not verify_consistency(old, n, flipped(old_root, bit), root, proof)
        for size in (n + 1, 2 * n):
            accepted = verify_consistency(old, size, old_root, root, proof)
            assert not accepted or consistency_shape(old, size) == consistency_shape(old, n)
