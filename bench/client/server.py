"""The fake OpenAI server (tests/support/fake_openai.py) in its OWN process, so its CPU is never
counted as client CPU. Run by the orchestrator; prints its base URL, serves until stdin closes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CHUNKS = 25  # content chunks per streamed answer (the workload "stream")
EMBEDDING_DIMS = 1536  # text-embedding-3-small's size: the client parses a realistic vector


class ServerProcess:
    """Context manager: start the server process, expose ``base_url``, stop it by its own pid."""

    def __enter__(self) -> ServerProcess:
        env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{REPO / 'bench'}"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "client.server"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            text=True, env=env, cwd=REPO,
        )
        line = self.proc.stdout.readline().strip() if self.proc.stdout else ""
        if not line.startswith("http://"):
            self.proc.kill()
            raise RuntimeError(f"fake OpenAI server failed to start: {line!r}")
        self.base_url = line
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def main() -> None:
    from tests.support.fake_openai import FakeOpenAI

    with FakeOpenAI(chunks=CHUNKS, embedding_dims=EMBEDDING_DIMS) as fake:
        fake.requests = _Discard()  # thousands of requests: keep no log of them
        print(fake.base_url, flush=True)
        sys.stdin.read()  # until the orchestrator closes our stdin


class _Discard(list):
    """A request log that keeps nothing (the fake's log would otherwise grow for the whole run)."""

    def append(self, item: object) -> None:
        pass


if __name__ == "__main__":
    main()
