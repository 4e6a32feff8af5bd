"""One spreadsheet with everything a built index is made of (COINr ``export_to_excel``).

Sheets: ``Spec`` (the recipe text and each step's parameters), ``Structure`` (framework with
weights and effective weights), one ``Data_<step>`` sheet per data set the build kept (raw,
denominated, screened, imputed, treated, normalised, aggregated), ``Imputed`` and ``Treated``
flags, ``Treatment`` (skew/kurtosis per indicator), ``Scores`` and ``Ranks``, the audit's sheets
when an audit is given (``Audit_correlations``, ``Audit_consistency``, ``Audit_influence``,
``Audit_flagged``) and the uncertainty's (``Uncertainty_ranks``, ``Sensitivity``). Every text
cell goes through :func:`qala.core.cells.neutralise`, so no name or code from the data runs as a
formula. The workbook is returned as bytes; writing it somewhere is the caller's business.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Sequence
from typing import Any

import pandas as pd

from qala.core.cells import neutralise

from .audit import AuditReport
from .build import IndexResult
from .spec import step_to_dict
from .uncertainty import UncertaintyResult

STEP_SHEETS = (
    "raw",
    "denominated",
    "screened",
    "imputed",
    "treated",
    "normalised",
    "aggregated",
)


def _cell(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, (pd.Series, pd.DataFrame)):
        value = value.to_dict()
    elif hasattr(value, "item") and not isinstance(value, str):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, (list, dict, tuple)):
        value = json.dumps(value, ensure_ascii=False, default=str)[:32_000]
    return neutralise(str(value))


def _write_frame(ws: Any, frame: pd.DataFrame, *, index_label: str | None = None) -> None:
    label = index_label or (frame.index.name or "")
    ws.append([_cell(label), *[_cell(str(c)) for c in frame.columns]])
    for idx, row in zip(frame.index, frame.itertuples(index=False, name=None), strict=True):
        ws.append([_cell(str(idx)), *[_cell(v) for v in row]])
    ws.freeze_panes = "B2"


def _write_rows(ws: Any, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    ws.append([_cell(h) for h in header])
    for row in rows:
        ws.append([_cell(v) for v in row])


def workbook_bytes(
    result: IndexResult,
    *,
    spec_text: str | None = None,
    audit_report: AuditReport | None = None,
    uncertainty: UncertaintyResult | None = None,
    units: pd.DataFrame | None = None,
) -> bytes:
    """The index as an ``.xlsx`` workbook (see the module docstring for its sheets)."""
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "Spec"
    _write_rows(
        ws,
        ["position", "step", "parameters"],
        [
            [i + 1, step.kind, json.dumps(step_to_dict(step), ensure_ascii=False, default=str)]
            for i, step in enumerate(result.spec.steps)
        ],
    )
    ws.append([])
    ws.append([_cell("name"), _cell(result.spec.name)])
    text = spec_text if spec_text is not None else result.spec.to_yaml()
    ws.append([_cell("spec text")])
    for line in text.splitlines():
        ws.append([_cell(line)])

    fw = result.framework
    effective = fw.effective_weights()
    ws = wb.create_sheet("Structure")
    _write_rows(
        ws,
        ["code", "name", "level", "parent", "weight", "effective_weight", "direction", "unit"],
        [
            [
                n.code,
                n.name,
                fw.level_of(n.code),
                n.parent,
                n.weight,
                effective[n.code],
                n.direction,
                n.unit,
            ]
            for n in fw.nodes
        ],
    )
    if units is not None and not units.empty:
        _write_frame(wb.create_sheet("Units"), units)
    for name in STEP_SHEETS:
        if name in result.datasets:
            _write_frame(wb.create_sheet(f"Data_{name}"), result.datasets[name])
    _write_frame(wb.create_sheet("Imputed"), result.imputed.astype(bool))
    _write_frame(wb.create_sheet("Treated"), result.treated)
    if result.treatment is not None:
        _write_frame(wb.create_sheet("Treatment"), result.treatment)
    if result.screening:
        ws = wb.create_sheet("Screening")
        _write_rows(ws, ["item", "value"], [[k, v] for k, v in result.screening.items()])
    _write_frame(wb.create_sheet("Scores"), result.scores)
    _write_frame(wb.create_sheet("Ranks"), result.ranks)
    if audit_report is not None:
        _write_frame(wb.create_sheet("Audit_correlations"), audit_report.node_correlations)
        _write_frame(wb.create_sheet("Audit_consistency"), audit_report.consistency)
        _write_frame(wb.create_sheet("Audit_influence"), audit_report.influence)
        _write_frame(wb.create_sheet("Audit_flagged"), audit_report.flagged_pairs)
    if uncertainty is not None:
        _write_frame(wb.create_sheet("Uncertainty_ranks"), uncertainty.rank_stats)
        _write_frame(wb.create_sheet("Uncertainty_samples"), uncertainty.samples)
        if uncertainty.sensitivity is not None:
            _write_frame(wb.create_sheet("Sensitivity"), uncertainty.sensitivity)
    ws = wb.create_sheet("Warnings")
    _write_rows(ws, ["warning"], [[w] for w in result.warnings])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
