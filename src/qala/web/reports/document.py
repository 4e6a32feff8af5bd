"""A small report document model rendered to HTML (Jinja) and to PDF (matplotlib, no system libs).

A report is a flow of blocks — headings, paragraphs, tables, figures, notes — plus a method annex.
Figures are drawing functions ``draw(ax)`` so the same plot goes inline as SVG in the HTML and onto
an A4 page of the PDF. The PDF writer flows blocks down A4 pages (DejaVu fonts cover Kazakh and
Russian letters) and starts a new page when a block does not fit.
"""

from __future__ import annotations

import io
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from matplotlib.axes import Axes
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure

from qala import __version__
from qala.core.clock import utc_now
from qala.core.i18n import Translator

A4 = (8.27, 11.69)
MARGIN = 0.6  # inches
INK = "#1b2530"
MUTED = "#4a5866"
PRIMARY = "#00677f"
SERIES = ("#00677f", "#c26a00", "#6a4c93", "#1b6e3a", "#b3261e", "#4a5866")


@dataclass
class Heading:
    text: str
    level: int = 2


@dataclass
class Paragraph:
    text: str
    muted: bool = False
    kind: str = "text"
    """``text``; ``code`` (a listing kept as written: the rating's specification); ``cite`` (a
    cited work, titled as its publisher wrote it)."""


@dataclass
class Note:
    """A highlighted box, e.g. the illustrative-data warning."""

    text: str


@dataclass
class Table:
    columns: list[str]
    rows: list[list[Any]]
    caption: str = ""
    numeric: set[int] = field(default_factory=set)
    """Column positions aligned right."""


@dataclass
class FigureBlock:
    draw: Callable[[Axes], None]
    caption: str
    height: float = 3.2
    """Height on the PDF page in inches (width is the text width)."""
    polar: bool = False


Block = Heading | Paragraph | Note | Table | FigureBlock


@dataclass
class Report:
    title: str
    subtitle: str
    blocks: list[Block]
    annex_title: str
    annex: list[Block]
    language: str = "en"
    labels: dict[str, str] = field(default_factory=dict)

    # -- HTML
    def html(self) -> str:
        env = Environment(
            loader=FileSystemLoader(str(Path(__file__).parent / "templates")),
            autoescape=select_autoescape(["html"]),
        )
        return env.get_template("report.html").render(
            report=self,
            blocks=[_html_block(b) for b in self.blocks],
            annex=[_html_block(b) for b in self.annex],
            generated=Translator(self.language).when(utc_now()),
            version=__version__,
        )

    # -- PDF
    def pdf(self) -> bytes:
        buffer = io.BytesIO()
        with (
            plt.rc_context(
                {
                    "font.family": "DejaVu Sans",
                    "font.size": 9,
                    "axes.edgecolor": "#8796a5",
                    "axes.labelcolor": INK,
                    "xtick.color": MUTED,
                    "ytick.color": MUTED,
                    "pdf.fonttype": 42,
                }
            ),
            PdfPages(
                buffer, metadata={"Title": self.title, "Creator": f"Qala {__version__}"}
            ) as pdf,
        ):
            writer = _PdfFlow(pdf, self.title)
            writer.title_block(self.title, self.subtitle)
            for block in self.blocks:
                writer.add(block)
            writer.new_page()
            writer.add(Heading(self.annex_title, 1))
            for block in self.annex:
                writer.add(block)
            writer.finish()
        return buffer.getvalue()


def _figure_svg(block: FigureBlock) -> Markup:
    figure = Figure(figsize=(7.0, block.height))
    ax = figure.add_subplot(111, projection="polar" if block.polar else None)
    block.draw(ax)
    figure.tight_layout()
    out = io.StringIO()
    figure.savefig(out, format="svg")
    text = out.getvalue()
    start = text.find("<svg")
    return Markup(text[start:])


def _html_block(block: Block) -> dict[str, Any]:
    if isinstance(block, FigureBlock):
        return {"kind": "figure", "svg": _figure_svg(block), "caption": block.caption}
    if isinstance(block, Heading):
        return {"kind": "heading", "text": block.text, "level": block.level}
    if isinstance(block, Paragraph):
        return {
            "kind": "paragraph",
            "text": block.text,
            "muted": block.muted,
            "style": block.kind,
        }
    if isinstance(block, Note):
        return {"kind": "note", "text": block.text}
    return {
        "kind": "table",
        "columns": block.columns,
        "rows": [[_cell(v) for v in row] for row in block.rows],
        "caption": block.caption,
        "numeric": block.numeric,
    }


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        if value != value:
            return "—"
        return f"{value:.2f}" if abs(value) < 1000 else f"{value:,.0f}".replace(",", "\u202f")
    return str(value)


class _PdfFlow:
    """Flows blocks down A4 pages: a cursor in inches from the top of the text area."""

    def __init__(self, pdf: PdfPages, running_title: str) -> None:
        self.pdf = pdf
        self.running_title = running_title
        self.width = A4[0] - 2 * MARGIN
        self.height = A4[1] - 2 * MARGIN - 0.3
        self.page_number = 0
        self.figure: Figure | None = None
        self.y = 0.0
        self.new_page()

    def _fig_xy(self, x_in: float, y_in: float) -> tuple[float, float]:
        return (MARGIN + x_in) / A4[0], 1 - (MARGIN + 0.3 + y_in) / A4[1]

    def new_page(self) -> None:
        if self.figure is not None:
            self.pdf.savefig(self.figure)
            plt.close(self.figure)
        self.page_number += 1
        self.figure = plt.figure(figsize=A4)
        self.figure.text(
            MARGIN / A4[0], 1 - 0.4 / A4[1], self.running_title, fontsize=7.5, color=MUTED
        )
        self.figure.text(
            1 - MARGIN / A4[0],
            0.35 / A4[1],
            str(self.page_number),
            fontsize=7.5,
            color=MUTED,
            ha="right",
        )
        self.figure.text(
            MARGIN / A4[0],
            0.35 / A4[1],
            f"Qala {__version__} · Apache-2.0",
            fontsize=7.5,
            color=MUTED,
        )
        self.y = 0.0

    def finish(self) -> None:
        if self.figure is not None:
            self.pdf.savefig(self.figure)
            plt.close(self.figure)
            self.figure = None

    def _need(self, inches: float) -> None:
        if self.y + inches > self.height and self.y > 0:
            self.new_page()

    def _text(
        self,
        text: str,
        *,
        size: float,
        weight: str = "normal",
        color: str = INK,
        indent: float = 0.0,
    ) -> None:
        factor = 0.62 if weight == "bold" else 0.56
        chars = max(20, int((self.width - indent) * 72 / (size * factor)))
        lines = []
        for paragraph in text.split("\n"):
            lines.extend(textwrap.wrap(paragraph, chars) or [""])
        line_h = size * 1.45 / 72
        for line in lines:
            self._need(line_h)
            assert self.figure is not None
            x, y = self._fig_xy(indent, self.y + line_h * 0.8)
            self.figure.text(x, y, line, fontsize=size, weight=weight, color=color)
            self.y += line_h

    def title_block(self, title: str, subtitle: str) -> None:
        self._text(title, size=18, weight="bold", color=PRIMARY)
        self.y += 0.05
        self._text(subtitle, size=10, color=MUTED)
        self.y += 0.2

    def add(self, block: Block) -> None:
        if isinstance(block, Heading):
            self._need(0.7)
            self.y += 0.12
            self._text(
                block.text,
                size=14 if block.level == 1 else 12,
                weight="bold",
                color=PRIMARY if block.level == 1 else INK,
            )
            self.y += 0.04
        elif isinstance(block, Paragraph):
            self._text(block.text, size=9, color=MUTED if block.muted else INK)
            self.y += 0.08
        elif isinstance(block, Note):
            self._text("▲ " + block.text, size=9, weight="bold", color="#6b4a00")
            self.y += 0.1
        elif isinstance(block, Table):
            self._table(block)
        else:
            self._figure(block)

    def _table(self, table: Table) -> None:
        size = 8.0
        row_h = size * 1.6 / 72
        if table.caption:
            self._need(row_h * 3)
            self._text(table.caption, size=8.5, weight="bold", color=MUTED)
        texts = [[_cell(v) for v in row] for row in table.rows]
        widths = []
        for i, name in enumerate(table.columns):
            longest = max([len(name)] + [len(r[i]) for r in texts]) if texts else len(name)
            widths.append(min(longest, 46) + 2)
        scale = self.width / max(1, sum(widths))
        positions = [sum(widths[:i]) * scale for i in range(len(widths))]

        def line(cells: Sequence[str], bold: bool) -> None:
            self._need(row_h)
            assert self.figure is not None
            for i, text in enumerate(cells):
                limit = max(4, int(widths[i] * scale * 72 / (size * 0.62)) - 2)
                shown = text if len(text) <= limit else text[: limit - 1] + "…"
                right = i in table.numeric
                x_in = positions[i] + (widths[i] * scale - 0.08 if right else 0)
                x, y = self._fig_xy(x_in, self.y + row_h * 0.75)
                self.figure.text(
                    x,
                    y,
                    shown,
                    fontsize=size,
                    weight="bold" if bold else "normal",
                    ha="right" if right else "left",
                    color=INK,
                )
            self.y += row_h

        line(table.columns, True)
        for row in texts:
            line(row, False)
        self.y += 0.12

    def _figure(self, block: FigureBlock) -> None:
        total = block.height + 0.6
        if self.y + total > self.height:
            self.new_page()
        assert self.figure is not None
        self.y += 0.25
        left, top = self._fig_xy(0.3, self.y)
        width = (self.width - 0.5) / A4[0]
        height = block.height / A4[1]
        ax = self.figure.add_axes(
            (
                left + (0.25 / A4[0] if block.polar else 0),
                top - height + 0.2 / A4[1],
                width * (0.6 if block.polar else 1),
                height - 0.35 / A4[1],
            ),
            projection="polar" if block.polar else None,
        )
        block.draw(ax)
        self.y += block.height + 0.15
        self._text(block.caption, size=8, color=MUTED)
        self.y += 0.1
