"""DuckDB extensions for the fleet store, loaded from installed Python packages, never downloaded.

The ``fleet`` extra installs ``duckdb-extension-ducklake`` and ``duckdb-extension-postgres-scanner``:
each ships the extension's signed binary built for one DuckDB release, under
``<package>/extensions/v<duckdb version>/<name>.duckdb_extension``.  We ``LOAD`` that file by path
with DuckDB's signature check left on (``allow_unsigned_extensions`` stays false), and switch
auto-install off, so a missing or mismatched package is a clear error at start, not a download.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import duckdb

PACKAGES = {"ducklake": "duckdb_extension_ducklake", "postgres_scanner": "duckdb_extension_postgres_scanner",
            "httpfs": "duckdb_extension_httpfs"}


class ExtensionError(RuntimeError):
    """An extension the fleet store needs is not installed for this DuckDB; the message says what to install."""


def extension_file(name: str) -> Path:
    """The installed binary of extension ``name`` for the running DuckDB version."""
    package = PACKAGES[name]
    spec = importlib.util.find_spec(package)
    hint = f"install rag-otel[fleet] (the {package.replace('_', '-')} package for DuckDB {duckdb.__version__})"
    if spec is None or not spec.submodule_search_locations:
        raise ExtensionError(f"the DuckDB {name} extension is not installed: {hint}")
    root = Path(next(iter(spec.submodule_search_locations))) / "extensions"
    path = root / f"v{duckdb.__version__}" / f"{name}.duckdb_extension"
    if not path.is_file():
        found = sorted(p.name for p in root.glob("v*")) if root.is_dir() else []
        raise ExtensionError(f"the installed {package} has no build for DuckDB {duckdb.__version__} "
                             f"(it has {', '.join(found) or 'none'}): {hint}")
    return path


def load(con: duckdb.DuckDBPyConnection, *names: str) -> None:
    """Load each extension from its package into ``con``; nothing is fetched from the network."""
    con.execute("SET autoinstall_known_extensions = false")
    for name in names:
        path = extension_file(name)
        try:
            con.execute(f"LOAD '{str(path).replace(chr(39), chr(39) * 2)}'")
        except duckdb.Error as e:
            raise ExtensionError(f"DuckDB refused the {name} extension at {path}: {str(e).splitlines()[0]}") from None
