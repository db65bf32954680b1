"""The fleet store's parts that need no PostgreSQL: the extensions from their packages (signed, never
downloaded), the lake's DDL, the S3 secret, the store URL.  With a real PostgreSQL: test_fleet_store.py."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from rag_otel.config import ConfigError, ModelObservation, ProcessorSettings
from rag_otel.store import extensions
from rag_otel.store.lake import lake_ddl, redact, s3_secret
from rag_otel.store.location import check_url, is_fleet, open_store
from rag_otel.store.schema import MIGRATIONS
from rag_otel.store.store import TABLES


def test_extensions_load_from_their_packages_with_the_signature_check_on() -> None:
    con = duckdb.connect(":memory:")
    extensions.load(con, "postgres_scanner", "ducklake", "httpfs")
    assert con.execute("SELECT current_setting('allow_unsigned_extensions')").fetchone()[0] is False
    assert con.execute("SELECT current_setting('autoinstall_known_extensions')").fetchone()[0] is False
    loaded = dict(con.execute("SELECT extension_name, loaded FROM duckdb_extensions() "
                              "WHERE extension_name IN ('ducklake', 'postgres_scanner', 'httpfs')").fetchall())
    assert loaded == {"ducklake": True, "postgres_scanner": True, "httpfs": True}
    for name in ("ducklake", "postgres_scanner"):
        path = extensions.extension_file(name)
        assert f"v{duckdb.__version__}" in path.parts and "site-packages" in str(path)


def test_a_missing_extension_package_names_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(extensions.PACKAGES, "ducklake", "duckdb_extension_not_installed_here")
    with pytest.raises(extensions.ExtensionError, match=r"install rag-otel\[fleet\]"):
        extensions.extension_file("ducklake")


def test_a_tampered_extension_file_is_refused_by_the_signature_check(tmp_path: Path) -> None:
    """The check is really on: the packaged binary with one byte changed no longer loads."""
    data = bytearray(extensions.extension_file("postgres_scanner").read_bytes())
    data[len(data) // 2] ^= 0xFF
    tampered = tmp_path / "postgres_scanner.duckdb_extension"
    tampered.write_bytes(bytes(data))
    con = duckdb.connect(":memory:")
    with pytest.raises(duckdb.IOException, match="signature is either missing or invalid"):
        con.execute(f"LOAD '{tampered}'")


def test_every_migration_becomes_lake_ddl_without_constraints_or_sequences() -> None:
    class Recorder:
        def __init__(self) -> None:
            self.sql: list[str] = []

        def execute(self, sql: str, params: object = None) -> None:
            self.sql.append(lake_ddl(sql))

    rec = Recorder()
    for m in MIGRATIONS:
        m(rec)  # type: ignore[arg-type]
    text = "\n".join(rec.sql)
    assert "CREATE TABLE report_runs" in text and "CREATE TABLE rollups" in text
    assert "PRIMARY KEY" not in text.upper() and "SEQUENCE" not in text.upper() and "nextval" not in text
    # and the result is DDL DuckDB accepts
    con = duckdb.connect(":memory:")
    for stmt in rec.sql:
        if stmt.strip():
            con.execute(stmt)
    assert con.execute("SELECT count(*) FROM information_schema.tables").fetchone()[0] == len(TABLES)


def test_s3_secret_from_the_aws_environment() -> None:
    con = duckdb.connect(":memory:")
    assert not s3_secret(con, "/mnt/lake/", env={})
    env = {"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "s3cr3t", "AWS_REGION": "eu-west-1",
           "AWS_ENDPOINT_URL": "http://minio:9000"}
    assert s3_secret(con, "s3://bucket/lake/", env=env)
    [(kind, scope)] = con.execute("SELECT type, scope FROM duckdb_secrets() WHERE name = 'rag_otel_s3'").fetchall()
    assert kind == "s3" and scope == ["s3://", "s3n://", "s3a://"]
    shown = con.execute("SELECT secret_string FROM duckdb_secrets() WHERE name = 'rag_otel_s3'").fetchone()[0]
    assert "endpoint=minio:9000" in shown and "use_ssl=false" in shown and "region=eu-west-1" in shown
    assert "s3cr3t" not in shown  # DuckDB redacts it


def test_store_urls() -> None:
    assert check_url("duckdb:///var/lib/x.duckdb") and is_fleet("ducklake:postgres:dbname=x host=y")
    assert not is_fleet(None) and not is_fleet("duckdb:///x")
    with pytest.raises(ConfigError, match="expected duckdb:///"):
        check_url("postgres://db/lake")
    with pytest.raises(ValueError, match="expected duckdb:///"):
        ProcessorSettings(store="sqlite:///x.db")
    assert redact("ducklake:postgres:dbname=x password=hunter2 host=y") == (
        "ducklake:postgres:dbname=x password=*** host=y")


def test_duckdb_url_opens_the_embedded_file(tmp_path: Path) -> None:
    cfg = ModelObservation()
    target = tmp_path / "elsewhere" / "mine.duckdb"
    with open_store(cfg, url=f"duckdb://{target}") as store:
        assert store.kind == "duckdb" and not store.shared and Path(store.path) == target
    cfg.processor.data_dir = str(tmp_path / "data")
    with open_store(cfg) as store:  # no store configured: the file in data_dir, as before
        assert Path(store.path) == tmp_path / "data" / "rag-otel.duckdb"
