"""`qala index plot` and `qala index export-workbook`: COINr's ASEM example from files and the
national rating from stored runs; the images are real PNG/SVG, the workbook opens with openpyxl
and holds every step."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.conftest import REPO_ROOT, shared_file
from typer.testing import CliRunner

from qala.runtime import Context
from qala.settings import Settings

PLOTS = ("sunburst", "distribution", "correlation", "bump")


def is_image(path: Path) -> bool:
    head = path.read_bytes()[:4000]
    return head.startswith(b"\x89PNG") if path.suffix == ".png" else b"<svg" in head


@pytest.fixture
def asem_args() -> list[str]:
    return [
        "--data",
        str(shared_file("asem/ASEM_iData.csv")),
        "--meta",
        str(shared_file("asem/ASEM_iMeta.csv")),
    ]


@pytest.mark.shared
def test_asem_plots_and_workbook_from_files(asem_args: list[str], tmp_path: Path) -> None:
    import openpyxl

    from qala.cli.main import app

    spec = REPO_ROOT / "examples" / "asem" / "spec.yaml"
    variant = tmp_path / "asem_rank.yaml"
    variant.write_text(
        spec.read_text(encoding="utf-8").replace(
            "    method: minmax\n    params: {low: 0.0, high: 100.0}",
            "    method: rank\n    params: {}",
            1,
        ),
        encoding="utf-8",
    )
    runner = CliRunner()
    for kind in PLOTS:
        for suffix in ("png", "svg"):
            out = tmp_path / f"{kind}.{suffix}"
            extra = ["--compare", str(variant)] if kind == "bump" else []
            extra += (
                ["--level", "1", "--other", "2", "--parent", "Conn"]
                if kind == "correlation"
                else []
            )
            extra += ["--indicator", "Flights"] if kind == "distribution" else []
            result = runner.invoke(
                app, ["index", "plot", kind, str(spec), *asem_args, *extra, "--out", str(out)]
            )
            assert result.exit_code == 0, result.output
            assert is_image(out), f"{out} is not a {suffix} image"
    book_path = tmp_path / "asem.xlsx"
    result = runner.invoke(
        app, ["index", "export-workbook", str(spec), *asem_args, "-n", "8", "--out", str(book_path)]
    )
    assert result.exit_code == 0, result.output
    book = openpyxl.load_workbook(book_path, read_only=True)
    for step in (
        "raw",
        "denominated",
        "imputed",
        "screened",
        "treated",
        "normalised",
        "aggregated",
    ):
        assert f"Data_{step}" in book.sheetnames
    assert {"Spec", "Structure", "Audit_influence", "Uncertainty_ranks"} <= set(book.sheetnames)


@pytest.mark.shared
def test_bad_plot_requests_are_clear_errors(asem_args: list[str], tmp_path: Path) -> None:
    from qala.cli.main import app

    spec = str(REPO_ROOT / "examples" / "asem" / "spec.yaml")
    runner = CliRunner()
    cases = [
        (["index", "plot", "pie", spec, *asem_args, "--out", str(tmp_path / "x.png")], "pie"),
        (["index", "plot", "sunburst", spec, *asem_args, "--out", str(tmp_path / "x.gif")], ".svg"),
        (
            ["index", "plot", "bump", spec, *asem_args, "--out", str(tmp_path / "x.png")],
            "--compare",
        ),
        (
            [
                "index",
                "plot",
                "distribution",
                spec,
                *asem_args,
                "--indicator",
                "Conn",
                "--out",
                str(tmp_path / "x.png"),
            ],
            "not an indicator",
        ),
        (["index", "export-workbook", spec, *asem_args, "--out", str(tmp_path / "x.csv")], ".xlsx"),
        (["index", "export-workbook", "no-such.yaml", "--out", str(tmp_path / "x.xlsx")], "SOURCE"),
    ]
    for args, expected in cases:
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert expected in result.output


def test_national_rating_runs_plot_and_export(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import openpyxl

    from qala.cli.main import app
    from qala.components.catalog.sample import load_sample_data
    from qala.components.rating.services import build_rating

    context = Context.from_settings(Settings(database_url=sqlite_url))
    load_sample_data(context.database, years=range(2024, 2026))
    first = build_rating(context.database, year=2024, replications=0).run_id
    second = build_rating(context.database, year=2025, replications=6).run_id
    context.database.dispose()
    monkeypatch.setenv("QALA_DATABASE_URL", sqlite_url)
    runner = CliRunner()
    for kind in PLOTS:
        out = tmp_path / f"national-{kind}.svg"
        extra = ["--compare", str(first)] if kind == "bump" else []
        extra += ["--level", "2"] if kind == "correlation" else []
        result = runner.invoke(app, ["index", "plot", kind, str(second), *extra, "--out", str(out)])
        assert result.exit_code == 0, result.output
        assert is_image(out)
    book_path = tmp_path / "national.xlsx"
    result = runner.invoke(app, ["index", "export-workbook", str(second), "--out", str(book_path)])
    assert result.exit_code == 0, result.output
    book = openpyxl.load_workbook(book_path, read_only=True)
    for step in ("raw", "screened", "imputed", "treated", "normalised", "aggregated"):
        assert f"Data_{step}" in book.sheetnames
    stats = list(book["Uncertainty_ranks"].iter_rows(values_only=True))
    assert {"nominal", "median", "q05", "q95"} <= set(stats[0])
    assert len(stats) > 40  # one row per ranked place, run with the run's 6 replications
    samples = list(book["Uncertainty_samples"].iter_rows(values_only=True))
    assert len(samples) == 1 + 6
    missing = runner.invoke(app, ["index", "export-workbook", "9999", "--out", str(book_path)])
    assert missing.exit_code == 2 and "no rating run 9999" in missing.output
