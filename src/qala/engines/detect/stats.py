"""Robust statistics the anomaly, silence and network rules share: medians and MADs."""

from __future__ import annotations

from bisect import bisect_left

import numpy as np

MAD_SCALE = 0.6745  # Φ⁻¹(0.75): makes MAD comparable with a standard deviation


def median(values: list[float] | list[int]) -> float:
    ordered = sorted(values)
    n = len(ordered)
    middle = n // 2
    return float(ordered[middle]) if n % 2 else (ordered[middle - 1] + ordered[middle]) / 2.0


def median_without(ordered: list[float], rank: int) -> float:
    """Median of sorted ``ordered`` with the element at ``rank`` left out, in O(1)."""
    count = len(ordered) - 1

    def other(index: int) -> float:
        return ordered[index] if index < rank else ordered[index + 1]

    middle = count // 2
    return other(middle) if count % 2 else (other(middle - 1) + other(middle)) / 2.0


def median_mad_of_sorted(ordered: list[float]) -> tuple[float, float]:
    """Median and MAD of an already sorted list in O(n) without building the deviations.

    Deviations left of the median, read outwards, increase, and so do those on the right: the
    MAD is the middle of the merge of those two increasing runs.
    """
    n = len(ordered)
    middle = n // 2
    median = ordered[middle] if n % 2 else (ordered[middle - 1] + ordered[middle]) / 2.0
    split = bisect_left(ordered, median)
    left = split - 1  # next left value to take (moving down)
    right = split  # next right value to take (moving up)
    wanted = middle if n % 2 else middle - 1  # 0-based rank of the (lower) middle deviation
    previous = current = 0.0
    for _ in range(wanted + 1 + (0 if n % 2 else 1)):
        previous = current
        if right >= n or (left >= 0 and median - ordered[left] <= ordered[right] - median):
            current = median - ordered[left]
            left -= 1
        else:
            current = ordered[right] - median
            right += 1
    mad = current if n % 2 else (previous + current) / 2.0
    return float(median), float(mad)


def median_mad(values: list[float]) -> tuple[float, float]:
    """Median and median absolute deviation (unscaled)."""
    if len(values) < 64:
        ordered = sorted(values)
        n = len(ordered)
        middle = n // 2
        median = ordered[middle] if n % 2 else (ordered[middle - 1] + ordered[middle]) / 2.0
        deviations = sorted([abs(v - median) for v in ordered])
        mad = deviations[middle] if n % 2 else (deviations[middle - 1] + deviations[middle]) / 2.0
        return float(median), float(mad)
    array = np.asarray(values, dtype=float)
    median = float(np.median(array))
    return median, float(np.median(np.abs(array - median)))
