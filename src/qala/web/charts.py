"""Charts drawn on the server as SVG (our own code: no chart library, no script needed to read them).

Every chart has a ``<title>`` and an ``aria-label`` so screen readers announce it, and the pages
show the same numbers in a table next to it. Colours come from CSS classes (static/css/qala.css),
so the palette keeps enough contrast in one place.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

SERIES_CLASSES = ("s0", "s1", "s2", "s3", "s4", "s5")


def _svg(width: float, height: float, label: str, body: str, css: str = "chart") -> Markup:
    return Markup(
        f'<svg class="{css}" viewBox="0 0 {width:.0f} {height:.0f}" role="img" '
        f'aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{escape(label)}</title>{body}</svg>"
    )


def _label(text: str, limit: int) -> Markup:
    """A chart label of at most ``limit`` characters; a longer one ends in "…" and keeps its whole
    text as the label's tooltip, so nothing is cut silently."""
    if len(text) <= limit:
        return escape(text)
    return Markup(f"{escape(text[: limit - 1].rstrip())}…<title>{escape(text)}</title>")


def _wrapped(text: str, limit: int, x: float, *, lines: int = 2) -> Markup:
    """A label broken at spaces into at most ``lines`` lines of ``limit`` characters
    (``<tspan>`` rows under one another); what does not fit ends in "…" with a tooltip."""
    rows: list[str] = []
    for word in text.split():
        if rows and len(rows[-1]) + 1 + len(word) <= limit:
            rows[-1] += " " + word
        else:
            rows.append(word)
    cut = len(rows) > lines or any(len(r) > limit for r in rows)
    rows = rows[:lines]
    if cut:
        rows[-1] = rows[-1][: limit - 1].rstrip() + "…"
        rows = [r if len(r) <= limit else r[: limit - 1] + "…" for r in rows]
    spans = "".join(
        f'<tspan x="{x:.1f}" dy="{0 if i == 0 else 1.15}em">{escape(r)}</tspan>'
        for i, r in enumerate(rows)
    )
    return Markup(spans + (f"<title>{escape(text)}</title>" if cut else ""))


def _fmt(value: float) -> str:
    if abs(value) >= 1000:
        return f"{value:,.0f}".replace(",", "\u202f")
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high] (1, 2, 5 × 10^k steps)."""
    if not math.isfinite(low) or not math.isfinite(high):
        return [0.0, 1.0]
    if high <= low:
        high = low + 1.0
    raw = (high - low) / max(1, count)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    start = math.floor(low / step) * step
    ticks = [round(start, 10)]
    while ticks[-1] < high - step * 1e-9:  # until a tick reaches the top of the data
        ticks.append(round(ticks[-1] + step, 10))
    return ticks


@dataclass(frozen=True)
class RankRow:
    label: str
    rank: float
    low: float
    high: float
    highlight: bool = False


def rank_interval_chart(rows: Sequence[RankRow], *, label: str, axis_label: str) -> Markup:
    """Each unit's rank as a dot and its uncertainty interval as a bar (rank 1 on the left)."""
    if not rows:
        return Markup("")
    n_max = max(max(r.high for r in rows), 1.0)
    left, right, row_h, top = 170.0, 20.0, 18.0, 26.0
    width = 640.0
    height = top + row_h * len(rows) + 28

    def x(rank: float) -> float:
        return left + (rank - 1) / max(n_max - 1, 1) * (width - left - right)

    parts = []
    for tick in nice_ticks(1, n_max, 6):
        if 1 <= tick <= n_max:
            tx = x(tick)
            parts.append(
                f'<line class="grid" x1="{tx:.1f}" y1="{top - 6}" x2="{tx:.1f}" y2="{height - 24:.1f}"/>'
                f'<text class="tick" x="{tx:.1f}" y="{top - 10}" text-anchor="middle">{tick:g}</text>'
            )
    for i, r in enumerate(rows):
        y = top + row_h * i + row_h / 2
        css = "hl" if r.highlight else ""
        parts.append(
            f'<text class="row-label {css}" x="{left - 8}" y="{y + 4:.1f}" text-anchor="end">'
            f"{_label(r.label, 26)}</text>"
            f'<line class="interval {css}" x1="{x(r.low):.1f}" y1="{y:.1f}" x2="{x(r.high):.1f}" y2="{y:.1f}"/>'
            f'<circle class="dot {css}" cx="{x(r.rank):.1f}" cy="{y:.1f}" r="4.5">'
            f"<title>{escape(r.label)}: {r.rank:g} [{r.low:g}–{r.high:g}]</title></circle>"
        )
    parts.append(
        f'<text class="axis-label" x="{(left + width) / 2:.0f}" y="{height - 6:.0f}" '
        f'text-anchor="middle">{escape(axis_label)}</text>'
    )
    return _svg(width, height, label, "".join(parts))


def radar_chart(
    axes: Sequence[str],
    series: Sequence[tuple[str, Sequence[float | None]]],
    *,
    label: str,
    maximum: float = 100.0,
) -> Markup:
    """A radar (spider) chart of scores 0…``maximum`` on each axis; several series overlaid."""
    n = len(axes)
    if n < 3:
        return Markup("")
    size, radius = 420.0, 130.0
    width = 620.0
    cx, cy = width / 2, size / 2

    def point(i: int, value: float) -> tuple[float, float]:
        angle = -math.pi / 2 + 2 * math.pi * i / n
        r = radius * max(0.0, min(value, maximum)) / maximum
        return cx + r * math.cos(angle), cy + r * math.sin(angle)

    parts = []
    for level in (0.25, 0.5, 0.75, 1.0):
        ring = " ".join(
            f"{x:.1f},{y:.1f}" for x, y in (point(i, maximum * level) for i in range(n))
        )
        parts.append(f'<polygon class="grid" points="{ring}"/>')
    for i, name in enumerate(axes):
        x, y = point(i, maximum)
        lx, ly = point(i, maximum * 1.16)
        anchor = "middle" if abs(lx - cx) < 10 else ("start" if lx > cx else "end")
        # Two short lines rather than one long one: the label stays inside the drawing.
        two_lines = len(name) > 18
        shift = -3.0 if two_lines and ly < cy else (4.0 if not two_lines else 0.0)
        if two_lines and ly < cy - radius:
            shift = -10.0
        parts.append(
            f'<line class="grid" x1="{cx}" y1="{cy}" x2="{x:.1f}" y2="{y:.1f}"/>'
            f'<text class="tick" x="{lx:.1f}" y="{ly + shift:.1f}" text-anchor="{anchor}">'
            f"{_wrapped(name, 18, lx)}</text>"
        )
    for k, (name, values) in enumerate(series):
        css = SERIES_CLASSES[k % len(SERIES_CLASSES)]
        pts = [point(i, v if v is not None else 0.0) for i, v in enumerate(values)]
        ring = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
        parts.append(
            f'<polygon class="area {css}" points="{ring}"><title>{escape(name)}</title></polygon>'
        )
        for (x, y), value, axis in zip(pts, values, axes, strict=True):
            shown = "—" if value is None else _fmt(value)
            parts.append(
                f'<circle class="dot {css}" cx="{x:.1f}" cy="{y:.1f}" r="3">'
                f"<title>{escape(name)} · {escape(axis)}: {shown}</title></circle>"
            )
    return _svg(width, size, label, "".join(parts), css="chart radar")


def line_chart(
    series: Sequence[tuple[str, Sequence[tuple[float, float]]]],
    *,
    label: str,
    y_label: str = "",
    width: float = 560.0,
    height: float = 240.0,
) -> Markup:
    """Lines over years (x) with dots and a legend below."""
    points = [p for _, s in series for p in s]
    if not points:
        return Markup("")
    xs = sorted({p[0] for p in points})
    ys = [p[1] for p in points]
    ticks = nice_ticks(min(ys), max(ys), 4)
    y_low, y_high = ticks[0], ticks[-1] if ticks[-1] > ticks[0] else ticks[0] + 1
    left, right, top, bottom = 52.0, 16.0, 14.0, 46.0

    def px(x: float) -> float:
        if len(xs) == 1:
            return (left + width - right) / 2
        return left + (x - xs[0]) / (xs[-1] - xs[0]) * (width - left - right)

    def py(y: float) -> float:
        return top + (y_high - y) / (y_high - y_low) * (height - top - bottom)

    parts = []
    for tick in ticks:
        parts.append(
            f'<line class="grid" x1="{left}" y1="{py(tick):.1f}" x2="{width - right}" y2="{py(tick):.1f}"/>'
            f'<text class="tick" x="{left - 6}" y="{py(tick) + 4:.1f}" text-anchor="end">{_fmt(tick)}</text>'
        )
    for x in xs:
        parts.append(
            f'<text class="tick" x="{px(x):.1f}" y="{height - bottom + 16:.1f}" text-anchor="middle">{x:g}</text>'
        )
    legend_x = left
    for k, (name, values) in enumerate(series):
        css = SERIES_CLASSES[k % len(SERIES_CLASSES)]
        ordered = sorted(values)
        if len(ordered) > 1:
            d = "M" + "L".join(f"{px(x):.1f},{py(y):.1f}" for x, y in ordered)
            parts.append(f'<path class="line {css}" d="{d}"/>')
        for x, y in ordered:
            parts.append(
                f'<circle class="dot {css}" cx="{px(x):.1f}" cy="{py(y):.1f}" r="3.5">'
                f"<title>{escape(name)} {x:g}: {_fmt(y)}</title></circle>"
            )
        parts.append(
            f'<rect class="swatch {css}" x="{legend_x:.0f}" y="{height - 16:.0f}" width="10" height="10"/>'
            f'<text class="tick" x="{legend_x + 14:.0f}" y="{height - 7:.0f}">{_label(name, 28)}</text>'
        )
        legend_x += 18 + 7 * min(len(name), 28)
    if y_label:
        parts.append(
            f'<text class="axis-label" transform="translate(12,{(top + height - bottom) / 2:.0f}) rotate(-90)" '
            f'text-anchor="middle">{escape(y_label)}</text>'
        )
    return _svg(width, height, label, "".join(parts))


def bar_chart(
    items: Sequence[tuple[str, float, str]],
    *,
    label: str,
    maximum: float | None = None,
    unit: str = "",
    width: float = 560.0,
) -> Markup:
    """Horizontal bars: (label, value, css class) — value labels at the bar ends."""
    if not items:
        return Markup("")
    top = max(maximum or 0.0, max((v for _, v, _ in items), default=0.0)) or 1.0
    low = min(0.0, min(v for _, v, _ in items))
    left, right, row_h = 170.0, 64.0, 22.0
    height = row_h * len(items) + 8

    def px(v: float) -> float:
        return left + (v - low) / (top - low) * (width - left - right)

    parts = []
    for i, (name, value, css) in enumerate(items):
        y = 4 + i * row_h
        x0, x1 = px(0.0), px(value)
        parts.append(
            f'<text class="row-label" x="{left - 8}" y="{y + 14:.1f}" text-anchor="end">{_label(name, 26)}</text>'
            f'<rect class="bar {escape(css)}" x="{min(x0, x1):.1f}" y="{y + 3:.1f}" '
            f'width="{max(abs(x1 - x0), 1):.1f}" height="{row_h - 7:.1f}" rx="2">'
            f"<title>{escape(name)}: {_fmt(value)} {escape(unit)}</title></rect>"
            f'<text class="tick" x="{max(x0, x1) + 4:.1f}" y="{y + 14:.1f}">{_fmt(value)}</text>'
        )
    return _svg(width, height, label, "".join(parts))


def sparkline(values: Sequence[float], *, label: str) -> Markup:
    """A tiny trend line for tables."""
    if len(values) < 2:
        return Markup("")
    width, height = 80.0, 22.0
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    step = width / (len(values) - 1)
    d = "M" + "L".join(
        f"{i * step:.1f},{height - 2 - (v - low) / span * (height - 4):.1f}"
        for i, v in enumerate(values)
    )
    return _svg(width, height, label, f'<path class="line s0" d="{d}"/>', css="chart spark")


# -- analysis views of a built index (COINr's plots) ------------------------------------------
@dataclass(frozen=True)
class SunArc:
    label: str
    depth: int
    start: float  # share of the turn
    end: float
    series: int  # colour of its top-level group
    title: str = ""


def sunburst_chart(arcs: Sequence[SunArc], *, label: str) -> Markup:
    """Rings of arcs (depth 1 innermost); each arc's angle is its share of the turn."""
    if not arcs:
        return Markup("")
    depth = max(a.depth for a in arcs)
    size = 520.0
    c = size / 2
    ring = (c - 10) / (depth + 0.6)

    def point(share: float, r: float) -> tuple[float, float]:
        angle = 2 * math.pi * share - math.pi / 2
        return c + r * math.cos(angle), c + r * math.sin(angle)

    parts = []
    for a in arcs:
        r0, r1 = ring * (a.depth - 0.4), ring * (a.depth + 0.6)
        span = min(a.end - a.start, 0.999999)
        if span <= 0:
            continue
        large = 1 if span > 0.5 else 0
        x0, y0 = point(a.start, r1)
        x1, y1 = point(a.start + span, r1)
        x2, y2 = point(a.start + span, r0)
        x3, y3 = point(a.start, r0)
        d = (
            f"M{x0:.1f},{y0:.1f}A{r1:.1f},{r1:.1f} 0 {large} 1 {x1:.1f},{y1:.1f}"
            f"L{x2:.1f},{y2:.1f}A{r0:.1f},{r0:.1f} 0 {large} 0 {x3:.1f},{y3:.1f}Z"
        )
        css = SERIES_CLASSES[a.series % len(SERIES_CLASSES)]
        opacity = max(0.35, 1.0 - 0.22 * (a.depth - 1))
        parts.append(
            f'<path class="arc {css}" d="{d}" fill-opacity="{opacity:.2f}">'
            f"<title>{escape(a.title or a.label)}</title></path>"
        )
        if a.depth == 1 and span > 0.04:
            tx, ty = point(a.start + span / 2, (r0 + r1) / 2)
            parts.append(
                f'<text class="arc-label" x="{tx:.1f}" y="{ty:.1f}" text-anchor="middle">'
                f"{_label(a.label, 16)}</text>"
            )
    return _svg(size, size, label, "".join(parts), css="chart sunburst")


def strip_chart(
    rows: Sequence[tuple[str, Sequence[tuple[str, float, str]]]], *, label: str, unit: str = ""
) -> Markup:
    """One row of dots per series (label, [(unit, value, css)]): distributions side by side on a
    shared axis; ``css`` marks a dot (``outlier``, ``changed``)."""
    values = [v for _, pts in rows for _, v, _ in pts if math.isfinite(v)]
    if not values:
        return Markup("")
    low, high = min(values), max(values)
    ticks = nice_ticks(low, high, 5)
    low, high = min(low, ticks[0]), max(high, ticks[-1])
    left, right, row_h, top = 130.0, 20.0, 56.0, 10.0
    width = 640.0
    height = top + row_h * len(rows) + 26

    def x(v: float) -> float:
        return left + (v - low) / ((high - low) or 1.0) * (width - left - right)

    parts = []
    for tick in ticks:
        tx = x(tick)
        parts.append(
            f'<line class="grid" x1="{tx:.1f}" y1="{top}" x2="{tx:.1f}" y2="{height - 22:.1f}"/>'
            f'<text class="tick" x="{tx:.1f}" y="{height - 8:.1f}" text-anchor="middle">'
            f"{_fmt(tick)}</text>"
        )
    for i, (name, points) in enumerate(rows):
        cy = top + row_h * i + row_h / 2
        parts.append(
            f'<text class="row-label" x="{left - 8}" y="{cy + 4:.1f}" text-anchor="end">'
            f"{_label(name, 20)}</text>"
        )
        for k, (unit_code, value, css) in enumerate(points):
            if not math.isfinite(value):
                continue
            jitter = ((k * 37) % 17 - 8) * 1.6  # deterministic spread so equal values stay visible
            parts.append(
                f'<circle class="dot {escape(css)}" cx="{x(value):.1f}" cy="{cy + jitter:.1f}" '
                f'r="{4 if css else 3}"><title>{escape(unit_code)}: {_fmt(value)} '
                f"{escape(unit)}</title></circle>"
            )
    return _svg(width, height, label, "".join(parts))


def heatmap_chart(
    rows: Sequence[str], columns: Sequence[str], values: Sequence[Sequence[float]], *, label: str
) -> Markup:
    """Correlations as coloured cells (blue negative, red positive), the value in each cell."""
    if not rows or not columns:
        return Markup("")
    cell = max(18.0, min(44.0, 560.0 / max(len(columns), 1)))
    left, top = 150.0, 120.0
    width = left + cell * len(columns) + 10
    height = top + cell * len(rows) + 10
    parts = []
    for j, name in enumerate(columns):
        cx = left + cell * j + cell / 2
        parts.append(
            f'<text class="tick" transform="translate({cx:.1f},{top - 6}) rotate(-60)">'
            f"{_label(name, 22)}</text>"
        )
    for i, name in enumerate(rows):
        y = top + cell * i
        parts.append(
            f'<text class="row-label" x="{left - 6}" y="{y + cell / 2 + 4:.1f}" '
            f'text-anchor="end">{_label(name, 22)}</text>'
        )
        for j, value in enumerate(values[i]):
            x = left + cell * j
            if value is None or not math.isfinite(value):
                fill, shown = "#eeeeee", "—"
            else:
                v = max(-1.0, min(1.0, value))
                # white at 0, towards #b2182b at +1 and #2166ac at −1
                base = (178, 24, 43) if v >= 0 else (33, 102, 172)
                mix = [round(255 + (b - 255) * abs(v)) for b in base]
                fill, shown = f"rgb({mix[0]},{mix[1]},{mix[2]})", f"{value:.2f}"
            ink = "#fff" if value is not None and math.isfinite(value) and abs(value) > 0.6 else ""
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{cell:.1f}" height="{cell:.1f}" '
                f'fill="{fill}" stroke="#fff"><title>{escape(rows[i])} × {escape(columns[j])}: '
                f"{shown}</title></rect>"
            )
            if cell >= 26:
                parts.append(
                    f'<text class="cell" x="{x + cell / 2:.1f}" y="{y + cell / 2 + 4:.1f}" '
                    f'text-anchor="middle"{f" fill={chr(34)}{ink}{chr(34)}" if ink else ""}>'
                    f"{shown}</text>"
                )
    return _svg(width, height, label, "".join(parts), css="chart heatmap")


def bump_chart(
    labels: Sequence[str],
    lines: Sequence[tuple[str, Sequence[float | None]]],
    *,
    label: str,
    highlight: Sequence[str] = (),
) -> Markup:
    """Ranks (1 on top) of each unit under each labelled ranking, joined by lines."""
    if len(labels) < 2 or not lines:
        return Markup("")
    n = max((v for _, vals in lines for v in vals if v is not None), default=1.0)
    left, right, top, row_h = 150.0, 150.0, 30.0, 14.0
    col = max(120.0, 420.0 / (len(labels) - 1))
    width = left + right + col * (len(labels) - 1)
    height = top + row_h * n + 16

    def y(rank: float) -> float:
        return top + (rank - 1) * row_h + row_h / 2

    parts = []
    for j, name in enumerate(labels):
        parts.append(
            f'<text class="axis-label" x="{left + col * j:.1f}" y="{top - 12}" '
            f'text-anchor="middle">{escape(name)}</text>'
        )
    for k, (name, values) in enumerate(lines):
        css = "hl" if name in highlight else SERIES_CLASSES[k % len(SERIES_CLASSES)]
        pts = [(left + col * j, y(v)) for j, v in enumerate(values) if v is not None]
        if len(pts) >= 2:
            d = "M" + "L".join(f"{px:.1f},{py:.1f}" for px, py in pts)
            parts.append(
                f'<path class="line bump {css}" d="{d}"><title>{escape(name)}</title></path>'
            )
        first, last = values[0], values[-1]
        if first is not None:
            parts.append(
                f'<text class="row-label" x="{left - 8}" y="{y(first) + 4:.1f}" '
                f'text-anchor="end">{int(first)}. {_label(name, 18)}</text>'
            )
        if last is not None:
            parts.append(
                f'<text class="row-label" x="{width - right + 8:.1f}" y="{y(last) + 4:.1f}">'
                f"{int(last)}. {_label(name, 18)}</text>"
            )
    return _svg(width, height, label, "".join(parts), css="chart bump")
