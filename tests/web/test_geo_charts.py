from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import pytest

from qala.web.charts import RankRow, bar_chart, nice_ticks, radar_chart, rank_interval_chart
from qala.web.geo import KAZAKHSTAN_VIEW, MapPoint, Projection, decode_topology, local_map_svg


def test_topology_arcs_are_delta_decoded_and_reversed() -> None:
    # Two arcs forming a unit square, quantized with scale 0.5 and shifted by (10, 20).
    topology = {
        "type": "Topology",
        "transform": {"scale": [0.5, 0.5], "translate": [10, 20]},
        "arcs": [[[0, 0], [2, 0], [0, 2]], [[0, 0], [0, 2], [2, 0]]],
        "objects": {
            "shapes": {
                "type": "GeometryCollection",
                "geometries": [
                    {"type": "Polygon", "id": "1", "arcs": [[0, ~1]]},
                ],
            }
        },
    }
    rings = decode_topology(topology, "shapes")["1"]
    # arc 0: (10,20) (11,20) (11,21); arc 1 reversed: (11,21) (10,21) (10,20) — joint dropped.
    assert rings == [[(10.0, 20.0), (11.0, 20.0), (11.0, 21.0), (10.0, 21.0), (10.0, 20.0)]]


def test_projection_round_trips_through_the_browser_formula() -> None:
    view = Projection(45.5, 88.5, 39.5, 56.5, width=960)
    x, y = view.xy(71.43, 51.13)  # Astana
    lon = view.lon_min + x / view.unit / view.kx  # what static/js/qala.js computes
    lat = view.lat_max - y / view.unit
    assert lon == pytest.approx(71.43) and lat == pytest.approx(51.13)
    assert view.kx == pytest.approx(math.cos(math.radians(48.0)))


def test_maps_are_well_formed_svg_with_titles() -> None:
    svg = local_map_svg(
        KAZAKHSTAN_VIEW, [MapPoint("A & B", 71.4, 51.1, href="/cities/x")], title="t", pick=True
    )
    root = ET.fromstring(svg)
    assert root.tag.endswith("svg") and "map-pick" in root.get("class", "")
    assert root.get("tabindex") == "0"


def test_nice_ticks_cover_the_range_with_round_steps() -> None:
    assert nice_ticks(0, 100, 5) == [0, 20, 40, 60, 80, 100]
    assert nice_ticks(61.2, 66.3, 4) == [60, 62, 64, 66, 68]
    ticks = nice_ticks(1, 48, 6)
    assert ticks[0] <= 1 and ticks[-1] >= 48


def test_charts_escape_labels_and_parse() -> None:
    for svg in (
        rank_interval_chart(
            [RankRow("<b>", 1, 1, 3), RankRow("Ö", 2, 1, 4)], label="r", axis_label="rank"
        ),
        radar_chart(["a", "b", "c"], [("s", [10, None, 90])], label="radar"),
        bar_chart([("x", 3.0, ""), ("y", -1.0, "hl")], label="bars"),
    ):
        root = ET.fromstring(str(svg))
        assert root.find("{http://www.w3.org/2000/svg}title") is not None
        assert "<b>" not in str(svg)


def test_quotes_and_brackets_in_labels_cannot_leave_their_attribute() -> None:
    # An incident titled `x" onfocus="alert(1)` broke out of aria-label on the operator board:
    # the SVG helpers escaped <, > and & but not quotes.
    from qala.web.charts import bar_chart, sparkline
    from qala.web.geo import MapPoint, national_map_svg

    hostile = 'x" onfocus="alert(1)<script>'
    point = MapPoint(hostile, 71.43, 51.13, href="/incidents/1", title=hostile, show_label=True)
    drawn = [
        sparkline([1.0, 2.0], label=hostile),
        bar_chart([(hostile, 1.0, "a")], label=hostile),
        national_map_svg([point], title=hostile, no_boundary_note=hostile)[0],
    ]
    for svg in map(str, drawn):
        assert 'onfocus="' not in svg and "<script>" not in svg
        assert "&#34;" in svg


def test_a_long_label_is_never_cut_silently() -> None:
    """A label longer than its room ends in "…" and keeps its whole text as a tooltip (issue 15's
    walk: names were cut at a fixed length with nothing to show it)."""
    name = "Павлодарская область, город областного значения Экибастуз"
    svg = rank_interval_chart([RankRow(name, 1, 1, 2)], label="r", axis_label="a")
    root = ET.fromstring(str(svg))
    label = next(
        t
        for t in root.iter("{http://www.w3.org/2000/svg}text")
        if "row-label" in t.get("class", "")
    )
    assert label.text is not None and label.text.endswith("…") and len(label.text) <= 26
    title = label.find("{http://www.w3.org/2000/svg}title")
    assert title is not None and title.text == name
    short = rank_interval_chart([RankRow("Астана", 1, 1, 2)], label="r", axis_label="a")
    assert "…" not in str(short)


def test_radar_labels_break_into_two_lines_inside_the_drawing() -> None:
    axes = ["Цифровая инфраструктура и связь", "Услуги", "Участие жителей в управлении городом"]
    svg = radar_chart(axes, [("Астана", [50.0, 60.0, 70.0])], label="r")
    root = ET.fromstring(str(svg))
    ns = "{http://www.w3.org/2000/svg}"
    labels = [t for t in root.iter(f"{ns}text") if t.get("class") == "tick"]
    assert len(labels) == 3
    for text, axis in zip(labels, axes, strict=True):
        lines = [span.text or "" for span in text.findall(f"{ns}tspan")]
        assert 1 <= len(lines) <= 2 and all(len(line) <= 18 for line in lines)
        assert " ".join(lines).rstrip("…") in axis or "…" in lines[-1]
