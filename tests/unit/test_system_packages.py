"""`make test` on a fresh machine: tests/system/ensure-packages.sh finds what is missing and either
installs it (root, apt-get; proven by CI on a fresh machine) or stops before any test with the
command to run. Here the script runs with a PATH that lacks the servers, as an unprivileged user."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "system" / "ensure-packages.sh"
BASICS = ("bash", "id", "env")


def _path_with(tmp_path: Path, *extra: tuple[str, str]) -> str:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in BASICS:
        (bin_dir / name).symlink_to(shutil.which(name))
    for name, target in extra:
        (bin_dir / name).symlink_to(target)
    return str(bin_dir)


def _run(path: str, as_nobody: bool = False, script: Path = SCRIPT) -> subprocess.CompletedProcess[str]:
    cmd = ["bash", str(script)]
    if as_nobody:
        cmd = [shutil.which("runuser") or "runuser", "-u", "nobody", "--", *cmd]
    return subprocess.run(
        cmd, env={"PATH": path}, capture_output=True, text=True, timeout=60, cwd="/"
    )


def test_nothing_missing_means_silent_success(tmp_path: Path) -> None:
    true = shutil.which("true")
    path = _path_with(
        tmp_path, *[(n, true) for n in ("prometheus", "promtool", "alertmanager", "openssl", "chromium")]
    )
    done = _run(path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "" and done.stderr == ""


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("runuser"), reason="needs root to become nobody")
def test_unprivileged_user_is_told_the_one_command() -> None:
    with tempfile.TemporaryDirectory() as tmp:  # pytest's tmp_path is private to root
        os.chmod(tmp, 0o755)
        path = _path_with(Path(tmp), ("apt-get", shutil.which("true")), ("openssl", shutil.which("true")))
        script = Path(tmp) / "ensure-packages.sh"
        shutil.copy(SCRIPT, script)
        script.chmod(0o755)
        done = _run(path, as_nobody=True, script=script)
    assert done.returncode == 1
    assert "apt-get install -y --no-install-recommends prometheus prometheus-alertmanager chromium" in done.stderr
    assert "openssl" not in done.stderr.split("packages:")[1].split(".")[0]


def test_no_apt_get_names_the_packages(tmp_path: Path) -> None:
    done = _run(_path_with(tmp_path))
    assert done.returncode == 1
    assert "prometheus prometheus-alertmanager openssl chromium" in done.stderr
    assert "no apt-get" in done.stderr
