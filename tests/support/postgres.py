"""A throwaway PostgreSQL cluster from Debian's ``postgresql`` package, for the fleet-store tests.

``initdb`` into a temporary directory, ``pg_ctl start`` on a free loopback port with trust
authentication, one database; :meth:`stop`/:meth:`start` take the server away and bring it back
(the fault tests), :meth:`close` removes it.  PostgreSQL refuses to run as root, so under root the
server runs as the ``postgres`` user the package created.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(found[-1]).parent if found else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Postgres:
    def __init__(self, dbname: str = "rag_otel_lake") -> None:
        bin_dir = pg_bin()
        if bin_dir is None:
            raise RuntimeError("PostgreSQL is not installed (Debian: apt-get install postgresql; .ci/run does it)")
        self.bin = bin_dir
        self.dbname = dbname
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="rag-otel-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self._as: list[str] = []
        self.user = pwd.getpwuid(os.getuid()).pw_name
        if os.getuid() == 0:
            self.user = "postgres"
            self._as = ["runuser", "-u", "postgres", "--"]
            shutil.chown(self.root, user="postgres")
        os.chmod(self.root, 0o755)

    @property
    def conninfo(self) -> str:
        return self.conninfo_for(self.dbname)

    def conninfo_for(self, dbname: str) -> str:
        return f"dbname={dbname} host=127.0.0.1 port={self.port} user={self.user}"

    def createdb(self, dbname: str) -> str:
        """Another database in this cluster (one lake each); returns its connection string."""
        self._run(str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, dbname)
        return self.conninfo_for(dbname)

    def _run(self, *argv: str, timeout: float = 60) -> None:
        subprocess.run([*self._as, *argv], check=True, capture_output=True, timeout=timeout)

    def init(self) -> Postgres:
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", self.user, "--no-sync")
        with open(self.data / "postgresql.conf", "a") as f:
            f.write(f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{self.root}'\n"
                    "fsync = off\nmax_connections = 200\n")
        self.start()
        self._run(str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, self.dbname)
        return self

    def start(self) -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-t", "30", "start")

    def stop(self) -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "-t", "30", "stop")

    def close(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def wait_port(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        raise TimeoutError(f"postgres on {self.port} did not come up")

    def __enter__(self) -> Postgres:
        return self.init()

    def __exit__(self, *exc: object) -> None:
        self.close()
