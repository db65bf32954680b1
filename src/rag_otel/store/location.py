"""Which store a process uses: ``processor.store`` / ``--store`` as a URL, opened by its backend.

- ``duckdb:///abs/path/file.duckdb`` or ``duckdb://relative/dir`` (or empty: the default): the
  embedded DuckDB file, in ``processor.data_dir`` unless the URL names one.  One process writes it.
- ``ducklake:postgres:dbname=... host=... port=... user=...``: the fleet store, a DuckLake whose
  catalog is that PostgreSQL database (libpq keywords; the password from ``PGPASSWORD`` or
  ``~/.pgpass``, never in the URL) and whose Parquet files live in ``processor.store_data_path``
  (a directory on a shared volume, or ``s3://bucket/prefix/``).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from rag_otel.config import ConfigError, ModelObservation

if TYPE_CHECKING:  # the CLI imports this module for its flags even where DuckDB is not installed
    from rag_otel.store.store import Store

SCHEMES = ("duckdb://", "ducklake:postgres:")


def check_url(url: str | None) -> str | None:
    """``url`` unchanged when it names a backend we have, else a :class:`ConfigError` saying which do."""
    if url and not url.startswith(SCHEMES):
        raise ConfigError(f"store {url!r}: expected duckdb:///path/to/file.duckdb or "
                          "ducklake:postgres:dbname=... host=... port=... user=...")
    return url


def is_fleet(url: str | None) -> bool:
    return bool(url) and str(url).startswith("ducklake:")


def open_store(config: ModelObservation, *, read_only: bool = False, url: str | None = None,
               data_path: str | None = None, data_dir: str | None = None) -> Store:
    """The store the config (or the explicit ``url``/``data_path``/``data_dir``) names, opened."""
    from rag_otel.store.store import Store

    p = config.processor
    url = check_url(url or p.store)
    if is_fleet(url):
        from rag_otel.store.lake import LakeStore

        return LakeStore.open_lake(str(url), data_path=data_path or p.store_data_path, read_only=read_only,
                                   config=config)
    location: str | Path = data_dir or p.data_dir
    if url:
        location = url.removeprefix("duckdb://") or location
    return Store.open(location, read_only=read_only, config=config)


def add_store_flags(parser: argparse.ArgumentParser) -> None:
    """``--store`` and ``--store-data-path``, the same on serve, analytics and report."""
    parser.add_argument("--store", metavar="URL", default=None,
                        help="the analytics store: duckdb:///path/file.duckdb (default: the file in the data dir) "
                             "or ducklake:postgres:dbname=... host=... port=... user=... (the fleet store)")
    parser.add_argument("--store-data-path", metavar="PATH", default=None,
                        help="fleet store: the lake's data files (shared directory or s3://bucket/prefix/)")


def apply_store_flags(config: ModelObservation, args: argparse.Namespace) -> ModelObservation:
    """The flags win over ``processor.store``/``processor.store_data_path`` (a bad URL: ConfigError)."""
    if getattr(args, "store", None):
        config.processor.store = check_url(args.store)
    if getattr(args, "store_data_path", None):
        config.processor.store_data_path = args.store_data_path
    return config
