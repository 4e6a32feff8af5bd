"""Sport ranks in NumPy against SciPy's rankdata(method="min"), which they replace."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import rankdata

from qala.engines.index.ranking import min_ranks


@pytest.mark.parametrize("shape", [(0,), (1,), (9,), (51, 300), (4, 3)])
def test_min_ranks_match_rankdata(shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(len(shape) + sum(shape))
    values = np.round(rng.normal(size=shape), 1)  # many ties
    if values.size > 3:
        values.flat[0], values.flat[2] = np.inf, -np.inf
    got = min_ranks(values, axis=0)
    expected = rankdata(values, method="min", axis=0)
    assert got.dtype == expected.dtype
    assert np.array_equal(got, expected)


def test_min_ranks_along_rows() -> None:
    values = np.array([[3.0, 1.0, 3.0, 2.0], [0.0, 0.0, -1.0, 5.0]])
    assert min_ranks(values, axis=1).tolist() == [[3, 1, 3, 2], [2, 2, 1, 4]]
