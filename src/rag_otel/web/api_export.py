"""``GET /api/v1/export/{table}``: one store table as Parquet, what ``rag-otel analytics export`` writes."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from rag_otel.analytics.period import to_utc
from rag_otel.store import TABLES
from rag_otel.web import deps

router = APIRouter(prefix="/api/v1/export", tags=["export"])



@router.get("/{table}", response_class=FileResponse, responses={
    200: {"content": {"application/vnd.apache.parquet": {}}, "description": "the table as Parquet"}})
def export(table: Literal[TABLES],  # type: ignore[valid-type]
           from_: str | None = Query(None, alias="from", description="only rows at or after (ISO 8601, UTC)"),
           to: str | None = Query(None, description="only rows before (ISO 8601, UTC)"),
           store: Any = Depends(deps.store)) -> FileResponse:
    """The table (optionally only rows in [from, to)) through the store's own Parquet writer; the
    temporary file is removed once sent."""
    start, end = (to_utc(v) if v else None for v in (from_, to))
    tmp = Path(tempfile.mkdtemp(prefix="rag-otel-export-"))
    try:
        [path] = store.export_parquet(tmp, tables=[table], start=start, end=end)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return FileResponse(path, media_type="application/vnd.apache.parquet", filename=path.name,
                        background=BackgroundTask(shutil.rmtree, tmp, ignore_errors=True))
