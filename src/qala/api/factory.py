"""An app factory for uvicorn's multi-worker mode (settings from the environment)."""

from __future__ import annotations

from fastapi import FastAPI

from qala.api.app import create_app
from qala.settings import Settings


def app_from_environment() -> FastAPI:
    # `qala serve` migrated and seeded the store once before starting the workers; doing it in
    # every worker would race on the reference data.
    return create_app(Settings(), migrate=False)
