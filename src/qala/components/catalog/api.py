"""HTTP API of the foundation: places, catalogue, indicator values, data check and import."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request, Response
from pydantic import BaseModel, Field
from starlette.datastructures import UploadFile

from qala.components.accounts.deps import (
    DATA_FILE_BODY,
    AnalystUser,
    CallerFirstRoute,
    ContextDep,
    DatabaseDep,
    RowId,
    Year,
)
from qala.components.accounts.scope import StaffScope
from qala.components.catalog.frameworks import Catalogue, Node, load_catalogue
from qala.components.catalog.models import Place
from qala.components.catalog.services import (
    check_file,
    get_place,
    import_file,
    list_places,
    single_industry_codes,
    values_frame,
)
from qala.core.bounds import Code, Name
from qala.core.errors import NotFoundError, ValidationError, unprocessable


class PlaceOut(BaseModel):
    code: str
    parent: str | None
    level: str
    kind: str
    significance: str | None
    name: dict[str, str]
    lat: float | None
    lon: float | None
    single_industry: bool
    population: dict[int, int]


class IndicatorOut(BaseModel):
    id: str
    ref: str | None
    framework: str
    area: str
    name: dict[str, str]
    definition: dict[str, str]
    unit: str
    polarity: str
    category: str


def _indicator_out(catalogue: Catalogue, indicator_id: str) -> IndicatorOut:
    ind = catalogue.indicator(indicator_id)
    return IndicatorOut(
        id=ind.id,
        ref=ind.ref,
        framework=ind.framework,
        area=ind.area,
        name=ind.names,
        definition=ind.definition,
        unit=ind.unit,
        polarity=ind.polarity,
        category=ind.category,
    )


def _tree(node: Node, catalogue: Catalogue) -> dict[str, Any]:
    if node.indicator is not None:
        ind = catalogue.indicators[node.indicator]
        return {
            "indicator": ind.id,
            "name": ind.names,
            "weight": node.weight,
            "category": ind.category,
        }
    return {
        "code": node.code,
        "name": node.names,
        "weight": node.weight,
        "children": [_tree(child, catalogue) for child in node.children],
    }


router = APIRouter(route_class=CallerFirstRoute, prefix="/api/v1", tags=["catalogue"])
ReleaseResource = Literal["datapackage.json", "values.csv", "changelog.csv", "dcat.jsonld"]


def _place_out(place: Place, parents: dict[int, str], monotowns: set[str]) -> PlaceOut:
    return PlaceOut(
        code=place.code,
        parent=parents.get(place.parent_id) if place.parent_id else None,
        level=place.level,
        kind=place.kind,
        significance=place.significance,
        name={"kk": place.name_kk, "ru": place.name_ru, "en": place.name_en},
        lat=place.lat,
        lon=place.lon,
        single_industry=place.code in monotowns,
        population={r.year: r.population for r in place.populations},
    )


@router.get("/places", response_model=list[PlaceOut])
def places(context: ContextDep, level: Code | None = None, year: Year = None) -> list[PlaceOut]:
    with context.database.session() as session:
        monotowns = single_industry_codes(session, year or context.clock().year)
        parents = {p.id: p.code for p in list_places(session)}
        return [_place_out(p, parents, monotowns) for p in list_places(session, level=level)]


@router.get("/frameworks")
def frameworks() -> list[dict[str, Any]]:
    catalogue = load_catalogue()
    return [
        {
            "id": f.id,
            "version": f.version,
            "name": f.names,
            "purpose": f.purpose,
            "citation": f.citation,
            "indicators": len(f.indicator_ids()),
        }
        for f in catalogue.frameworks.values()
    ]


@router.get("/frameworks/{framework_id}")
def framework(framework_id: Code) -> dict[str, Any]:
    catalogue = load_catalogue()
    try:
        f = catalogue.framework(framework_id)
    except NotFoundError as exc:
        raise HTTPException(404, str(exc)) from exc
    return {"id": f.id, "version": f.version, "name": f.names, "tree": _tree(f.root, catalogue)}


@router.get("/indicators", response_model=list[IndicatorOut])
def indicators(
    framework: Code | None = None, category: Code | None = None, q: Name | None = None
) -> list[IndicatorOut]:
    catalogue = load_catalogue()
    found = catalogue.search(q) if q else list(catalogue.indicators.values())
    return [
        _indicator_out(catalogue, i.id)
        for i in found
        if (framework is None or i.framework == framework)
        and (category is None or i.category == category)
    ]


@router.get("/indicators/{indicator_id}", response_model=IndicatorOut)
def indicator(indicator_id: Code) -> IndicatorOut:
    try:
        return _indicator_out(load_catalogue(), indicator_id)
    except NotFoundError as exc:
        raise HTTPException(404, str(exc)) from exc


@router.get("/values")
def values(
    database: DatabaseDep,
    place: Annotated[list[Code] | None, Query(max_length=500)] = None,
    indicator: Annotated[list[Code] | None, Query(max_length=500)] = None,
    year: Annotated[list[Annotated[int, Field(ge=1900, le=2100)]] | None, Query()] = None,
    framework: Code | None = None,
) -> list[dict[str, Any]]:
    with database.session() as session:
        for code in place or ():
            try:
                get_place(session, code)
            except NotFoundError as exc:
                raise HTTPException(404, str(exc)) from exc
        frame = values_frame(
            session, places=place, indicators=indicator, years=year, framework=framework
        )
    records: list[dict[str, Any]] = frame.to_dict(orient="records")
    return records


async def saved_upload(upload: UploadFile, max_bytes: int) -> Path:
    """The upload in a temporary file (the caller deletes it); 413 past ``max_bytes``."""
    suffix = Path(upload.filename or "upload.csv").suffix
    data = await upload.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise HTTPException(413, f"file larger than {max_bytes} bytes")
    with tempfile.NamedTemporaryFile(delete=False, suffix=suffix) as handle:
        handle.write(data)
    return Path(handle.name)


# The file is read inside the route, not declared as a parameter: FastAPI reads a declared body
# before it resolves the dependencies, so an anonymous 64 MiB upload was read whole before its 401.
UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"}},
                }
            }
        },
    }
}


async def uploaded_file(request: Request) -> UploadFile:
    """The ``file`` field of a multipart body, read once the caller has been let in."""
    form = await request.form(max_files=1, max_fields=10)
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise HTTPException(
            422, [{"loc": ["body", "file"], "msg": "Field required", "type": "missing"}]
        )
    return upload


@router.post("/data/check", max_body_size=DATA_FILE_BODY, openapi_extra=UPLOAD_BODY)
async def data_check(request: Request, _user: AnalystUser, context: ContextDep) -> dict[str, Any]:
    file = await uploaded_file(request)
    path = await saved_upload(file, context.settings.max_upload_bytes)
    try:
        result = check_file(context.database, path, name=file.filename)
    except ValidationError as exc:
        raise HTTPException(422, exc.details()) from exc
    finally:
        path.unlink(missing_ok=True)
    return {
        "file": file.filename,
        "rows": result.rows_total,
        "accepted": len(result.values),
        "problems": [dict(p.as_dict(), file=file.filename) for p in result.problems],
        "warnings": [dict(p.as_dict(), file=file.filename) for p in result.warnings],
    }


@router.post("/data/import", max_body_size=DATA_FILE_BODY, openapi_extra=UPLOAD_BODY)
async def data_import(
    request: Request, user: AnalystUser, context: ContextDep, partial: bool = False
) -> dict[str, Any]:
    file = await uploaded_file(request)
    path = await saved_upload(file, context.settings.max_upload_bytes)
    try:
        report = import_file(
            context.database,
            path,
            partial=partial,
            imported_by=user.username,
            name=file.filename,
            place_scope=StaffScope.of(user).place,
        )
    except ValidationError as exc:
        raise HTTPException(422, exc.details()) from exc
    finally:
        path.unlink(missing_ok=True)
    body = report.as_dict()
    body["file"] = file.filename
    if not report.written:
        located = [dict(p.as_detail(), file=file.filename) for p in report.check.problems]
        raise HTTPException(422, located or unprocessable("nothing was written", "file"))
    return body


@router.get("/releases")
def releases(database: DatabaseDep) -> list[dict[str, Any]]:
    """Published releases of the yearly data call: id (release number), status, year, counts."""
    from qala.components.catalog.calls import list_releases

    with database.session() as session:
        return list_releases(session)


@router.get("/releases/{release_id}/{resource}")
def release_resource(
    release_id: RowId, resource: ReleaseResource, request: Request, database: DatabaseDep
) -> Response:
    """A file of a release's open data: datapackage.json, values.csv, changelog.csv, dcat.jsonld."""
    from qala.components.catalog.opendata import release_files

    base = str(request.url_for("release_resource", release_id=release_id, resource="x"))[:-2]
    with database.session() as session:
        try:
            files = release_files(session, release_id, base_url=base)
        except NotFoundError as exc:
            raise HTTPException(404, str(exc)) from exc
    media = {".csv": "text/csv; charset=utf-8", ".jsonld": "application/ld+json"}
    return Response(
        files[resource], media_type=media.get(Path(resource).suffix, "application/json")
    )
