"""Mounts server-rendered pages. Each component contributes its own web router."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import HTMLResponse

from qala.registry import COMPONENTS
from qala.runtime import Context


def mount_web(app: FastAPI, context: Context) -> None:
    for component in COMPONENTS:
        if component.web_router is not None:
            app.include_router(component.web_router(context))

    if not any(route.path == "/" for route in app.routes if hasattr(route, "path")):

        @app.get("/", response_class=HTMLResponse, include_in_schema=False)
        def home() -> str:
            return (
                "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Qala</title></head>"
                "<body><h1>Qala</h1><p>Open smart-city platform.</p>"
                "<ul><li><a href='/docs'>API documentation</a></li>"
                "<li><a href='/api/v1/places'>Places</a></li>"
                "<li><a href='/api/v1/frameworks'>Indicator frameworks</a></li></ul></body></html>"
            )
