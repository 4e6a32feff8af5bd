"""`qala sem ...` end to end (the CLI lives in qala.cli.sem; tested here beside its engine)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.engines.plssem.conftest_data import SMALL_MODEL, simulate
from typer.testing import CliRunner

from qala.cli.sem import app

runner = CliRunner()


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    model = tmp_path / "model.txt"
    model.write_text(SMALL_MODEL)
    data = tmp_path / "survey.csv"
    frame = simulate(n=120, seed=8)
    frame["grp"] = ["a", "b"] * 60
    frame.to_csv(data, index=False)
    return model, data


def test_fit_json_has_the_documented_keys(files: tuple[Path, Path]) -> None:
    model, data = files
    result = runner.invoke(app, ["fit", str(model), str(data), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    for key in (
        "paths",
        "loadings",
        "weights",
        "r2",
        "r2_adj",
        "reliability",
        "htmt",
        "iterations",
    ):
        assert key in out
    assert set(out["paths"]) == {"X -> M", "X -> Y", "M -> Y"}
    assert set(out["loadings"]["X"]) == {"x1", "x2", "x3"}
    assert set(out["reliability"]["Y"]) == {"alpha", "rho_a", "rho_c", "ave"}
    assert "bootstrap" not in out


def test_fit_bootstrap_json_is_reproducible(files: tuple[Path, Path]) -> None:
    model, data = files
    args = [
        "fit",
        str(model),
        str(data),
        "--scheme",
        "factor",
        "--consistent",
        "--bootstrap",
        "100",
        "--seed",
        "5",
        "--json",
    ]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    out = json.loads(first.stdout)
    assert out["scheme"] == "factor" and out["consistent"] is True
    row = out["bootstrap"]["X -> M"]
    assert set(row) >= {"mean", "sd", "t", "p", "ci_low", "ci_high"}
    assert row["ci_low"] < out["paths"]["X -> M"] < row["ci_high"]
    assert out["bootstrap_info"]["n_boot"] + out["bootstrap_info"]["n_failed"] == 100
    again = json.loads(runner.invoke(app, args).stdout)
    assert again["bootstrap"] == out["bootstrap"]


def test_report_and_diagram(files: tuple[Path, Path], tmp_path: Path) -> None:
    model, data = files
    png = tmp_path / "model.png"
    result = runner.invoke(app, ["fit", str(model), str(data), "--report", "--diagram", str(png)])
    assert result.exit_code == 0, result.output
    assert "Path coefficients" in result.stdout and "HTMT" in result.stdout
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_errors_are_clear_and_exit_2(files: tuple[Path, Path], tmp_path: Path) -> None:
    model, data = files
    bad = tmp_path / "bad.txt"
    bad.write_text(SMALL_MODEL.replace("x3", "x_missing"))
    result = runner.invoke(app, ["fit", str(bad), str(data), "--json"])
    assert result.exit_code == 2
    assert "x_missing" in json.loads(result.stdout)["error"]
    result = runner.invoke(app, ["fit", str(model), str(data), "--scheme", "nope"])
    assert result.exit_code == 2
    assert "scheme" in result.output
    result = runner.invoke(app, ["fit", str(tmp_path / "none.txt"), str(data)])
    assert result.exit_code == 2


def test_predict_ipma_mga_commands(files: tuple[Path, Path]) -> None:
    model, data = files
    pred = runner.invoke(app, ["predict", str(model), str(data), "--folds", "5", "--json"])
    assert pred.exit_code == 0, pred.output
    assert "y1" in json.loads(pred.stdout)["indicators"]
    ipma = runner.invoke(app, ["ipma", str(model), str(data), "--target", "Y", "--json"])
    assert ipma.exit_code == 0, ipma.output
    assert set(json.loads(ipma.stdout)["constructs"]) == {"X", "M"}
    mga = runner.invoke(
        app, ["mga", str(model), str(data), "--group", "grp", "--permutations", "30", "--json"]
    )
    assert mga.exit_code == 0, mga.output
    assert json.loads(mga.stdout)["sizes"] == [60, 60]


def test_convergence_control(files: tuple[Path, Path]) -> None:
    model, data = files
    result = runner.invoke(app, ["fit", str(model), str(data), "--max-iter", "2", "--json"])
    assert result.exit_code == 2
    assert "did not converge within 2 iterations" in json.loads(result.stdout)["error"]
    loose = runner.invoke(app, ["fit", str(model), str(data), "--tol", "0.01", "--json"])
    strict = runner.invoke(app, ["fit", str(model), str(data), "--json"])
    assert json.loads(loose.stdout)["iterations"] < json.loads(strict.stdout)["iterations"]


def test_option_values_are_converted_and_checked_without_pydantic(
    files: tuple[Path, Path], tmp_path: Path
) -> None:
    """Through the root command (which installs qala.cli.coercion): plain options convert as
    Typer's pydantic adapters did, with the same messages for bad values."""
    from qala.cli.main import app as root

    model, data = files
    bad_int = runner.invoke(root, ["sem", "fit", str(model), str(data), "--bootstrap", "abc"])
    assert bad_int.exit_code == 2
    assert "Input should be a valid integer" in bad_int.output
    bad_float = runner.invoke(root, ["sem", "fit", str(model), str(data), "--tol", "1e-x"])
    assert bad_float.exit_code == 2
    assert "Input should be a valid number" in bad_float.output
    ok = runner.invoke(
        root, ["sem", "fit", str(model), str(data), "--tol", " 1e-6 ", "--seed", "7", "--json"]
    )
    assert ok.exit_code == 0, ok.output
    ragged = tmp_path / "ragged.csv"
    ragged.write_text(
        data.read_text().replace("\n", ",9\n", 3), encoding="utf-8"
    )  # header, rows 2-3
    broken = runner.invoke(root, ["sem", "fit", str(model), str(ragged)])
    assert broken.exit_code == 2
    assert "row 4 has 10 fields, the header 11" in " ".join(broken.output.split())


def test_fit_json_has_the_fit_measures_with_their_test(files: tuple[Path, Path]) -> None:
    model, data = files
    result = runner.invoke(
        app, ["fit", str(model), str(data), "--json", "--fit-test", "40", "--seed", "3"]
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    for measure in ("srmr", "d_g", "d_uls"):
        for model_kind in ("saturated", "estimated"):
            cell = payload[measure][model_kind]
            assert set(cell) == {"value", "hi95", "hi99", "p"}
            assert cell["value"] >= 0 and cell["hi95"] <= cell["hi99"]
    assert payload["model_fit"]["n_boot"] == 40
    assert "htmt2" in payload
    tables = runner.invoke(app, ["fit", str(model), str(data)])
    assert "SRMR" in tables.stdout and "HI95" not in tables.stdout  # no test unless asked
    cv = runner.invoke(app, ["cvpat", str(model), str(data), "--repeats", "2", "--json"])
    assert cv.exit_code == 0, cv.output
    assert set(json.loads(cv.stdout)["against"]) == {"IA", "LM"}
