"""A real ``rag-otel serve`` subprocess for tests: started on the ports its config and flags name, its
listen addresses read from its own log line, stopped with SIGTERM like an operator would."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path


class ServeProcess:
    """``rag-otel serve --config CONFIG [args]``; ``http``/``otlp_http`` once :meth:`start` returned."""

    def __init__(self, config: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.argv = [sys.executable, "-m", "rag_otel.cli", "serve", "--config", str(config), *args]
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.log: list[str] = []
        self.http = self.otlp_http = ""
        self._proc: subprocess.Popen[str] | None = None
        self._lines: queue.Queue[str] = queue.Queue()

    def start(self, timeout: float = 30.0) -> ServeProcess:
        self._proc = subprocess.Popen(self.argv, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                                      env=self.env)
        stderr = self._proc.stderr
        self._reader = threading.Thread(target=lambda: [self._lines.put(x) for x in stderr], daemon=True)
        self._reader.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.log.append(self._lines.get(timeout=0.2))
            except queue.Empty:
                if self._proc.poll() is not None:
                    break
                continue
            if m := re.search(r"OTLP HTTP (\S+), HTTP http://(\S+)", self.log[-1]):
                self.otlp_http, self.http = m.group(1), m.group(2)
                return self
        self.stop()
        raise AssertionError(f"rag-otel serve did not start: {''.join(self.log)}")

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM and wait (kill after ``timeout``); the exit status, None if it never started."""
        if self._proc is None:
            return None
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._reader.join(5)  # the process has exited: its stderr ends; ``log`` then holds every line
        while not self._lines.empty():
            self.log.append(self._lines.get())
        return self._proc.returncode

    def __enter__(self) -> ServeProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
