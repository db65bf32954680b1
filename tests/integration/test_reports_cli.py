"""``rag-otel report`` as a user runs it: a subprocess over a data directory's store writes the files."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from rag_otel.cli import main
from rag_otel.store import Store
from tests.support.store_data import Dataset, fill, generate, text_config


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Dataset]:
    ds = generate(seed=13, days=3, per_day=60, end=datetime(2026, 11, 20, tzinfo=timezone.utc))
    d = tmp_path_factory.mktemp("data")
    with Store.open(d, config=text_config()) as store:
        fill(store, ds)
    return d, ds


def rag_otel(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rag_otel.cli", *args], capture_output=True, text=True, timeout=120,
                          **kw)


def test_daily_report_files_from_the_command_line(data, tmp_path: Path):
    d, ds = data
    out = tmp_path / "out"
    p = rag_otel("report", "daily", "--date", "2026-11-18", "--data-dir", str(d), "--format", "json,html",
                 "--format", "png", "--out", str(out))
    assert p.returncode == 0, p.stderr
    names = sorted(Path(x).name for x in p.stdout.split())
    assert names == sorted(["daily-2026-11-18.json", "daily-2026-11-18.html",
                            *(f"daily-2026-11-18-{c}.png" for c in ("performance", "quality", "usage", "cost"))])
    assert all((out / n).stat().st_size > 0 for n in names)
    lo = datetime(2026, 11, 18, tzinfo=timezone.utc).timestamp()
    body = json.loads((out / "daily-2026-11-18.json").read_text())
    assert body["summary"]["queries"] == sum(lo <= r.start_time < lo + 86400 for r in ds.records) > 0


def test_weekly_markdown_to_a_file_with_charts_beside(data, tmp_path: Path):
    d, _ = data
    target = tmp_path / "week.md"
    p = rag_otel("report", "weekly", "--week-start", "2026-11-16", "--data-dir", str(d), "--format", "markdown",
                 "--out", str(target))
    assert p.returncode == 0, p.stderr
    md = target.read_text()
    assert md.startswith("# RAG weekly report: 2026-11-16 to 2026-11-22 (UTC)")
    assert "](weekly-2026-11-16-usage.png)" in md and (tmp_path / "weekly-2026-11-16-usage.png").exists()


def test_progress_bar_on_a_terminal(data, tmp_path: Path):
    d, _ = data
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen([sys.executable, "-m", "rag_otel.cli", "report", "daily", "--date", "2026-11-18",
                                 "--data-dir", str(d), "--format", "json", "--out", str(tmp_path)],
                                stdout=subprocess.PIPE, stderr=slave, env={**os.environ, "COLUMNS": "100"})
        os.close(slave)
        seen = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
        assert proc.wait(60) == 0
    finally:
        os.close(master)
    assert b"daily report" in seen and b"\xe2\x94\x81" in seen  # the bar's description and its line glyph


@pytest.mark.parametrize(("args", "rc", "message"), [
    (["report", "daily", "--date", "18/11/2026"], 2, "is not a date like 2026-11-19"),
    (["report", "daily", "--date", "2026-11-18", "--format", "pdf"], 2, "unknown report format 'pdf'"),
    (["report", "weekly", "--week-start", "2026-11-16", "--data-dir", "{empty}"], 1, "no rag-otel store in"),
])
def test_bad_input_is_a_clear_error(data, tmp_path: Path, capsys: pytest.CaptureFixture, args: list[str], rc: int,
                                    message: str):
    """In process (the same ``main`` the script runs): each case costs no interpreter start."""
    d, _ = data
    args = [a.replace("{empty}", str(tmp_path / "nothing")) for a in args]
    if "--data-dir" not in args:
        args += ["--data-dir", str(d)]
    assert main([*args, "--out", str(tmp_path / "o")]) == rc
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
