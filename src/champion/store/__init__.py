"""Persistence: SQLAlchemy Core schema, migrations, artifact files."""

from champion.store.artifacts import ArtifactStore
from champion.store.db import Store, StoreBusy

__all__ = ["ArtifactStore", "Store", "StoreBusy"]
