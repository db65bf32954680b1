"""The README's quick start, followed in a clean checkout: `make demo` (stopped with Ctrl-C), then `make test`.

A temporary `git clone` of this repository's HEAD gets the commands exactly as the README's quick
start block lists them.  Two things are prepared beforehand, and why:

* Its `.venv` is made (`python -m venv .venv`, what the Makefile runs) with one `.pth` line that
  puts the main checkout's venv site-packages on its path.  Installing torch, DuckDB, grpcio and
  the rest afresh would take many minutes and gigabytes; this way the Makefile's own install step
  still really runs (`pip install --upgrade pip`, `pip install -e '.[dev]'`), finds every
  dependency satisfied, and installs *the clone* as the editable `rag_otel` (asserted below),
  while the main venv is left untouched (asserted too).  pip needs the package index only for
  the build backend (setuptools, wheel), as on any fresh machine.
* The `ruff` binary is linked in: pip sees ruff already satisfied, so it writes no script for it,
  and `make test` calls `.venv/bin/ruff`.

`make demo` runs by default until Ctrl-C, so the test presses it (SIGINT to make's process group,
as a terminal does) once the dashboard is up and queries flow.  `make test` runs the real recipe
(ruff over the clone, then pytest) with `PYTEST_ARGS` narrowed to two unit files: the whole suite
takes many minutes and includes this very test.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
MAIN_SITE = Path(sysconfig.get_paths()["purelib"])
PYTEST_SUBSET = "tests/unit/test_config.py tests/unit/test_pricing.py -q"


def quick_start_commands(readme: str) -> list[str]:
    """The shell block right under '## Quick start', comments stripped."""
    section = readme.split("## Quick start", 1)[1]
    block = re.search(r"```(?:sh|bash|shell)?\n(.*?)```", section, re.S)
    assert block, "the README's quick start has no shell block"
    return [line.split("#", 1)[0].strip() for line in block.group(1).splitlines() if line.split("#", 1)[0].strip()]


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = tmp_path_factory.mktemp("quickstart") / "rag-otel"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(where)], check=True, timeout=60)
    subprocess.run([sys._base_executable, "-m", "venv", str(where / ".venv")], check=True, timeout=120)
    site = Path(sysconfig.get_paths(vars={"base": str(where / ".venv"), "platbase": str(where / ".venv")})["purelib"])
    (site / "zz-reuse-main-venv.pth").write_text(f"{MAIN_SITE}\n")
    (where / ".venv" / "bin" / "ruff").symlink_to(Path(sys.executable).parent / "ruff")
    return where


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "VIRTUAL_ENV", "PYTHONPATH", "RAG_OTEL_CONFIG")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def _run_demo_until_ctrl_c(cmd: list[str], cwd: Path) -> tuple[str, dict]:
    log = cwd / "demo.log"
    seen: dict = {}
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=_env(),
                                start_new_session=True)
        try:
            deadline = time.monotonic() + 300  # first use: the install step, then MiniLM loads
            url = None
            while time.monotonic() < deadline and proc.poll() is None:
                text = log.read_text(errors="replace")
                m = re.search(r"Dashboard\W+(http://127\.0\.0\.1:\d+)/", text)
                if m:
                    url = m.group(1)
                    try:
                        snap = httpx.get(f"{url}/api/v1/snapshot", timeout=3).json()
                        if snap["performance"]["queries"] >= 5:
                            seen["snapshot"] = snap
                            seen["dashboard"] = httpx.get(f"{url}/", timeout=3).status_code
                            break
                    except (httpx.HTTPError, ValueError, KeyError):
                        pass
                time.sleep(1.0)
            assert seen, f"the demo never served queries:\n{log.read_text(errors='replace')[-3000:]}"
            os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C in the terminal: the whole foreground group
            seen["rc"] = proc.wait(90)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
    return log.read_text(errors="replace"), seen


def test_readme_quick_start_works_in_a_clean_checkout(checkout: Path) -> None:
    editable_before = sorted(p.read_text() for p in MAIN_SITE.glob("__editable__.rag_otel*.pth"))
    commands = quick_start_commands((checkout / "README.md").read_text())
    assert commands == ["make demo", "make test"], commands

    output, seen = _run_demo_until_ctrl_c(shlex.split(commands[0]), checkout)
    assert seen["dashboard"] == 200
    assert "demo finished." in output, output[-3000:]
    reports = list((checkout / "rag-otel-demo-data" / "reports").glob("daily-*.html"))
    assert reports and f"daily report: {reports[0]}" in output.replace("\n", "")
    # make itself reports the interrupt (as in a terminal); the demo under it ended cleanly above
    assert seen["rc"] in (0, 2, -signal.SIGINT, 130)

    where = subprocess.run([str(checkout / ".venv/bin/python"), "-c", "import rag_otel; print(rag_otel.__file__)"],
                           capture_output=True, text=True, check=True, env=_env()).stdout.strip()
    assert where.startswith(str(checkout / "src")), where  # the clone's code ran, not the main checkout's

    test = subprocess.run([*shlex.split(commands[1]), f"PYTEST_ARGS={PYTEST_SUBSET}"], cwd=checkout, env=_env(),
                          capture_output=True, text=True, timeout=240)
    assert test.returncode == 0, test.stdout[-3000:] + test.stderr[-3000:]
    assert re.search(r"\d+ passed", test.stdout), test.stdout[-2000:]
    assert "All checks passed!" in test.stdout  # ruff ran over the clone

    assert sorted(p.read_text() for p in MAIN_SITE.glob("__editable__.rag_otel*.pth")) == editable_before
