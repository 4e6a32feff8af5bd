"""Robust statistics the anomaly, silence and network rules share: medians and MADs."""

from __future__ import annotations

import math
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
    """Median and MAD of an already sorted list, in O(log n), without building the deviations.

    Deviations left of the median, read outwards, increase, and so do those on the right: the
    MAD is the middle of the merge of those two increasing runs, found by bisecting how many of
    the smallest deviations come from the left run (the rolling MAD rule calls this for every
    reading, so a Python-level merge of half the window was its largest cost).
    """
    n = len(ordered)
    middle = n // 2
    median = ordered[middle] if n % 2 else (ordered[middle - 1] + ordered[middle]) / 2.0
    split = bisect_left(ordered, median)
    right_count = n - split
    # Deviation i of the left run is median - ordered[split - 1 - i]; j of the right run is
    # ordered[split + j] - median. Take the `taken` smallest of both: `lo` of them from the left.
    taken = middle + 1 if n % 2 else middle  # up to and including the (lower) middle deviation
    lo, hi = max(0, taken - right_count), min(taken, split)
    while lo < hi:
        from_left = (lo + hi) // 2
        if (
            median - ordered[split - 1 - from_left]
            < ordered[split + taken - from_left - 1] - median
        ):
            lo = from_left + 1
        else:
            hi = from_left
    from_right = taken - lo
    current = max(
        median - ordered[split - lo] if lo else -math.inf,
        ordered[split + from_right - 1] - median if from_right else -math.inf,
    )
    if n % 2:
        return float(median), float(current)
    following = min(
        median - ordered[split - 1 - lo] if lo < split else math.inf,
        ordered[split + from_right] - median if from_right < right_count else math.inf,
    )
    return float(median), float((current + following) / 2.0)


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
