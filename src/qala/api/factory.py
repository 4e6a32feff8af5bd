"""An app factory for uvicorn's multi-worker mode (settings from the environment)."""

from __future__ import annotations

from fastapi import FastAPI

from qala.api.app import create_app
from qala.settings import Settings


def app_from_environment() -> FastAPI:
    return create_app(Settings())
