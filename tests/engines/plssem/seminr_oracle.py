"""Run the PyPI package seminr (GPL-3) as a test oracle; imported lazily, only by tests."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

SCHEMES = ("path", "factor", "centroid")

MOBI_TEXT = """
Image =~ IMAG1 + IMAG2 + IMAG3 + IMAG4 + IMAG5
Expectation =~ CUEX1 + CUEX2 + CUEX3
Quality =~ PERQ1 + PERQ2 + PERQ3 + PERQ4 + PERQ5 + PERQ6 + PERQ7
Value =~ PERV1 + PERV2
Satisfaction =~ CUSA1 + CUSA2 + CUSA3
Complaints =~ CUSCO
Loyalty =~ CUSL1 + CUSL2 + CUSL3
Expectation ~ Image
Quality ~ Expectation
Value ~ Expectation + Quality
Satisfaction ~ Image + Expectation + Quality + Value
Complaints ~ Satisfaction
Loyalty ~ Image + Satisfaction + Complaints
"""


def seminr_model(data: pd.DataFrame, scheme: str, consistent: bool) -> Any:
    import seminr as s
    from seminr.math import stats
    from seminr.math.named_matrix import NamedMatrix

    def centroid(sm: Any, scores: Any, dependant: Any, paths: Any) -> Any:
        cors = stats.col_cor(scores.values, scores.values)
        mask = paths.values + paths.values.T
        return NamedMatrix(paths.rows, paths.rows, np.ascontiguousarray(np.sign(cors) * mask))

    kind = s.reflective if consistent else s.composite
    mm = s.constructs(
        kind("Image", s.multi_items("IMAG", range(1, 6))),
        kind("Expectation", s.multi_items("CUEX", range(1, 4))),
        kind("Quality", s.multi_items("PERQ", range(1, 8))),
        kind("Value", s.multi_items("PERV", range(1, 3))),
        kind("Satisfaction", s.multi_items("CUSA", range(1, 4))),
        kind("Complaints", s.single_item("CUSCO")),
        kind("Loyalty", s.multi_items("CUSL", range(1, 4))),
    )
    sm = s.relationships(
        s.paths(from_="Image", to=["Expectation", "Satisfaction", "Loyalty"]),
        s.paths(from_="Expectation", to=["Quality", "Value", "Satisfaction"]),
        s.paths(from_="Quality", to=["Value", "Satisfaction"]),
        s.paths(from_="Value", to=["Satisfaction"]),
        s.paths(from_="Satisfaction", to=["Complaints", "Loyalty"]),
        s.paths(from_="Complaints", to=["Loyalty"]),
    )
    inner = {"path": s.path_weighting, "factor": s.path_factorial, "centroid": centroid}[scheme]
    return s, s.estimate_pls(data, mm, sm, inner_weights=inner)


def seminr_fit(data: pd.DataFrame, scheme: str, consistent: bool) -> dict[str, dict[str, float]]:
    """seminr's estimates in the flat form the reference module stores."""
    s, m = seminr_model(data, scheme, consistent)

    def cells(nm: Any, key: str) -> dict[str, float]:
        out = {}
        for a, row in enumerate(nm.rows):
            for b, col in enumerate(nm.cols):
                v = float(nm.values[a, b])
                if v != 0 and np.isfinite(v):
                    out[key.format(row=row, col=col)] = v
        return out

    rel = s.reliability_table(m)
    names = {"alpha": "alpha", "rhoA": "rho_a", "rhoC": "rho_c", "AVE": "ave"}
    return {
        "loadings": cells(m.outer_loadings, "{col}|{row}"),
        "weights": cells(m.outer_weights, "{col}|{row}"),
        "paths": cells(m.path_coef, "{row} -> {col}"),
        "r2": {c: float(m.r_squared.values[0, j]) for j, c in enumerate(m.r_squared.cols)},
        "r2_adj": {c: float(m.r_squared.values[1, j]) for j, c in enumerate(m.r_squared.cols)},
        "reliability": {
            f"{r}|{names[c]}": float(rel.values[a, b])
            for a, r in enumerate(rel.rows)
            for b, c in enumerate(rel.cols)
        },
        "htmt": cells(s.htmt(m), "{row}|{col}"),
    }
