"""The one SQLAlchemy layer: declarative base, engine factory, sessions and migrations."""

from qala.store.base import Base, utcnow
from qala.store.database import Database, is_postgres_url

__all__ = ["Base", "Database", "is_postgres_url", "utcnow"]
