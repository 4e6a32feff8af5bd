"""Spatial relations between GeoJSON geometries, as NGSI-LD geo-queries name them (ETSI GS CIM
009 clause 4.10: ``equals``, ``disjoint``, ``intersects``, ``within``, ``contains``,
``overlaps``; their meaning is the OGC Simple Features one).

Longitude and latitude are treated as plane coordinates, as in ``area``: the shapes a city
queries are small enough for the difference from the sphere not to change an answer. A geometry
is taken apart into points, segments (a point is a segment of length zero) and polygons (outer
ring and holes); each relation is then decided from segment crossings and point-in-polygon
tests, exactly for the cases geo-queries meet (points, lines and polygons in any combination).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

Point = tuple[float, float]
Segment = tuple[Point, Point]
Polygon = tuple[tuple[Point, ...], ...]
"""Closed rings, the outer one first, then the holes."""

RELATIONS = frozenset({"equals", "disjoint", "intersects", "within", "contains", "overlaps"})

_EPSILON = 1e-12


@dataclass(frozen=True)
class Shape:
    """A geometry as its vertices, segments and polygons, with its dimension (0, 1 or 2)."""

    points: tuple[Point, ...]
    segments: tuple[Segment, ...]
    polygons: tuple[Polygon, ...]
    dimension: int


def shape_of(geometry: Any) -> Shape:
    """A GeoJSON geometry (Point … MultiPolygon) taken apart; ``ValueError`` if it is none."""
    if not isinstance(geometry, dict):
        raise ValueError("a geometry must be a GeoJSON object")
    kind, coordinates = geometry.get("type"), geometry.get("coordinates")
    if kind == "Point":
        return _of_points([_point(coordinates)])
    if kind == "MultiPoint":
        return _of_points([_point(c) for c in _sequence(coordinates)])
    if kind == "LineString":
        return _of_lines([_line(coordinates)])
    if kind == "MultiLineString":
        return _of_lines([_line(c) for c in _sequence(coordinates)])
    if kind == "Polygon":
        return _of_polygons([_polygon(coordinates)])
    if kind == "MultiPolygon":
        return _of_polygons([_polygon(c) for c in _sequence(coordinates)])
    raise ValueError(f"{kind!r} is not a GeoJSON geometry type")


def relate(relation: str, target: Shape, reference: Shape) -> bool:
    """Whether ``target`` (an entity's geometry) stands in ``relation`` to ``reference`` (the
    query's geometry): ``within`` reads "target within reference"."""
    if relation == "intersects":
        return intersects(target, reference)
    if relation == "disjoint":
        return not intersects(target, reference)
    if relation == "within":
        return contains(reference, target)
    if relation == "contains":
        return contains(target, reference)
    if relation == "equals":
        return covers(target, reference) and covers(reference, target)
    if relation == "overlaps":
        return overlaps(target, reference)
    raise ValueError(f"{relation!r} is not one of {sorted(RELATIONS)}")


def intersects(a: Shape, b: Shape) -> bool:
    """Whether the two geometries share at least one point."""
    if any(_segments_meet(s, t) for s in a.segments for t in b.segments):
        return True
    # No boundaries meet: one may still lie wholly inside a polygon of the other.
    return any(_locate(p, a.polygons) != "outside" for p in b.points) or any(
        _locate(p, b.polygons) != "outside" for p in a.points
    )


def covers(a: Shape, b: Shape) -> bool:
    """Whether no point of ``b`` lies outside ``a``."""
    if a.dimension == 0:
        return b.dimension == 0 and all(any(_same(p, q) for q in a.points) for p in b.points)
    if a.dimension == 1:
        return all(
            all(any(_on_segment(p, s) for s in a.segments) for p in _probes(t)) for t in b.segments
        )
    return all(
        _locate(p, a.polygons) != "outside"
        for segment in b.segments
        for p in _pieces(segment, a.segments)
    )


def contains(a: Shape, b: Shape) -> bool:
    """Whether ``a`` covers ``b`` and their interiors meet (a polygon does not contain a point of
    its boundary)."""
    if not covers(a, b):
        return False
    if a.dimension < 2 or b.dimension == 2:
        return True
    return any(
        _locate(p, a.polygons) == "inside" for segment in b.segments for p in _probes(segment)
    )


def overlaps(a: Shape, b: Shape) -> bool:
    """Whether two geometries of the same dimension share part of their interiors and each has
    points outside the other."""
    if a.dimension != b.dimension or covers(a, b) or covers(b, a):
        return False
    if a.dimension == 2:
        return (
            any(_cross_properly(s, t) for s in a.segments for t in b.segments)
            or any(_locate(p, b.polygons) == "inside" for p in a.points)
            or any(_locate(p, a.polygons) == "inside" for p in b.points)
        )
    return intersects(a, b)


# ---------------------------------------------------------------------------------------------
# Taking geometries apart


def _sequence(value: Any) -> Sequence[Any]:
    if not isinstance(value, list) or not value:
        raise ValueError("coordinates must be a non-empty array")
    return value


def _point(value: Any) -> Point:
    if (
        not isinstance(value, list)
        or len(value) < 2
        or not all(isinstance(c, int | float) and not isinstance(c, bool) for c in value[:2])
    ):
        raise ValueError(f"{value!r} is not a position [longitude, latitude]")
    return float(value[0]), float(value[1])


def _line(value: Any) -> tuple[Point, ...]:
    points = tuple(_point(p) for p in _sequence(value))
    if len(points) < 2:
        raise ValueError("a line needs two positions")
    return points


def _polygon(value: Any) -> Polygon:
    rings = tuple(_line(ring) for ring in _sequence(value))
    for ring in rings:
        if len(ring) < 4 or ring[0] != ring[-1]:
            raise ValueError("a polygon ring needs four positions, the last equal to the first")
    return rings


def _of_points(points: list[Point]) -> Shape:
    return Shape(tuple(points), tuple((p, p) for p in points), (), 0)


def _of_lines(lines: list[tuple[Point, ...]]) -> Shape:
    return Shape(
        tuple(p for line in lines for p in line), tuple(_pairs(line for line in lines)), (), 1
    )


def _of_polygons(polygons: list[Polygon]) -> Shape:
    rings = [ring for polygon in polygons for ring in polygon]
    return Shape(tuple(p for ring in rings for p in ring), tuple(_pairs(rings)), tuple(polygons), 2)


def _pairs(lines: Iterable[tuple[Point, ...]]) -> Iterable[Segment]:
    for line in lines:
        yield from pairwise(line)


# ---------------------------------------------------------------------------------------------
# Plane predicates


def _same(p: Point, q: Point) -> bool:
    return abs(p[0] - q[0]) <= _EPSILON and abs(p[1] - q[1]) <= _EPSILON


def _orientation(p: Point, q: Point, r: Point) -> int:
    """+1 if p→q→r turns left, -1 right, 0 collinear."""
    cross = (q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0])
    return 0 if abs(cross) <= _EPSILON else (1 if cross > 0 else -1)


def _on_segment(p: Point, segment: Segment) -> bool:
    a, b = segment
    return (
        _orientation(a, b, p) == 0
        and min(a[0], b[0]) - _EPSILON <= p[0] <= max(a[0], b[0]) + _EPSILON
        and min(a[1], b[1]) - _EPSILON <= p[1] <= max(a[1], b[1]) + _EPSILON
    )


def _segments_meet(s: Segment, t: Segment) -> bool:
    """Whether two closed segments share a point (touching counts)."""
    if _cross_properly(s, t):
        return True
    return (
        _on_segment(t[0], s) or _on_segment(t[1], s) or _on_segment(s[0], t) or _on_segment(s[1], t)
    )


def _cross_properly(s: Segment, t: Segment) -> bool:
    """Whether two segments cross at one point interior to both."""
    o1, o2 = _orientation(s[0], s[1], t[0]), _orientation(s[0], s[1], t[1])
    o3, o4 = _orientation(t[0], t[1], s[0]), _orientation(t[0], t[1], s[1])
    return o1 * o2 < 0 and o3 * o4 < 0


def _probes(segment: Segment) -> tuple[Point, ...]:
    """Points that stand for a segment in containment tests: its ends and its middle (the middle
    catches a chord of a concave polygon whose ends are both on the boundary)."""
    a, b = segment
    return (a, ((a[0] + b[0]) / 2, (a[1] + b[1]) / 2), b)


def _pieces(segment: Segment, edges: Sequence[Segment]) -> list[Point]:
    """Points standing for ``segment`` cut where it crosses ``edges``: its ends, the crossings
    and the middle of every piece between them (each piece lies wholly inside or outside)."""
    (x1, y1), (x2, y2) = segment
    cuts = {0.0, 1.0}
    for edge in edges:
        if _cross_properly(segment, edge):
            (x3, y3), (x4, y4) = edge
            denominator = (x1 - x2) * (y3 - y4) - (y1 - y2) * (x3 - x4)
            cuts.add(((x1 - x3) * (y3 - y4) - (y1 - y3) * (x3 - x4)) / denominator)
    ordered = sorted(cuts)
    middles = [(a + b) / 2 for a, b in pairwise(ordered)]
    return [(x1 + t * (x2 - x1), y1 + t * (y2 - y1)) for t in (0.0, *middles, 1.0)]


def _locate(p: Point, polygons: Sequence[Polygon]) -> str:
    """``inside``, ``boundary`` or ``outside`` of the union of ``polygons``."""
    for polygon in polygons:
        where = _locate_in_polygon(p, polygon)
        if where != "outside":
            return where
    return "outside"


def _locate_in_polygon(p: Point, polygon: Polygon) -> str:
    for ring in polygon:
        if any(_on_segment(p, s) for s in pairwise(ring)):
            return "boundary"
    if not _in_ring(p, polygon[0]):
        return "outside"
    return "outside" if any(_in_ring(p, hole) for hole in polygon[1:]) else "inside"


def _in_ring(p: Point, ring: tuple[Point, ...]) -> bool:
    """Even-odd rule, a ray cast eastwards (``p`` is not on the ring)."""
    x, y = p
    inside = False
    for (x1, y1), (x2, y2) in pairwise(ring):
        if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
            inside = not inside
    return inside
