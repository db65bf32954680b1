"""The analytics store: schema and migrations, batched writes, rollups, retention, Parquet export.

Two backends behind one interface (:class:`Store`): the embedded DuckDB file (default) and the fleet
store (:mod:`rag_otel.store.lake`); :func:`open_store` opens whichever ``processor.store`` names.
Exports are resolved lazily, so the CLI can import :mod:`rag_otel.store.location` for its flags on
an app-side install without DuckDB.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "FILENAME": "rag_otel.store.store", "TABLES": "rag_otel.store.store", "Store": "rag_otel.store.store",
    "StoreError": "rag_otel.store.store", "StoreLockedError": "rag_otel.store.store",
    "StoreWriter": "rag_otel.store.writer", "open_store": "rag_otel.store.location",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'rag_otel.store' has no attribute {name!r}")
