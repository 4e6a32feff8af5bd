"""Offline maps drawn as SVG: no tile server, no third-party script.

Kazakhstan's national border (and its neighbours, for context) comes from Natural Earth's
1:50m Admin-0 boundaries as redistributed by the npm package ``world-atlas`` (ISC; Natural Earth
is in the public domain), copied into ``static/vendor/`` by ``scripts/build_assets.py``. When that
file is absent the map says so and draws only a graticule and the points: no boundary is invented.
Regional (oblys) boundaries are not drawn: no permissively licensed source is bundled (see
docs/places.md), so regions are shown by their centres only.

Projection: equirectangular with the x axis scaled by cos(mean latitude), which keeps shapes
recognisable over Kazakhstan's 15° of latitude and lets the browser turn a click back into lon/lat
with two divisions.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from markupsafe import escape

VENDOR = Path(__file__).parent / "static" / "vendor"
WORLD_ATLAS = VENDOR / "world-atlas" / "countries-50m.json"
KAZAKHSTAN_ID = "398"
BOUNDARY_SOURCE = "Natural Earth 1:50m Admin-0 (public domain), via world-atlas 2.0.2 (ISC)"

Ring = list[tuple[float, float]]


def decode_topology(topology: dict[str, Any], object_name: str) -> dict[str, list[Ring]]:
    """Rings (lon, lat) of every geometry of a TopoJSON object, keyed by geometry id.

    Arcs are delta-encoded integers when the topology is quantized; ``~i`` (a negative index)
    means arc ``i`` reversed; consecutive arcs of a ring share their joining point.
    """
    transform = topology.get("transform")
    scale = transform["scale"] if transform else (1.0, 1.0)
    shift = transform["translate"] if transform else (0.0, 0.0)
    arcs: list[Ring] = []
    for raw in topology["arcs"]:
        x = y = 0.0
        points: Ring = []
        for position in raw:
            if transform:
                x += position[0]
                y += position[1]
                points.append((x * scale[0] + shift[0], y * scale[1] + shift[1]))
            else:
                points.append((float(position[0]), float(position[1])))
        arcs.append(points)

    def ring(indices: Sequence[int]) -> Ring:
        out: Ring = []
        for index in indices:
            points = arcs[index] if index >= 0 else list(reversed(arcs[~index]))
            out.extend(points[1:] if out else points)
        return out

    shapes: dict[str, list[Ring]] = {}
    for geometry in topology["objects"][object_name]["geometries"]:
        key = str(geometry.get("id") or geometry.get("properties", {}).get("name", ""))
        kind = geometry.get("type")
        if kind == "Polygon":
            shapes[key] = [ring(r) for r in geometry["arcs"]]
        elif kind == "MultiPolygon":
            shapes[key] = [ring(r) for polygon in geometry["arcs"] for r in polygon]
    return shapes


@lru_cache(maxsize=1)
def country_shapes() -> dict[str, list[Ring]] | None:
    """Country rings from the vendored Natural Earth file, or None when it was not built."""
    if not WORLD_ATLAS.exists():
        return None
    return decode_topology(json.loads(WORLD_ATLAS.read_text(encoding="utf-8")), "countries")


@dataclass(frozen=True)
class Projection:
    """Equirectangular lon/lat → SVG x/y in a box of ``width`` × derived height."""

    lon_min: float
    lon_max: float
    lat_min: float
    lat_max: float
    width: float = 960.0

    @property
    def kx(self) -> float:
        return math.cos(math.radians((self.lat_min + self.lat_max) / 2))

    @property
    def unit(self) -> float:
        return self.width / ((self.lon_max - self.lon_min) * self.kx)

    @property
    def height(self) -> float:
        return (self.lat_max - self.lat_min) * self.unit

    def xy(self, lon: float, lat: float) -> tuple[float, float]:
        return (
            (lon - self.lon_min) * self.kx * self.unit,
            (self.lat_max - lat) * self.unit,
        )

    def path(self, rings: Iterable[Ring]) -> str:
        parts = []
        for r in rings:
            if len(r) < 3:
                continue
            coords = [self.xy(lon, lat) for lon, lat in r]
            parts.append("M" + "L".join(f"{x:.1f},{y:.1f}" for x, y in coords) + "Z")
        return "".join(parts)

    def data_attributes(self) -> str:
        """What the browser needs to turn a click into lon/lat (see static/js/qala.js)."""
        return (
            f'data-lon-min="{self.lon_min}" data-lat-max="{self.lat_max}" '
            f'data-kx="{self.kx:.8f}" data-unit="{self.unit:.8f}"'
        )


KAZAKHSTAN_VIEW = Projection(45.5, 88.5, 39.5, 56.5, width=960.0)


@dataclass(frozen=True)
class MapPoint:
    """A point on a map: a place, a request or an incident."""

    label: str
    lon: float
    lat: float
    css_class: str = "pt"
    href: str | None = None
    radius: float = 4.0
    title: str | None = None
    show_label: bool = False


def _graticule(view: Projection, step: float) -> str:
    lines = []
    start = math.ceil(view.lon_min / step) * step
    lon = start
    while lon <= view.lon_max + 1e-9:
        x, _ = view.xy(lon, view.lat_max)
        lines.append(f'<line x1="{x:.1f}" y1="0" x2="{x:.1f}" y2="{view.height:.1f}"/>')
        lines.append(
            f'<text class="grat-label" x="{x + 2:.1f}" y="{view.height - 4:.1f}">{lon:g}°E</text>'
        )
        lon += step
    lat = math.ceil(view.lat_min / step) * step
    while lat <= view.lat_max + 1e-9:
        _, y = view.xy(view.lon_min, lat)
        lines.append(f'<line x1="0" y1="{y:.1f}" x2="{view.width:.1f}" y2="{y:.1f}"/>')
        lines.append(f'<text class="grat-label" x="3" y="{y - 3:.1f}">{lat:g}°N</text>')
        lat += step
    return '<g class="graticule" aria-hidden="true">' + "".join(lines) + "</g>"


def _points(view: Projection, points: Sequence[MapPoint]) -> str:
    out = []
    for p in points:
        x, y = view.xy(p.lon, p.lat)
        title = escape(p.title or p.label)
        dot = (
            f'<circle class="{p.css_class}" cx="{x:.1f}" cy="{y:.1f}" r="{p.radius:.1f}">'
            f"<title>{title}</title></circle>"
        )
        label = (
            f'<text class="pt-label" x="{x + p.radius + 2:.1f}" y="{y + 4:.1f}">{escape(p.label)}</text>'
            if p.show_label
            else ""
        )
        if p.href:
            out.append(f'<a href="{escape(p.href)}" aria-label="{title}">{dot}{label}</a>')
        else:
            out.append(dot + label)
    return "".join(out)


def national_map_svg(
    points: Sequence[MapPoint],
    *,
    title: str,
    no_boundary_note: str,
    view: Projection = KAZAKHSTAN_VIEW,
) -> tuple[str, bool]:
    """SVG of Kazakhstan with its neighbours' outlines, a graticule and the points.

    Returns the SVG text and whether a boundary was drawn (False: the vendored file is absent and
    the map says so on its face).
    """
    land, has_boundary = _land(view)
    body = [land]
    if not has_boundary:
        body.append(
            f'<text class="map-note" x="{view.width / 2:.0f}" y="24" text-anchor="middle">'
            f"{escape(no_boundary_note)}</text>"
        )
    body.append(_points(view, points))
    svg = (
        f'<svg class="map" viewBox="0 0 {view.width:.0f} {view.height:.0f}" role="img" '
        f'aria-label="{escape(title)}" {view.data_attributes()} '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
        + "".join(body)
        + "</svg>"
    )
    return svg, has_boundary


@lru_cache(maxsize=8)
def _land(view: Projection) -> tuple[str, bool]:
    """The neighbours' outlines, Kazakhstan and the graticule over them, drawn once per view:
    projecting the boundary file's 185,000 points took 40 ms of every national map."""
    shapes = country_shapes()
    body: list[str] = []
    has_boundary = shapes is not None and KAZAKHSTAN_ID in shapes
    if shapes is not None:
        neighbours = "".join(
            view.path(rings)
            for key, rings in shapes.items()
            if key != KAZAKHSTAN_ID and _touches(rings, view)
        )
        body.append(f'<path class="neighbour" d="{neighbours}"/>')
        if has_boundary:
            body.append(f'<path class="country" d="{view.path(shapes[KAZAKHSTAN_ID])}"/>')
    body.append(_graticule(view, 5.0))  # over the land fills, under the points
    return "".join(body), has_boundary


def _touches(rings: list[Ring], view: Projection) -> bool:
    for r in rings:
        for lon, lat in r[:: max(1, len(r) // 50)]:
            if (
                view.lon_min - 5 <= lon <= view.lon_max + 5
                and view.lat_min - 5 <= lat <= view.lat_max + 5
            ):
                return True
    return False


def local_view(
    lon: float, lat: float, *, half_width_km: float = 14.0, width: float = 720.0
) -> Projection:
    """A square-ish box around a city centre, for picking a point in the city."""
    dlat = half_width_km / 111.32
    dlon = half_width_km / (111.32 * math.cos(math.radians(lat)))
    return Projection(lon - dlon, lon + dlon, lat - dlat * 0.7, lat + dlat * 0.7, width=width)


def local_map_svg(
    view: Projection, points: Sequence[MapPoint], *, title: str, pick: bool = False
) -> str:
    """A city-scale SVG: graticule every 0.05°, reference points (district centres, requests).

    With ``pick`` the map carries the ``map-pick`` class the page's script listens to: a click or
    Enter on the map writes lat/long into the form's fields and draws a marker.
    """
    classes = "map local" + (" map-pick" if pick else "")
    focus = ' tabindex="0"' if pick else ""
    return (
        f'<svg class="{classes}" viewBox="0 0 {view.width:.0f} {view.height:.0f}" role="img" '
        f'aria-label="{escape(title)}" {view.data_attributes()}{focus} '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
        f'<rect class="local-bg" width="{view.width:.0f}" height="{view.height:.0f}"/>'
        + _graticule(view, 0.05)
        + _points(view, points)
        + '<g class="pick-marker" display="none"><circle r="9"/><circle r="3"/></g>'
        + "</svg>"
    )
