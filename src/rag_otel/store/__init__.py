"""DuckDB analytics store: schema and migrations, batched writes, rollups, retention, Parquet export."""

from rag_otel.store.store import FILENAME, TABLES, Store, StoreError, StoreLockedError
from rag_otel.store.writer import StoreWriter

__all__ = ["FILENAME", "TABLES", "Store", "StoreError", "StoreLockedError", "StoreWriter"]
