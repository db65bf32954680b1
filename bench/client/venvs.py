"""One venv per contender, created with pip and reused while its requirements are unchanged.

Every venv gets the same base (openai SDK, OTel API/SDK, pinned) so the only difference between
contenders is the instrumentation they add. Peer versions are pinned here and recorded in the
results; a peer that fails to install is reported with pip's error, never faked.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
VENVS = REPO / "bench" / ".venvs"

OPENAI = "openai==3.54.0"
OTEL_API = "1.45.1"  # with 0.66b1: the newest pair every contender (and rag-otel's deps) resolves with
OTEL_CONTRIB = "0.66b1"
BASE: tuple[str, ...] = (
    OPENAI,
    f"opentelemetry-api=={OTEL_API}",
    f"opentelemetry-sdk=={OTEL_API}",
    f"opentelemetry-instrumentation=={OTEL_CONTRIB}",
    f"opentelemetry-semantic-conventions=={OTEL_CONTRIB}",
    "pyyaml>=6",
)

# Peers, pinned (latest on the package index when this benchmark was written).
GENAI_OPENAI = "opentelemetry-instrumentation-genai-openai==1.3b0"  # official; formerly ...-openai-v2
OPENLLMETRY = "opentelemetry-instrumentation-openai==0.62.4"
OPENINFERENCE = "openinference-instrumentation-openai==0.1.66"


@dataclass(frozen=True)
class Contender:
    """A contender: its name, a one-line description and what its venv needs beyond ``BASE``."""

    name: str
    title: str
    extra: tuple[str, ...] = ()
    same_venv_as: str | None = None  # the A/A control reuses the baseline's venv

    @property
    def venv(self) -> Path:
        return VENVS / (self.same_venv_as or self.name)

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    def requirements(self) -> list[str]:
        return [*BASE, *self.extra]


CONTENDERS: tuple[Contender, ...] = (
    Contender("none", "no instrumentation (baseline)"),
    Contender("handmade", "same spans + metrics by hand, bare OTel SDK (floor)"),
    # Not editable: an editable install adds a sys.path entry, and openai's embeddings call tries
    # `import numpy` on every call, so one more directory to search would be charged to rag-otel.
    Contender("rag-otel", "rag-otel (OpenAIInstrumentor + span API)", (str(REPO),)),
    Contender("genai-openai", "official OTel GenAI openai", (GENAI_OPENAI,)),
    Contender("openllmetry", "OpenLLMetry openai", (OPENLLMETRY,)),
    Contender("openinference", "OpenInference openai", (OPENINFERENCE,)),
)
# A second, identical baseline process: its "added CPU" is the method's noise floor (A/A test).
AA = Contender("none-aa", "A/A control: a 2nd baseline process (noise floor)", same_venv_as="none")
BY_NAME = {c.name: c for c in (*CONTENDERS, AA)}


def _fingerprint(c: Contender) -> str:
    """What the venv was built from: requirements, plus rag-otel's pyproject.toml and sources
    (installed as a copy, so any change to them rebuilds)."""
    h = hashlib.sha256("\n".join(c.requirements()).encode())
    if str(REPO) in c.extra:
        h.update((REPO / "pyproject.toml").read_bytes())
        for f in sorted((REPO / "src" / "rag_otel").rglob("*")):
            if f.suffix in (".py", ".yaml") and "__pycache__" not in f.parts:
                h.update(f.relative_to(REPO).as_posix().encode() + f.read_bytes())
    return h.hexdigest()


def ensure_venv(c: Contender, log=print) -> str | None:
    """Create or refresh ``c``'s venv; return None when ready, else pip's error (last lines)."""
    marker = c.venv / ".bench-fingerprint"
    want = _fingerprint(c)
    if marker.exists() and marker.read_text() == want and c.python.exists():
        return None
    log(f"[venv] building {c.venv.relative_to(REPO)} ...")
    if not c.python.exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(c.venv)], check=True)
    pip = [str(c.python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    steps = [[*pip, *c.requirements()]]
    if str(REPO) in c.extra:  # same version number, new sources: pip would keep the old copy
        steps.append([*pip, "--no-deps", "--force-reinstall", str(REPO)])
    for cmd in steps:
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            lines = [ln for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip() and "WARNING" not in ln]
            return "\n".join(lines[-6:]) or f"pip exited {proc.returncode}"
    marker.write_text(want)
    return None
