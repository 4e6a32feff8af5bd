"""Merkle trees in the manner of Certificate Transparency (RFC 9162 §2.1).

A tree over ``n`` entries is hashed as

    MTH({})      = SHA-256()
    MTH({d0})    = SHA-256(0x00 ‖ d0)                                   (leaf hash)
    MTH(D[n])    = SHA-256(0x01 ‖ MTH(D[0:k]) ‖ MTH(D[k:n]))            (node hash)

with ``k`` the largest power of two smaller than ``n``. An *inclusion proof* shows that one entry
is in a tree of a given size and root; a *consistency proof* shows that a tree of size ``m`` is a
prefix of a tree of size ``n`` (nothing in the first ``m`` entries was changed or removed). The
verification functions follow the RFC's algorithms (§2.1.3.2 and §2.1.4.2) step by step, so anyone
can check a proof with any CT library.

Everything here works on *leaf hashes* (``leaf_hash(data)``), so callers hash each entry once.
:class:`Frontier` keeps only the roots of the perfect subtrees along the right edge (at most
log2 n hashes): appending a leaf and reading the root cost O(log n), without the earlier leaves.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    """``SHA-256(0x00 ‖ data)``."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 ‖ left ‖ right)``."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def split_point(n: int) -> int:
    """The largest power of two smaller than ``n`` (``n`` ≥ 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def tree_root(leaves: Sequence[bytes]) -> bytes:
    """The root of the tree over these leaf hashes (``MTH``)."""
    if not leaves:
        return EMPTY_ROOT
    if len(leaves) == 1:
        return leaves[0]
    k = split_point(len(leaves))
    return node_hash(tree_root(leaves[:k]), tree_root(leaves[k:]))


def inclusion_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """``PATH(index, D[n])``: the sibling hashes from leaf ``index`` up to the root."""
    if not 0 <= index < len(leaves):
        raise ValueError(f"leaf {index} is not in a tree of size {len(leaves)}")
    if len(leaves) == 1:
        return []
    k = split_point(len(leaves))
    if index < k:
        return [*inclusion_proof(leaves[:k], index), tree_root(leaves[k:])]
    return [*inclusion_proof(leaves[k:], index - k), tree_root(leaves[:k])]


def consistency_proof(leaves: Sequence[bytes], old_size: int) -> list[bytes]:
    """``PROOF(old_size, D[n])``: shows the tree of ``old_size`` leaves is a prefix of this one."""
    if not 0 < old_size <= len(leaves):
        raise ValueError(f"no consistency proof from size {old_size} to size {len(leaves)}")
    return _subproof(old_size, leaves, complete=True)


def _subproof(m: int, leaves: Sequence[bytes], *, complete: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if complete else [tree_root(leaves)]
    k = split_point(n)
    if m <= k:
        return [*_subproof(m, leaves[:k], complete=complete), tree_root(leaves[k:])]
    return [*_subproof(m - k, leaves[k:], complete=False), tree_root(leaves[:k])]


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """RFC 9162 §2.1.3.2: does ``proof`` put leaf hash ``leaf`` at ``index`` of the tree
    (``size``, ``root``)?"""
    if not 0 <= index < size:
        return False
    fn, sn = index, size - 1
    r = leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """RFC 9162 §2.1.4.2: does ``proof`` show the tree (``old_size``, ``old_root``) is a prefix
    of the tree (``new_size``, ``new_root``)? Equal sizes need an empty proof and equal roots."""
    if not 0 < old_size <= new_size:
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if not proof:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # a power of two: the old root is the first node
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == old_root and sr == new_root and sn == 0


@dataclass(frozen=True)
class Frontier:
    """The right edge of a tree: the roots of its perfect subtrees, largest (leftmost) first.

    Their sizes are the binary digits of ``size``: a tree of 6 leaves keeps the roots of leaves
    0–3 and 4–5. Enough to append and to compute the root without the earlier leaves.
    """

    size: int = 0
    hashes: tuple[bytes, ...] = ()

    def __post_init__(self) -> None:
        if self.size < 0 or len(self.hashes) != self.size.bit_count():
            raise ValueError(
                f"a frontier of size {self.size} holds {self.size.bit_count()} hashes, "
                f"not {len(self.hashes)}"
            )

    def append(self, leaf: bytes) -> Frontier:
        """The frontier with one more leaf hash: equal-sized subtrees merge, as in a binary carry."""
        hashes = list(self.hashes)
        merged = leaf
        carry = self.size
        while carry & 1:
            merged = node_hash(hashes.pop(), merged)
            carry >>= 1
        hashes.append(merged)
        return Frontier(self.size + 1, tuple(hashes))

    def root(self) -> bytes:
        """``MTH`` of the whole tree: the subtree roots folded from the right."""
        if not self.hashes:
            return EMPTY_ROOT
        result = self.hashes[-1]
        for left in reversed(self.hashes[:-1]):
            result = node_hash(left, result)
        return result

    @classmethod
    def of(cls, leaves: Sequence[bytes]) -> Frontier:
        frontier = cls()
        for leaf in leaves:
            frontier = frontier.append(leaf)
        return frontier
