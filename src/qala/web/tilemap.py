"""The pages' map of places in a city: a tiled Leaflet map when the deployment names a tile server
(``QALA_TILE_URL``), else the offline SVG of :mod:`qala.web.geo`.

Both show the same markers. The server writes them into the page as a hidden list (position and
kind in ``data-`` attributes, the popup's text already in the reader's language) next to the SVG;
``static/js/map.js`` reads that list, draws Leaflet's map in place of the SVG and opens each
marker's list item as its popup. Nothing is inline script, and Leaflet (npm, BSD-2-Clause) is
served from ``static/vendor/leaflet`` (``scripts/build_assets.py``). Without scripts, or without
the built files, the SVG stays. Without ``QALA_TILE_URL`` no page names any tile host.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup

from qala.settings import Settings
from qala.web.geo import MapPoint, local_map_svg, local_view


@dataclass(frozen=True)
class Marker:
    """One thing on the map: its position, its kind, and its popup's lines (translated)."""

    lat: float
    lon: float
    kind: str
    title: str
    lines: tuple[str, ...] = ()
    href: str | None = None
    css: str = ""
    """Extra CSS classes of the SVG point (a request's status, for its colour)."""


@dataclass(frozen=True)
class CityMap:
    """What ``_map.html`` renders."""

    label: str
    svg: Markup
    bounds: tuple[float, float, float, float]
    """South, west, north, east: the SVG's box, which the tiled map fits to."""
    markers: list[Marker] = field(default_factory=list)
    tile_url: str | None = None
    attribution: str = ""


def city_map(
    settings: Settings,
    *,
    label: str,
    centre: tuple[float, float],
    markers: Sequence[Marker],
    half_width_km: float = 14.0,
) -> CityMap:
    """A map around ``centre`` (lon, lat) with ``markers``; only those inside its box are drawn."""
    view = local_view(centre[0], centre[1], half_width_km=half_width_km, width=720)
    inside = [
        m
        for m in markers
        if view.lon_min <= m.lon <= view.lon_max and view.lat_min <= m.lat <= view.lat_max
    ]
    points = [_point(m) for m in inside]
    return CityMap(
        label=label,
        svg=Markup(local_map_svg(view, points, title=label)),
        bounds=(view.lat_min, view.lon_min, view.lat_max, view.lon_max),
        markers=inside,
        tile_url=settings.tile_url,
        attribution=settings.tile_attribution,
    )


def _point(marker: Marker) -> MapPoint:
    if marker.kind == "district":
        return MapPoint(
            marker.title, marker.lon, marker.lat, "pt district", radius=5, show_label=True
        )
    radius = 7.0 if marker.kind == "project" else 5.0
    kind = "pb-project" if marker.kind == "project" else marker.kind  # `.project` is the ballot's
    return MapPoint(
        marker.title,
        marker.lon,
        marker.lat,
        f"pt {kind} {marker.css}".strip(),
        href=marker.href,
        radius=radius,
        title=" · ".join((marker.title, *marker.lines)),
    )


def district_markers(districts: Iterable[Mapping[str, Any]], name: Any) -> list[Marker]:
    """A city's district centres as landmarks, named in the reader's language (``name`` is the
    translator's ``t.name`` applied to the district's names)."""
    from qala.web.data import district_names

    return [
        Marker(float(d["lat"]), float(d["lon"]), "district", name(district_names(d)))
        for d in districts
        if d.get("lat") is not None and d.get("lon") is not None
    ]


def centre_of(markers: Sequence[Marker]) -> tuple[float, float] | None:
    """The mean position (lon, lat) of ``markers``, or None when there are none."""
    if not markers:
        return None
    return (
        sum(m.lon for m in markers) / len(markers),
        sum(m.lat for m in markers) / len(markers),
    )
