"""Open data of a published release: a Frictionless Data Package and a DCAT-AP description.

``release_files(session, number)`` returns every file of release ``number`` as bytes:

- ``values.csv``: the release's values (place, indicator, year, value, unit, kind — official or
  reported —, evidence, who submitted and who approved), text cells that could start a spreadsheet formula (``=``, ``+``,
  ``-``, ``@``, tab, carriage return) prefixed with an apostrophe;
- ``changelog.csv``: what the release added, changed and removed against the call's previous one;
- ``datapackage.json``: the Data Package (Frictionless v1 profile ``tabular-data-package``) with
  a Table Schema per resource, licence, sources and each file's sha256 and size;
- ``dcat.jsonld``: a DCAT-AP catalogue (JSON-LD) describing the release as a ``dcat:Dataset`` with
  its distributions.

The bytes depend on the release alone (no export time), so exporting twice gives the same files,
and a release never changes (see ``calls``).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from qala.components.catalog.calls import get_release, release_values
from qala.components.catalog.frameworks import load_catalogue
from qala.components.catalog.models import Place

LICENCE = {
    "name": "CC-BY-4.0",
    "path": "https://creativecommons.org/licenses/by/4.0/",
    "title": "Creative Commons Attribution 4.0",
}
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
RESOURCES = ("values.csv", "changelog.csv", "datapackage.json", "dcat.jsonld")

VALUE_FIELDS: list[dict[str, Any]] = [
    {
        "name": "place",
        "type": "string",
        "description": "Qala place code",
        "constraints": {"required": True},
    },
    {"name": "place_name", "type": "string", "description": "place name (English)"},
    {
        "name": "indicator",
        "type": "string",
        "description": "catalogue indicator id",
        "constraints": {"required": True},
    },
    {"name": "indicator_name", "type": "string", "description": "indicator name (English)"},
    {"name": "year", "type": "integer", "constraints": {"required": True}},
    {"name": "value", "type": "number", "constraints": {"required": True}},
    {"name": "unit", "type": "string", "description": "catalogue unit id"},
    {
        "name": "kind",
        "type": "string",
        "description": "official: a statistic as its publisher printed it (or computed from "
        "such figures only), released by the official-statistics import; reported: submitted by "
        "the place",
        "constraints": {"required": True, "enum": ["official", "reported"]},
    },
    {"name": "evidence", "type": "string", "description": "document reference or link"},
    {"name": "submitted_by", "type": "string"},
    {"name": "approved_by", "type": "string"},
]
CHANGE_FIELDS: list[dict[str, Any]] = [
    {
        "name": "change",
        "type": "string",
        "constraints": {"required": True, "enum": ["added", "changed", "removed"]},
    },
    {"name": "place", "type": "string", "constraints": {"required": True}},
    {"name": "indicator", "type": "string", "constraints": {"required": True}},
    {"name": "old_value", "type": "number"},
    {"name": "new_value", "type": "number"},
    {"name": "approved_by", "type": "string"},
]


def safe_cell(value: Any) -> Any:
    """A text cell that a spreadsheet would read as a formula, made inert with an apostrophe."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _csv(fields: list[dict[str, Any]], rows: list[dict[str, Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([f["name"] for f in fields])
    for row in rows:
        writer.writerow(
            [
                ""
                if row.get(f["name"]) is None
                else (safe_cell(row[f["name"]]) if f["type"] == "string" else row[f["name"]])
                for f in fields
            ]
        )
    return out.getvalue().encode("utf-8")


def release_files(session: Session, number: int, *, base_url: str = "") -> dict[str, bytes]:
    """Every open-data file of release ``number``, by name (see the module docstring).

    ``base_url`` (e.g. ``https://qala.example/api/v1/releases/3``) makes the DCAT download URLs
    absolute; without it they are relative to the package."""
    release = get_release(session, number)
    catalogue = load_catalogue()
    names = {code: name for code, name in session.execute(select(Place.code, Place.name_en))}
    values = [
        {
            "place": v["place_code"],
            "place_name": names.get(v["place_code"], ""),
            "indicator": v["indicator_id"],
            "indicator_name": catalogue.indicators[v["indicator_id"]].name("en")
            if v["indicator_id"] in catalogue.indicators
            else "",
            "year": v["year"],
            "value": v["value"],
            "unit": v["unit"],
            "kind": "official" if v["official"] else "reported",
            "evidence": v["evidence"],
            "submitted_by": v["submitted_by"],
            "approved_by": v["approved_by"],
        }
        for v in release_values(session, release.id)
    ]
    log = release.changelog or {}
    changes = (
        [
            {
                "change": "added",
                "place": c["place"],
                "indicator": c["indicator"],
                "new_value": c["value"],
                "approved_by": c.get("approved_by"),
            }
            for c in log.get("added", [])
        ]
        + [
            {
                "change": "changed",
                "place": c["place"],
                "indicator": c["indicator"],
                "old_value": c["old"],
                "new_value": c["new"],
                "approved_by": c.get("approved_by"),
            }
            for c in log.get("changed", [])
        ]
        + [
            {
                "change": "removed",
                "place": c["place"],
                "indicator": c["indicator"],
                "old_value": c["value"],
            }
            for c in log.get("removed", [])
        ]
    )
    files = {
        "values.csv": _csv(VALUE_FIELDS, values),
        "changelog.csv": _csv(CHANGE_FIELDS, changes),
    }
    issued = release.published_at.isoformat()
    package = {
        "profile": "tabular-data-package",
        "name": f"qala-release-{release.number}",
        "title": f"Qala release {release.number}: indicator values of data call {release.call_id} "
        f"({release.year})",
        "description": (
            "Indicator values submitted by akimats in the yearly data call, reviewed and accepted "
            "by the rating team, published as an immutable release."
            + (
                f" Published incomplete: {release.incomplete_reason}"
                if release.incomplete_reason
                else ""
            )
        ),
        "version": str(release.number),
        "created": issued,
        "licenses": [LICENCE],
        "sources": [
            {
                "title": f"Qala data call {release.call_id} ({release.year}): akimats' submissions "
                "with evidence, reviewed by the rating team"
            }
        ],
        "contributors": [{"title": release.published_by, "role": "publisher"}],
        "qala:sha256": release.sha256,
        "resources": [
            _resource(
                "values",
                "values.csv",
                files["values.csv"],
                VALUE_FIELDS,
                ["place", "indicator", "year"],
            ),
            _resource("changelog", "changelog.csv", files["changelog.csv"], CHANGE_FIELDS, None),
        ],
    }
    files["datapackage.json"] = _json(package)
    files["dcat.jsonld"] = _json(_dcat(release, package, files, base_url))
    return files


def _resource(
    name: str, path: str, data: bytes, fields: list[dict[str, Any]], key: list[str] | None
) -> dict[str, Any]:
    schema: dict[str, Any] = {"fields": fields, "missingValues": [""]}
    if key:
        schema["primaryKey"] = key
    return {
        "name": name,
        "path": path,
        "profile": "tabular-data-resource",
        "format": "csv",
        "mediatype": "text/csv",
        "encoding": "utf-8",
        "bytes": len(data),
        "hash": f"sha256:{hashlib.sha256(data).hexdigest()}",
        "schema": schema,
    }


def _json(document: dict[str, Any]) -> bytes:
    return (json.dumps(document, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def _dcat(
    release: Any, package: dict[str, Any], files: dict[str, bytes], base_url: str
) -> dict[str, Any]:
    base = base_url.rstrip("/") + "/" if base_url else ""
    dataset_id = f"{base}datapackage.json#dataset" if base else f"urn:qala:release:{release.number}"

    def distribution(path: str, media: str, title: str) -> dict[str, Any]:
        return {
            "@id": f"{base}{path}" if base else f"urn:qala:release:{release.number}:{path}",
            "@type": "dcat:Distribution",
            "dct:title": title,
            "dcat:accessURL": {"@id": f"{base}{path}" if base else path},
            "dcat:downloadURL": {"@id": f"{base}{path}" if base else path},
            "dcat:mediaType": {"@id": f"http://www.iana.org/assignments/media-types/{media}"},
            "dcat:byteSize": {"@value": str(len(files[path])), "@type": "xsd:nonNegativeInteger"},
            "dct:license": {"@id": LICENCE["path"]},
        }

    return {
        "@context": {
            "dcat": "http://www.w3.org/ns/dcat#",
            "dct": "http://purl.org/dc/terms/",
            "foaf": "http://xmlns.com/foaf/0.1/",
            "xsd": "http://www.w3.org/2001/XMLSchema#",
            "owl": "http://www.w3.org/2002/07/owl#",
        },
        "@id": f"urn:qala:catalog:release:{release.number}",
        "@type": "dcat:Catalog",
        "dct:title": "Qala open data",
        "dcat:dataset": {
            "@id": dataset_id,
            "@type": "dcat:Dataset",
            "dct:identifier": package["name"],
            "dct:title": package["title"],
            "dct:description": package["description"],
            "dct:issued": {"@value": release.published_at.isoformat(), "@type": "xsd:dateTime"},
            "dct:temporal": {"@value": str(release.year), "@type": "xsd:gYear"},
            "owl:versionInfo": str(release.number),
            "dct:publisher": {"@type": "foaf:Agent", "foaf:name": release.published_by},
            "dct:license": {"@id": LICENCE["path"]},
            "dcat:distribution": [
                distribution("values.csv", "text/csv", "Values (CSV)"),
                distribution("changelog.csv", "text/csv", "Changes against the previous release"),
                distribution("datapackage.json", "application/json", "Frictionless Data Package"),
            ],
        },
    }


def export_release(session: Session, number: int, out_dir: Path | str) -> list[Path]:
    """Write release ``number``'s open-data files into ``out_dir``; returns their paths."""
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, data in release_files(session, number).items():
        path = folder / name
        path.write_bytes(data)
        written.append(path)
    return written
