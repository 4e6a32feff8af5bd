"""The HTTP application: ``create_app(settings)`` mounts every component's API and pages."""

from qala.api.app import create_app

__all__ = ["create_app"]
