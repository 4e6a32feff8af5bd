"""Sport ranks ("min" method: ties share the lowest rank) in plain NumPy.

The same numbers as ``scipy.stats.rankdata(a, method="min")`` for NaN-free input, without
importing ``scipy.stats`` (about a quarter of a second at start-up, for one function).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def min_ranks(values: npt.ArrayLike, axis: int = 0) -> npt.NDArray[np.intp]:
    """Rank along ``axis`` from 1 (smallest); tied values share the lowest rank of their group.

    ``values`` must not hold NaN (callers mask it first); ``±inf`` are ordinary values.
    """
    arr = np.moveaxis(np.asarray(values, dtype=float), axis, 0)
    n = arr.shape[0]
    ranks = np.empty(arr.shape, dtype=np.intp)
    if n == 0:
        return np.moveaxis(ranks, 0, axis)
    order = np.argsort(arr, axis=0, kind="stable")
    ordered = np.take_along_axis(arr, order, axis=0)
    position = np.arange(1, n + 1, dtype=np.intp).reshape((n,) + (1,) * (arr.ndim - 1))
    starts = np.ones(arr.shape, dtype=bool)
    starts[1:] = ordered[1:] != ordered[:-1]
    # each element takes the position where its run of equal values starts
    first = np.maximum.accumulate(np.where(starts, position, 0), axis=0)
    np.put_along_axis(ranks, order, first, axis=0)
    return np.moveaxis(ranks, 0, axis)
