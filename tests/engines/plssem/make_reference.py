"""Regenerate ``mobi_reference.py`` with the PyPI package seminr 0.2.1 (GPL-3; a test oracle only).

Run by hand: ``python tests/engines/plssem/make_reference.py``. It is not collected by pytest.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from tests.engines.plssem.seminr_oracle import SCHEMES, seminr_fit

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[2].parent / "shared" / "data" / "mobi.csv"
HEADER = '''"""Reference estimates for the ECSI mobi model, computed with the PyPI package seminr 0.2.1.

seminr (GPL-3) was run once, outside the test suite, by tests/engines/plssem/make_reference.py:
``estimate_pls`` with ``composite(..., mode_A)`` constructs (plain PLS) or ``reflective(...)``
constructs (PLSc), and inner weights ``path_weighting`` / ``path_factorial``. seminr has no
centroid scheme; the centroid numbers come from seminr's estimator with a centroid inner-weight
function plugged in (``sign(cor) * (paths + t(paths))``). Values are rounded to 6 decimals.
"""

# ruff: noqa: E501

REFERENCE: dict[tuple[str, bool], dict[str, dict[str, float]]] = {'''


def main() -> None:
    data = pd.read_csv(DATA)
    lines = [HEADER]
    for scheme in SCHEMES:
        for consistent in (False, True):
            ref = seminr_fit(data, scheme, consistent)
            lines.append(f'    ("{scheme}", {consistent}): {{')
            for table, values in ref.items():
                lines.append(f'        "{table}": {{')
                lines += [f'            "{k}": {round(float(v), 6)!r},' for k, v in values.items()]
                lines.append("        },")
            lines.append("    },")
    lines.append("}")
    (HERE / "mobi_reference.py").write_text("\n".join(lines) + "\n")
    _ = np


if __name__ == "__main__":
    main()
