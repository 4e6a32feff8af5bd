"""The web dashboard shell: layout, languages, static assets; components add their pages."""

from qala.web.shell import mount_web

__all__ = ["mount_web"]
