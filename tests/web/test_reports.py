"""`qala report …`: the PLS-SEM report on data with a known structure, and the city and rating
reports from the command line (PDF pages checked with pdftoppm)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tests.conftest import require_program
from typer.testing import CliRunner

from qala.web.i18n import Translator
from qala.web.reports import build_sem_report

MODEL = """
Technology =~ t1 + t2 + t3
Adoption =~ a1 + a2 + a3
Adoption ~ Technology
"""


def survey(n: int = 300, beta: float = 0.6, seed: int = 7) -> pd.DataFrame:
    """Answers generated from Adoption = beta·Technology + noise, three items per construct."""
    rng = np.random.default_rng(seed)
    tech = rng.standard_normal(n)
    adoption = beta * tech + np.sqrt(1 - beta**2) * rng.standard_normal(n)
    frame = {f"t{i}": tech * 0.85 + 0.53 * rng.standard_normal(n) for i in (1, 2, 3)}
    frame |= {f"a{i}": adoption * 0.85 + 0.53 * rng.standard_normal(n) for i in (1, 2, 3)}
    return pd.DataFrame(frame)


def test_sem_report_recovers_the_generating_path() -> None:
    report = build_sem_report(MODEL, survey(), Translator("en"), title="PLS-SEM: test")
    html = report.html()
    assert "Technology -&gt; Adoption" in html or "Technology -> Adoption" in html
    from qala.engines.plssem import PLSSEM

    path = float(PLSSEM(MODEL).fit(survey()).paths.iloc[0])
    # Composite scores attenuate the latent 0.6 by the reliability of the blocks (~0.9 here).
    assert 0.45 < path < 0.62
    assert f"{path:.2f}" in html
    assert "Method annex" in html and "Hair, J. F." in html


def test_sem_report_has_fit_discriminant_validity_and_cvpat_in_each_language() -> None:
    from qala.engines.plssem import PLSSEM

    result = PLSSEM(MODEL).fit(survey())
    srmr = result.model_fit().values["estimated"]["srmr"]
    htmt2 = float(result.htmt2.loc["Technology", "Adoption"])
    html = build_sem_report(MODEL, survey(), Translator("en"), fit_test=49).html()
    for text in ("Overall model fit", "SRMR", "HI95", "HTMT2", "CVPAT", "indicator average"):
        assert text in html
    assert f"{srmr:.3f}" in html and f"{htmt2:.3f}" in html
    russian = build_sem_report(MODEL, survey(), Translator("ru"), fit_test=0).html()
    assert "Общее согласие модели" in russian and "HI95" not in russian
    kazakh = build_sem_report(MODEL, survey(), Translator("kk"), fit_test=0).html()
    assert "Модельдің жалпы сәйкестігі" in kazakh and "Болжау қабілеті" in kazakh


def test_sem_report_cli_writes_a_pdf(tmp_path: Path) -> None:
    from qala.cli.report import app

    (tmp_path / "model.txt").write_text(MODEL, encoding="utf-8")
    survey().to_csv(tmp_path / "data.csv", index=False)
    out = tmp_path / "sem.pdf"
    result = CliRunner().invoke(
        app,
        [
            "sem",
            str(tmp_path / "model.txt"),
            str(tmp_path / "data.csv"),
            "--pdf",
            "-o",
            str(out),
            "--json",
            "--lang",
            "kk",
        ],
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output[result.output.index("{") :])
    assert payload["format"] == "pdf" and payload["bytes"] == out.stat().st_size
    assert out.read_bytes().startswith(b"%PDF")
    _first_pages_render(out, tmp_path)


def test_sem_report_cli_names_a_bad_model(tmp_path: Path) -> None:
    from qala.cli.report import app

    (tmp_path / "model.txt").write_text("Adoption ~ Nothing\n", encoding="utf-8")
    survey().to_csv(tmp_path / "data.csv", index=False)
    result = CliRunner().invoke(
        app, ["sem", str(tmp_path / "model.txt"), str(tmp_path / "data.csv")]
    )
    assert result.exit_code == 2
    assert "error" in result.output.lower()


@pytest.mark.slow
def test_city_and_rating_reports_from_the_cli(
    sqlite_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.web.conftest import load_small_demo

    from qala.cli.report import app
    from qala.runtime import Context
    from qala.settings import Settings

    database = tmp_path / "qala.sqlite"
    shutil.copy(sqlite_template, database)
    url = f"sqlite:///{database}"
    context = Context.from_settings(Settings(database_url=url))
    load_small_demo(context, replications=5, budgeting=False, years=1)
    context.database.dispose()
    monkeypatch.setenv("QALA_DATABASE_URL", url)
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    city = runner.invoke(app, ["city", "temirtau", "--pdf", "--lang", "ru"])
    assert city.exit_code == 0, city.output
    _first_pages_render(tmp_path / "qala-city-temirtau.pdf", tmp_path)
    rating = runner.invoke(app, ["rating", "--lang", "en"])
    assert rating.exit_code == 0, rating.output
    html = (tmp_path / "qala-rating.html").read_text(encoding="utf-8")
    assert "National Smart City rating" in html and "<svg" in html
    missing = runner.invoke(app, ["city", "atlantis"])
    assert missing.exit_code == 2 and "atlantis" in missing.output


def _first_pages_render(pdf: Path, folder: Path) -> None:
    require_program("pdftoppm", "poppler-utils")
    stem = folder / pdf.stem
    subprocess.run(
        ["pdftoppm", "-r", "30", "-png", "-f", "1", "-l", "2", str(pdf), str(stem)], check=True
    )
    pages = sorted(folder.glob(f"{pdf.stem}-*.png"))
    assert pages, "pdftoppm produced no page"
    from matplotlib.image import imread

    image = imread(pages[0])
    assert (image[..., :3].mean(axis=2) < 0.5).mean() > 0.003
