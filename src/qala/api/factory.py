"""App factories for serving: uvicorn's multi-worker mode (settings from the environment) and
the heap preparation every serving process does once the app is built."""

from __future__ import annotations

import gc

from fastapi import FastAPI

from qala.api.app import create_app
from qala.settings import Settings


def freeze_startup_objects() -> None:
    """Move what start-up built (routes, schemas, catalogues, translations: about 250,000
    objects) out of the garbage collector's reach. Otherwise every full collection walks all of
    it — 60 ms measured — and stalls each request in flight, which set the p99 latency under
    load (bench/requests311_load.py). Not for tests, which build many apps in one process."""
    gc.collect()
    gc.freeze()


def app_from_environment() -> FastAPI:
    # `qala serve` migrated and seeded the store once before starting the workers; doing it in
    # every worker would race on the reference data.
    app = create_app(Settings(), migrate=False)
    freeze_startup_objects()
    return app
