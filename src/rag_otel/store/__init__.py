"""DuckDB analytics store: schema and migrations, batched writes, rollups, retention, Parquet export."""

from rag_otel.store.store import FILENAME, Store, StoreError, StoreLockedError
from rag_otel.store.writer import StoreWriter

__all__ = ["FILENAME", "Store", "StoreError", "StoreLockedError", "StoreWriter"]
