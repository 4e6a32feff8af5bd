"""Open data of a release: the Data Package validates with the `frictionless` library, the DCAT-AP
JSON-LD reads as RDF with rdflib, formulas are neutralised, the files are the same bytes after
later imports, and the API and the command serve them."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from qala.cli.main import app as cli
from qala.components.catalog.calls import open_call, publish, review, submit_values
from qala.components.catalog.opendata import release_files, safe_cell
from qala.components.catalog.services import import_frame

frictionless = pytest.importorskip("frictionless")
rdflib = pytest.importorskip("rdflib")


def _release(context) -> int:
    with context.database.transaction() as session:
        call = open_call(
            session,
            year=2024,
            indicators=["iso37120.5.1", "iso37120.11.1"],
            places=["taraz"],
            deadline=date(2025, 3, 1),
            actor="team",
        )
        frame = pd.DataFrame(
            {
                "place": ["taraz", "taraz"],
                "indicator": ["iso37120.5.1", "iso37120.11.1"],
                "value": [4.5, 72.1],
                "evidence": ['=HYPERLINK("http://evil.example")', "akimat letter 12/2025"],
            }
        )
        submit_values(session, call.id, frame, actor="taraz-akimat", scope_place="taraz")
        for indicator in ("iso37120.5.1", "iso37120.11.1"):
            review(session, call.id, "taraz", indicator, "accept", actor="reviewer")
        return publish(session, call.id, actor="publisher").number


def test_formula_cells_are_neutralised() -> None:
    assert [safe_cell(v) for v in ("=1+1", "+7", "-2", "@SUM", "plain", 3.5)] == [
        "'=1+1",
        "'+7",
        "'-2",
        "'@SUM",
        "plain",
        3.5,
    ]


def test_data_package_validates_and_dcat_reads_as_rdf(context, tmp_path: Path) -> None:
    number = _release(context)
    with context.database.session() as session:
        files = release_files(session, number)
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    report = frictionless.validate(str(tmp_path / "datapackage.json"))
    assert report.valid, report.flatten(["rowNumber", "fieldName", "type", "note"])
    package = json.loads(files["datapackage.json"])
    assert package["name"] == f"qala-release-{number}"
    assert package["licenses"][0]["name"] == "CC-BY-4.0"
    assert [r["name"] for r in package["resources"]] == ["values", "changelog"]
    rows = list(csv.DictReader(io.StringIO(files["values.csv"].decode())))
    assert [(r["indicator"], float(r["value"]), r["evidence"]) for r in rows] == [
        ("iso37120.11.1", 72.1, "akimat letter 12/2025"),
        ("iso37120.5.1", 4.5, '\'=HYPERLINK("http://evil.example")'),
    ]

    graph = rdflib.Graph().parse(data=files["dcat.jsonld"], format="json-ld")
    dcat = rdflib.Namespace("http://www.w3.org/ns/dcat#")
    dct = rdflib.Namespace("http://purl.org/dc/terms/")
    (dataset,) = graph.subjects(rdflib.RDF.type, dcat.Dataset)
    assert str(graph.value(dataset, dct.identifier)) == f"qala-release-{number}"
    distributions = list(graph.objects(dataset, dcat.distribution))
    assert len(distributions) == 3
    media = {str(graph.value(d, dcat.mediaType)) for d in distributions}
    assert media == {
        "http://www.iana.org/assignments/media-types/text/csv",
        "http://www.iana.org/assignments/media-types/application/json",
    }

    # A later import of other values leaves the release's files byte for byte the same.
    import_frame(
        context.database,
        pd.DataFrame(
            {"place": ["taraz"], "indicator": ["iso37120.5.1"], "year": [2024], "value": [9.9]}
        ),
        file="later.csv",
    )
    with context.database.session() as session:
        assert release_files(session, number) == files


def test_api_and_command_serve_the_release(sqlite_context, tmp_path: Path, monkeypatch) -> None:
    from qala.api.app import create_app

    number = _release(sqlite_context)
    client = TestClient(create_app(sqlite_context.settings, context=sqlite_context))
    listed = client.get("/api/v1/releases").json()
    assert [(r["id"], r["status"], r["year"], r["values"]) for r in listed] == [
        (number, "published", 2024, 2)
    ]
    package = client.get(f"/api/v1/releases/{number}/datapackage.json")
    assert package.status_code == 200
    values = client.get(f"/api/v1/releases/{number}/values.csv")
    assert values.headers["content-type"].startswith("text/csv")
    assert values.content.startswith(b"place,place_name,indicator")
    dcat = client.get(f"/api/v1/releases/{number}/dcat.jsonld").json()
    urls = [d["dcat:downloadURL"]["@id"] for d in dcat["dcat:dataset"]["dcat:distribution"]]
    assert urls[0] == f"http://testserver/api/v1/releases/{number}/values.csv"
    assert client.get("/api/v1/releases/99/values.csv").status_code == 404
    assert client.get(f"/api/v1/releases/{number}/secrets.txt").status_code == 422

    monkeypatch.setenv("QALA_DATABASE_URL", sqlite_context.settings.database_url)
    out = tmp_path / "open"
    result = CliRunner().invoke(cli, ["data", "export-open", str(number), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [
        "changelog.csv",
        "datapackage.json",
        "dcat.jsonld",
        "values.csv",
    ]
    assert frictionless.validate(str(out / "datapackage.json")).valid


def test_demo_release_from_the_official_values_validates(sqlite_context, tmp_path: Path) -> None:
    from qala.components.catalog.calls import load_demo_release
    from qala.components.catalog.official import load_official

    official = load_official(sqlite_context.database)
    number = load_demo_release(sqlite_context.database)
    # The import published the official values the ratings read first, one release per year.
    assert number == max(n for n in official.releases.values() if n is not None) + 1
    assert load_demo_release(sqlite_context.database) == number  # loading again adds nothing
    with sqlite_context.database.session() as session:
        files = release_files(session, number)
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    assert frictionless.validate(str(tmp_path / "datapackage.json")).valid
    rows = {
        (r["place"], r["indicator"]): float(r["value"])
        for r in csv.DictReader(io.StringIO(files["values.csv"].decode()))
    }
    # BNS 2022: Astana's unemployment rate and life expectancy, as the official store holds them.
    assert rows[("astana", "iso37120.5.1")] == 4.6
    assert rows[("astana", "iso37120.11.1")] == 77.3
    assert len(rows) == 6
    # The places reported these values (the same figures as BNS's, but not the import's).
    kinds = {r["kind"] for r in csv.DictReader(io.StringIO(files["values.csv"].decode()))}
    assert kinds == {"reported"}
    load_official(sqlite_context.database)  # a later import leaves the release as it was
    with sqlite_context.database.session() as session:
        assert release_files(session, number) == files
