"""R's ``set.seed(seed); sample(1:n, replace = TRUE)``, reproduced to replay cSEM's resamples.

R (>= 3.6, the defaults: Mersenne-Twister, sample.kind "Rejection"), following its
src/main/RNG.c: ``set.seed`` scrambles the seed with the LCG ``s = 69069 s + 1`` (50 times,
then once per state word) into the 624 words of a standard MT19937 whose position is 624;
``unif_rand`` is the 32-bit output times 2^-32; ``R_unif_index(n)`` draws ``bits = ceil(log2 n)``
bits, 16 at a time from ``floor(unif_rand() * 65536)``, and rejects values >= n.
"""

from __future__ import annotations

import math

import numpy as np

_MASK32 = 0xFFFFFFFF


class RSampler:
    """The stream of ``sample.int(n, n, replace = TRUE)`` calls after ``set.seed(seed)``."""

    def __init__(self, seed: int) -> None:
        s = seed & _MASK32
        for _ in range(50):
            s = (69069 * s + 1) & _MASK32
        words = []
        for _ in range(625):  # the first word is R's position slot, reset to 624
            s = (69069 * s + 1) & _MASK32
            words.append(s)
        self._bits = np.random.MT19937()
        self._bits.state = {
            "bit_generator": "MT19937",
            "state": {"key": np.array(words[1:], dtype=np.uint32), "pos": 624},
        }

    def _chunk16(self) -> int:
        # floor(unif_rand() * 65536) with unif_rand = y * 2^-32 (never 0 or 1 after R's fixup)
        return int(self._bits.random_raw()) >> 16

    def _index(self, n: int) -> int:
        bits = math.ceil(math.log2(n))
        while True:
            v = 0
            for _ in range(0, bits + 1, 16):
                v = 65536 * v + self._chunk16()
            v &= (1 << bits) - 1
            if v < n:
                return v

    def sample(self, n: int, size: int | None = None) -> np.ndarray:
        """Zero-based indices of ``sample(1:n, size, replace = TRUE)``."""
        return np.array([self._index(n) for _ in range(n if size is None else size)])

    def resamples(self, n: int, count: int) -> np.ndarray:
        """``count`` successive resamples of ``n`` rows (count × n, zero-based)."""
        return np.stack([self.sample(n) for _ in range(count)])
