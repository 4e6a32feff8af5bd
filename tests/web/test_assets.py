"""scripts/build_assets.py: fails clearly without npm; the vendored border decodes to Kazakhstan."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import need

ROOT = Path(__file__).resolve().parents[2]


def test_build_assets_says_what_to_install_when_npm_is_missing(tmp_path: Path) -> None:
    completed = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "build_assets.py")],
        env={"PATH": str(tmp_path)},  # an empty folder: no npm on PATH
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 1
    assert "`npm` was not found" in completed.stderr and "apt-get install" in completed.stderr


def test_vendored_border_is_kazakhstan() -> None:
    from qala.web.geo import KAZAKHSTAN_ID, country_shapes

    shapes = country_shapes()
    need(shapes is not None, "static/vendor/ not built (python scripts/build_assets.py)")
    assert shapes is not None
    rings = shapes[KAZAKHSTAN_ID]
    points = [p for ring in rings for p in ring]
    lons = [p[0] for p in points]
    lats = [p[1] for p in points]
    # Kazakhstan spans about 46.5–87.3° E and 40.6–55.4° N (Natural Earth 1:50m).
    assert 46 < min(lons) < 47.5 and 86.5 < max(lons) < 88
    assert 40 < min(lats) < 41.5 and 55 < max(lats) < 56
