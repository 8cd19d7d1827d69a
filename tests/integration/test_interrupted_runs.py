"""A run killed with SIGKILL leaves its samples `running`; the next read-write open of the store
marks them interrupted (its process is gone), and `samples` lists them so. Live runs are kept."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from leukoscope.results.store import ResultStore
from leukoscope.results.tables import sample_rows

CHILD = """
import os, signal, sys
from leukoscope.results.store import ResultStore
store = ResultStore(sys.argv[1])
run_id = store.start_run()
store.start_sample(run_id, "S-killed", target_cells=10, fields_total=None)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_samples_of_a_killed_run_are_marked_interrupted(tmp_path: Path) -> None:
    db = tmp_path / "r.sqlite"
    with ResultStore(db) as store:  # a live run: this process
        live = store.start_run()
        store.start_sample(live, "S-live", target_cells=10, fields_total=None)
    done = subprocess.run([sys.executable, "-c", CHILD, str(db)], check=False, timeout=60)
    assert done.returncode == -signal.SIGKILL
    with ResultStore(db, read_only=True) as store:  # reading changes nothing
        assert {r.sample_id: r.status for r in sample_rows(store)}["S-killed"] == "running"
    with ResultStore(db) as store:  # the next run opens it
        rows = {r.sample_id: r for r in sample_rows(store)}
        records = {r.sample_id: r for r in store.samples()}
    assert rows["S-killed"].status == "interrupted" and rows["S-live"].status == "running"
    assert records["S-killed"].status == "incomplete"
    assert records["S-killed"].reason.startswith("interrupted: the run's process (pid ")
