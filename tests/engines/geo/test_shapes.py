"""Spatial relations of NGSI-LD geo-queries between points, lines and polygons."""

from __future__ import annotations

import pytest

from qala.engines.geo.shapes import relate, shape_of

SQUARE = shape_of({"type": "Polygon", "coordinates": [[[0, 0], [4, 0], [4, 4], [0, 4], [0, 0]]]})
INNER = shape_of({"type": "Polygon", "coordinates": [[[1, 1], [2, 1], [2, 2], [1, 2], [1, 1]]]})
ACROSS = shape_of({"type": "Polygon", "coordinates": [[[3, 3], [6, 3], [6, 6], [3, 6], [3, 3]]]})
AWAY = shape_of({"type": "Polygon", "coordinates": [[[8, 8], [9, 8], [9, 9], [8, 8]]]})
CENTRE = shape_of({"type": "Point", "coordinates": [2, 2]})
CORNER = shape_of({"type": "Point", "coordinates": [0, 0]})


@pytest.mark.parametrize(
    ("relation", "target", "reference", "expected"),
    [
        ("contains", SQUARE, INNER, True),
        ("contains", INNER, SQUARE, False),
        ("within", INNER, SQUARE, True),
        ("contains", SQUARE, CENTRE, True),
        # a polygon's boundary is not inside it (OGC: the interiors must meet)
        ("contains", SQUARE, CORNER, False),
        ("intersects", SQUARE, CORNER, True),
        ("intersects", SQUARE, ACROSS, True),
        ("overlaps", SQUARE, ACROSS, True),
        ("overlaps", SQUARE, INNER, False),
        ("contains", SQUARE, ACROSS, False),
        ("disjoint", SQUARE, AWAY, True),
        ("intersects", SQUARE, AWAY, False),
        ("equals", SQUARE, SQUARE, True),
        ("equals", SQUARE, INNER, False),
        ("equals", CENTRE, shape_of({"type": "Point", "coordinates": [2.0, 2.0]}), True),
        ("contains", CENTRE, CENTRE, True),
    ],
)
def test_relations_between_shapes(relation, target, reference, expected) -> None:  # type: ignore[no-untyped-def]
    assert relate(relation, target, reference) is expected


def test_a_polygon_equals_itself_even_when_its_ring_crosses_itself() -> None:
    # the ETSI suite's building (019_11): its closing edge crosses its second edge
    ring = [
        [13.2865906, 52.5648645],
        [13.2879639, 52.5648645],
        [13.2797241, 52.4988679],
        [13.477478, 52.4712703],
        [13.5049438, 52.5373084],
        [13.2865906, 52.5648645],
    ]
    building = shape_of({"type": "Polygon", "coordinates": [ring]})
    assert relate("equals", building, building)


def test_a_hole_is_outside_its_polygon() -> None:
    with_hole = shape_of(
        {
            "type": "Polygon",
            "coordinates": [
                [[0, 0], [4, 0], [4, 4], [0, 4], [0, 0]],
                [[1, 1], [3, 1], [3, 3], [1, 3], [1, 1]],
            ],
        }
    )
    assert not relate("contains", with_hole, CENTRE)
    assert relate("disjoint", with_hole, CENTRE)
    # a segment that starts and ends in the polygon but crosses its hole is not contained
    line = shape_of({"type": "LineString", "coordinates": [[0.5, 2], [3.5, 2]]})
    assert not relate("contains", with_hole, line)
    assert relate("intersects", with_hole, line)


def test_lines_and_points() -> None:
    line = shape_of({"type": "LineString", "coordinates": [[0, 0], [2, 2]]})
    assert relate("contains", line, shape_of({"type": "Point", "coordinates": [1, 1]}))
    assert relate(
        "intersects", line, shape_of({"type": "LineString", "coordinates": [[0, 2], [2, 0]]})
    )
    assert relate("within", line, SQUARE)
    assert relate("disjoint", line, AWAY)


@pytest.mark.parametrize(
    "geometry",
    [
        {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1]]]},  # ring not closed
        {"type": "Point", "coordinates": ["a", 1]},
        {"type": "Circle", "coordinates": [0, 0]},
        {"type": "LineString", "coordinates": [[0, 0]]},
    ],
)
def test_malformed_geometries_are_refused(geometry) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError):
        shape_of(geometry)
