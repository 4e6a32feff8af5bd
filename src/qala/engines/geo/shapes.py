"""Spatial relations between GeoJSON geometries, as NGSI-LD geo-queries name them (ETSI GS CIM
009 clause 4.10: ``equals``, ``disjoint``, ``intersects``, ``within``, ``contains``,
``overlaps``; their meaning is the OGC Simple Features one, which GEOS implements through
shapely).

Longitude and latitude are treated as plane coordinates: the shapes a city queries are small
enough for the difference from the sphere not to change an answer. The GeoJSON is checked here
first, so that a malformed geometry is refused with what is wrong with it, not with GEOS's
message; a polygon whose ring crosses itself (a bow-tie, which GeoJSON allows and OGC calls
invalid) is taken as the areas its ring outlines (``make_valid``), so that it still equals,
contains and intersects what it covers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import shapely
import shapely.ops
from shapely.geometry import shape as geometry_of_geojson
from shapely.geometry.base import BaseGeometry

Shape = BaseGeometry
"""A checked geometry, ready for :func:`relate`."""

RELATIONS = frozenset({"equals", "disjoint", "intersects", "within", "contains", "overlaps"})


def shape_of(geometry: Any, *, prepared: bool = False) -> Shape:
    """A GeoJSON geometry (Point … MultiPolygon) as a shape; ``ValueError`` naming what is wrong
    if it is none. ``prepared``: indexed for relating it to many others (a query's geometry)."""
    if not isinstance(geometry, dict):
        raise ValueError("a geometry must be a GeoJSON object")
    kind, coordinates = geometry.get("type"), geometry.get("coordinates")
    if kind == "Point":
        _point(coordinates)
    elif kind == "MultiPoint":
        for c in _sequence(coordinates):
            _point(c)
    elif kind == "LineString":
        _line(coordinates)
    elif kind == "MultiLineString":
        for c in _sequence(coordinates):
            _line(c)
    elif kind == "Polygon":
        _polygon(coordinates)
    elif kind == "MultiPolygon":
        for c in _sequence(coordinates):
            _polygon(c)
    else:
        raise ValueError(f"{kind!r} is not a GeoJSON geometry type")
    built = geometry_of_geojson({"type": kind, "coordinates": coordinates})
    if not built.is_valid:
        built = shapely.make_valid(built)
    if prepared:
        shapely.prepare(built)
    return built


def relate(relation: str, target: Shape, reference: Shape) -> bool:
    """Whether ``target`` (an entity's geometry) stands in ``relation`` to ``reference`` (the
    query's geometry): ``within`` reads "target within reference"."""
    if relation == "intersects":
        return bool(target.intersects(reference))
    if relation == "disjoint":
        return bool(target.disjoint(reference))
    if relation == "within":
        return bool(target.within(reference))
    if relation == "contains":
        return bool(target.contains(reference))
    if relation == "equals":
        return bool(target.equals(reference))
    if relation == "overlaps":
        return bool(target.overlaps(reference))
    raise ValueError(f"{relation!r} is not one of {sorted(RELATIONS)}")


def nearest_position(shape: Shape, longitude: float, latitude: float) -> tuple[float, float]:
    """The position of ``shape`` nearest to a point (the point itself when the shape covers
    it), as (longitude, latitude): ``near`` measures the distance to a shape from there."""
    nearest, _ = shapely.ops.nearest_points(shape, shapely.Point(longitude, latitude))
    return float(nearest.x), float(nearest.y)


def _sequence(value: Any) -> Sequence[Any]:
    if not isinstance(value, list) or not value:
        raise ValueError("coordinates must be a non-empty array")
    return value


def _point(value: Any) -> None:
    if (
        not isinstance(value, list)
        or len(value) < 2
        or not all(isinstance(c, int | float) and not isinstance(c, bool) for c in value[:2])
    ):
        raise ValueError(f"{value!r} is not a position [longitude, latitude]")


def _line(value: Any) -> None:
    points = _sequence(value)
    for p in points:
        _point(p)
    if len(points) < 2:
        raise ValueError("a line needs two positions")


def _polygon(value: Any) -> None:
    for ring in _sequence(value):
        _line(ring)
        if len(ring) < 4 or ring[0][:2] != ring[-1][:2]:
            raise ValueError("a polygon ring needs four positions, the last equal to the first")
