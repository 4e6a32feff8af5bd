"""Participatory budgeting pages (filled in as the budgeting component's services land)."""

from __future__ import annotations

from fastapi import APIRouter

from qala.web.ui import UI


def build_router(ui: UI) -> APIRouter:
    return APIRouter(include_in_schema=False)
