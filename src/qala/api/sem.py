"""HTTP API for PLS-SEM: researchers post a model and a CSV and get the estimates back.

A thin shell over ``qala.engines.plssem`` (the same JSON as ``qala sem fit --json``).
"""

from __future__ import annotations

import base64
import io
from typing import Any, Literal

import pandas as pd
from fastapi import APIRouter, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from pydantic import BaseModel, Field, ValidationError as PydanticValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from qala.components.accounts.deps import DATA_SET_BODY, AnalystUser, CallerFirstRoute, ContextDep
from qala.core.errors import QalaError, ValidationError, unprocessable

MAX_BOOTSTRAP = 10_000


def _fit(
    model: str,
    data: pd.DataFrame,
    *,
    scheme: str,
    consistent: bool,
    bootstrap: int,
    seed: int | None,
    diagram: bool,
) -> dict[str, Any]:
    from qala.engines.plssem import PLSSEM
    from qala.engines.plssem.bootstrap import bootstrap as run_bootstrap

    result = PLSSEM(model, scheme=scheme, consistent=consistent).fit(data)
    payload: dict[str, Any] = result.to_dict()
    boot = None
    if bootstrap:
        boot = run_bootstrap(result, bootstrap, seed=seed, batch_size=max(250, bootstrap // 10))
        boot_dict = boot.to_dict()
        payload["bootstrap"] = boot_dict["paths"]
        payload["bootstrap_info"] = {
            k: boot_dict[k] for k in ("n_boot", "n_failed", "seed", "alpha")
        }
    payload["summary"] = result.summary()
    if diagram:
        from qala.engines.plssem.diagram import path_diagram_png

        payload["diagram_png_base64"] = base64.b64encode(path_diagram_png(result, boot)).decode()
    return payload


router = APIRouter(route_class=CallerFirstRoute, prefix="/api/v1/sem", tags=["pls-sem"])


async def _csv_frame(upload: UploadFile, max_bytes: int) -> pd.DataFrame:
    """The uploaded CSV as a frame: 413 past ``max_bytes``, 422 when it does not parse."""
    raw = await upload.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise HTTPException(413, f"data file larger than {max_bytes} bytes")
    try:
        return pd.read_csv(io.BytesIO(raw))
    except (ValueError, UnicodeDecodeError) as exc:
        raise HTTPException(
            422, unprocessable(f"{upload.filename}: not a readable CSV file ({exc})", "data")
        ) from exc


class FitForm(BaseModel):
    """The form fields of ``/fit`` besides the data file."""

    model: str = Field(description="Model in lavaan-like syntax (=~, <~, ~).", max_length=20_000)
    scheme: Literal["path", "factor", "centroid"] = "path"
    consistent: bool = False
    bootstrap: int = Field(0, ge=0, le=MAX_BOOTSTRAP)
    seed: int | None = Field(None, ge=0, le=2**32 - 1)
    diagram: bool = False


def _fit_body() -> dict[str, Any]:
    schema = FitForm.model_json_schema()
    schema["properties"]["data"] = {
        "type": "string",
        "format": "binary",
        "description": "CSV with one column per indicator.",
    }
    schema["required"] = [*schema.get("required", []), "data"]
    content = {"multipart/form-data": {"schema": schema}}
    return {"requestBody": {"required": True, "content": content}}


async def _fit_form(request: Request) -> tuple[FitForm, UploadFile]:
    """The posted form, read once the caller has been let in: a declared file body would be
    read before FastAPI checks the caller (an anonymous upload read whole before its 401)."""
    form = await request.form(max_files=1, max_fields=20)
    data = form.get("data")
    try:
        fields = FitForm.model_validate(
            {  # an empty field is an unset one, as FastAPI reads forms
                k: v
                for k, v in form.items()
                if k != "data" and isinstance(v, str) and (v or k == "model")
            }
        )
    except PydanticValidationError as exc:
        details = [{**e, "loc": ["body", *e["loc"]]} for e in exc.errors(include_url=False)]
        raise HTTPException(422, jsonable_encoder(details)) from None
    if not isinstance(data, UploadFile):
        raise HTTPException(422, unprocessable("a CSV file is required", "data"))
    return fields, data


@router.post("/fit", max_body_size=DATA_SET_BODY, openapi_extra=_fit_body())
async def fit(request: Request, _user: AnalystUser, context: ContextDep) -> dict[str, Any]:
    """Estimate a PLS-SEM model; with ``bootstrap`` > 0, add bootstrap statistics per path."""
    fields, data = await _fit_form(request)
    frame = await _csv_frame(data, context.settings.max_upload_bytes)
    try:
        return await run_in_threadpool(
            _fit,
            fields.model,
            frame,
            scheme=fields.scheme,
            consistent=fields.consistent,
            bootstrap=fields.bootstrap,
            seed=fields.seed,
            diagram=fields.diagram,
        )
    except QalaError as exc:
        details = exc.details() if isinstance(exc, ValidationError) else unprocessable(str(exc))
        raise HTTPException(422, details) from exc
