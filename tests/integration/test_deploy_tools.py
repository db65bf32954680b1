"""The committed Prometheus and Alertmanager configs pass the real tools' own checks
(Debian packages prometheus and prometheus-alertmanager; .ci/run installs them)."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from rag_otel.config import load_config

ROOT = Path(__file__).parents[2]
PROMETHEUS_YML = ROOT / "deploy" / "prometheus" / "prometheus.yml"
RULES = ROOT / "deploy" / "prometheus" / "rules" / "rag-otel-rules.yml"
ALERTMANAGER_YML = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"


def run(tool: str, *args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which(tool)
    if exe is None:
        pytest.fail(f"{tool} is not installed (apt-get install prometheus prometheus-alertmanager)")
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=60)


def test_promtool_accepts_the_prometheus_config_and_its_rule_file() -> None:
    r = run("promtool", "check", "config", str(PROMETHEUS_YML))
    assert r.returncode == 0, r.stdout + r.stderr
    # the config's rule_files entry resolves to the committed rule file, and promtool checked it too
    assert "SUCCESS: 1 rule files found" in r.stdout and str(RULES.relative_to(PROMETHEUS_YML.parent)) in r.stdout


def test_promtool_accepts_the_generated_rules() -> None:
    r = run("promtool", "check", "rules", str(RULES))
    assert r.returncode == 0, r.stdout + r.stderr
    rules = load_config(ROOT / "processors" / "rag-otel.yaml", env={}).performance_monitoring.alert_rules
    assert f"SUCCESS: {sum(r.enabled for r in rules)} rules found" in r.stdout


def test_amtool_accepts_the_alertmanager_config() -> None:
    r = run("amtool", "check-config", str(ALERTMANAGER_YML))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS" in r.stdout and "2 receivers" in r.stdout and "1 inhibit rules" in r.stdout


def test_amtool_routes_each_severity_to_its_receiver() -> None:
    """amtool's own router walks the committed routing tree (critical pages on-call)."""
    for labels, receiver in ((["severity=critical", "alertname=high_error_rate"], "oncall-webhook"),
                             (["severity=warning", "alertname=high_latency"], "team-webhook"),
                             (["severity=info", "alertname=cost_doubled"], "team-webhook")):
        r = run("amtool", "config", "routes", "test", f"--config.file={ALERTMANAGER_YML}", *labels)
        assert r.returncode == 0, r.stdout + r.stderr
        assert r.stdout.strip() == receiver, (labels, r.stdout)


def test_the_files_the_dockerfile_copies_build_the_processor_package(tmp_path: Path) -> None:
    """What `docker build` would install, built here from exactly the Dockerfile's COPY sources
    (the image itself cannot be built without Docker)."""
    build = tmp_path / "build"
    build.mkdir()
    lines = (ROOT / "processors" / "Dockerfile").read_text().splitlines()
    install = next(i for i, ln in enumerate(lines) if ln.startswith("RUN pip install"))
    for ln in lines[:install]:
        if ln.startswith("COPY "):
            *sources, dest = shlex.split(ln)[1:]
            for src in sources:
                target = build / (Path(src).name if dest.endswith("/") or dest == "./" else dest)
                if (ROOT / src).is_dir():
                    shutil.copytree(ROOT / src, target, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
                else:
                    shutil.copy(ROOT / src, target)
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                        "-w", str(tmp_path / "dist"), str(build)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    [wheel] = (tmp_path / "dist").glob("rag_otel-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        meta = next(z.read(n).decode() for n in names if n.endswith("METADATA"))
        entry_points = next(z.read(n).decode() for n in names if n.endswith("entry_points.txt"))
    assert {"rag_otel/cli.py", "rag_otel/processor/serve_cmd.py", "rag_otel/pricing.yaml"} <= names
    for extra in ("processor", "fleet", "demo"):  # the processor image (fleet) and the compose demo-app image
        assert f"Provides-Extra: {extra}" in meta and f'extra == "{extra}"' in meta
    assert re.search(r'^Requires-Dist: duckdb-extension-ducklake\S*; extra == "fleet"$', meta, re.M), meta
    assert re.search(r'^Requires-Dist: faiss-cpu\S*; extra == "demo"$', meta, re.M), meta
    assert "rag-otel = rag_otel.cli:main" in entry_points
