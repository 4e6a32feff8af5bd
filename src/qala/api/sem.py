"""HTTP API for PLS-SEM: researchers post a model and a CSV and get the estimates back.

A thin shell over ``qala.engines.plssem`` (the same JSON as ``qala sem fit --json``).
"""

from __future__ import annotations

import base64
import io
from typing import Annotated, Any, Literal

import pandas as pd
from fastapi import APIRouter, File, Form, HTTPException, UploadFile
from starlette.concurrency import run_in_threadpool

from qala.components.accounts.deps import DATA_SET_BODY, AnalystUser, ContextDep
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


router = APIRouter(prefix="/api/v1/sem", tags=["pls-sem"])


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


@router.post("/fit", max_body_size=DATA_SET_BODY)
async def fit(
    _user: AnalystUser,
    context: ContextDep,
    model: Annotated[
        str, Form(description="Model in lavaan-like syntax (=~, <~, ~).", max_length=20_000)
    ],
    data: Annotated[UploadFile, File(description="CSV with one column per indicator.")],
    scheme: Annotated[Literal["path", "factor", "centroid"], Form()] = "path",
    consistent: Annotated[bool, Form()] = False,
    bootstrap: Annotated[int, Form(ge=0, le=MAX_BOOTSTRAP)] = 0,
    seed: Annotated[int | None, Form(ge=0, le=2**32 - 1)] = None,
    diagram: Annotated[bool, Form()] = False,
) -> dict[str, Any]:
    """Estimate a PLS-SEM model; with ``bootstrap`` > 0, add bootstrap statistics per path."""
    frame = await _csv_frame(data, context.settings.max_upload_bytes)
    try:
        return await run_in_threadpool(
            _fit,
            model,
            frame,
            scheme=scheme,
            consistent=consistent,
            bootstrap=bootstrap,
            seed=seed,
            diagram=diagram,
        )
    except QalaError as exc:
        details = exc.details() if isinstance(exc, ValidationError) else unprocessable(str(exc))
        raise HTTPException(422, details) from exc
