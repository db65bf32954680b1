"""A writer killed with SIGKILL mid-stream: the database opens and every committed batch is there,
with rollups that agree with the raw rows (each batch and its rollups commit together)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from rag_otel.store import Store
from tests.support.store_data import generate

BATCH = 40
WRITER = textwrap.dedent(f"""
    import sys
    from rag_otel.store import Store
    from tests.support.store_data import generate
    store = Store.open(sys.argv[1])
    seed = 0
    while True:  # until killed
        ds = generate(seed=seed, days=1, per_day={BATCH})
        store.write_records(ds.records)
        print(store.count("queries"), flush=True)
        seed += 1
""")


def test_sigkill_mid_stream_loses_no_committed_batch(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)], stdout=subprocess.PIPE, text=True,
                            cwd=root, env={**os.environ, "PYTHONPATH": str(root)})
    committed = 0
    try:
        deadline = time.monotonic() + 60
        while committed < 8 * BATCH:
            line = proc.stdout.readline()
            assert line, f"the writer died early (exit {proc.poll()})"
            committed = int(line)
            assert time.monotonic() < deadline
        os.kill(proc.pid, signal.SIGKILL)  # no chance to checkpoint or close
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    with Store.open(tmp_path) as store:
        n = store.count("queries")
        assert n >= committed and n % BATCH == 0  # whole batches only
        for level in store.levels:
            assert store.sql("SELECT sum(n) FROM rollups WHERE level = ?", [level])[0][0] == n
        store.write_records(generate(seed=999, days=1, per_day=1).records)  # and it is writable again
        assert store.count("queries") == n + 1
