"""Fetch the dashboard's browser assets from the npm registry and copy what the pages use.

Runs ``npm ci`` against the committed ``package-lock.json`` (so every machine gets the same
files), then copies the needed files into ``src/qala/web/static/vendor/`` (git-ignored: nothing
third-party is committed): the Natural Earth country outlines of ``world-atlas`` (ISC; Natural
Earth data is in the public domain) from which the offline map draws Kazakhstan's border, and
Leaflet (BSD-2-Clause), which draws the tiled map when a deployment names a tile server
(``QALA_TILE_URL``).

Usage: ``python scripts/build_assets.py`` (the Makefile's setup step calls it).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENDOR = ROOT / "src" / "qala" / "web" / "static" / "vendor"

# (file inside node_modules, where it goes under vendor/)
ASSETS: tuple[tuple[str, str], ...] = (
    ("world-atlas/countries-50m.json", "world-atlas/countries-50m.json"),
    ("world-atlas/LICENSE", "world-atlas/LICENSE"),
    ("world-atlas/package.json", "world-atlas/package.json"),
    ("leaflet/dist/leaflet.js", "leaflet/leaflet.js"),
    ("leaflet/dist/leaflet.css", "leaflet/leaflet.css"),
    ("leaflet/dist/images/marker-icon.png", "leaflet/images/marker-icon.png"),
    ("leaflet/dist/images/marker-icon-2x.png", "leaflet/images/marker-icon-2x.png"),
    ("leaflet/dist/images/marker-shadow.png", "leaflet/images/marker-shadow.png"),
    ("leaflet/dist/images/layers.png", "leaflet/images/layers.png"),
    ("leaflet/dist/images/layers-2x.png", "leaflet/images/layers-2x.png"),
    ("leaflet/LICENSE", "leaflet/LICENSE"),
    ("leaflet/package.json", "leaflet/package.json"),
)


def main() -> int:
    npm = shutil.which("npm")
    if npm is None:
        print(
            "build_assets: `npm` was not found on PATH. Install Node.js and npm "
            "(Debian: `apt-get install -y nodejs npm`) and run `python scripts/build_assets.py` "
            "again; the dashboard's map needs these files.",
            file=sys.stderr,
        )
        return 1
    if not (ROOT / "package-lock.json").exists():
        print("build_assets: package-lock.json is missing next to package.json", file=sys.stderr)
        return 1
    completed = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=ROOT, check=False
    )
    if completed.returncode != 0:
        print(f"build_assets: `npm ci` failed (exit {completed.returncode})", file=sys.stderr)
        return completed.returncode
    for source, target in ASSETS:
        origin = ROOT / "node_modules" / source
        if not origin.exists():
            print(f"build_assets: {origin} is missing after `npm ci`", file=sys.stderr)
            return 1
        destination = VENDOR / target
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(origin, destination)
        print(f"build_assets: {source} → {destination.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
