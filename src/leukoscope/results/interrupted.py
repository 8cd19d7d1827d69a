"""Samples left `running` by a run whose process is gone (killed with SIGKILL, a power cut).

Every run records the process that made it (`runs.pid`, `runs.host`). When the results database is
next opened for writing (the next `run`, `batch`, `serve`...), each sample still `running` in a run
of this host whose process no longer exists is marked `incomplete` with the reason
`interrupted: ...`, and `leukoscope samples` shows it as `interrupted`. Runs of other hosts, and
runs recorded before the process was, are left as they are (their process cannot be checked here).
"""

from __future__ import annotations

import os
import socket
import sqlite3
import time

RUN_INSERT = (
    "INSERT INTO runs (run_id, started_s, model_path, model_version, config_digest, pid, host)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (run_id) DO UPDATE SET pid = excluded.pid, host = excluded.host"
)
"""A run recorded with its process (a run resumed under its id takes the resuming process)."""
INTERRUPTED = "interrupted"
"""How `leukoscope samples` shows such a sample; its stored reason starts with this word."""


def this_host() -> str:
    """The name runs record as their host."""
    return socket.gethostname()


def process_alive(pid: int) -> bool:
    """True unless this host certainly has no process `pid` (another user's process is alive)."""
    if pid <= 0:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def this_process() -> tuple[int, str]:
    """(pid, host) a run records."""
    return os.getpid(), this_host()


def mark_interrupted(db: sqlite3.Connection, readable: bool = True) -> int:
    """Mark the running samples of this host's runs whose process is gone; how many (none when the
    schema is not `readable`: the caller refuses it)."""
    if not readable:
        return 0
    rows = db.execute(
        "SELECT DISTINCT r.run_id, r.pid FROM runs r JOIN samples s ON s.run_id = r.run_id"
        " WHERE s.status = 'running' AND r.host = ? AND r.pid IS NOT NULL",
        (this_host(),),
    ).fetchall()
    dead = [(str(run_id), int(pid)) for run_id, pid in rows if not process_alive(int(pid))]
    marked = 0
    with db:
        for run_id, pid in dead:
            marked += db.execute(
                "UPDATE samples SET status = 'incomplete', reason = ?, finished_s = ?"
                " WHERE run_id = ? AND status = 'running'",
                (f"{INTERRUPTED}: the run's process (pid {pid} on {this_host()}) ended before the "
                 "sample finished", time.time(), run_id),
            ).rowcount  # fmt: skip
    return marked


def take_up(db: sqlite3.Connection, run_id: str) -> None:
    """A run resumed under its id (`serve --run`, `run --resume`): the samples an earlier open
    marked interrupted are running again, for this process to finish."""
    db.execute(
        "UPDATE samples SET status = 'running', reason = '', finished_s = NULL"
        " WHERE run_id = ? AND status = 'incomplete' AND reason LIKE ?",
        (run_id, f"{INTERRUPTED}:%"),
    )


def shown_status(status: str, reason: str) -> str:
    """A sample's status as listed: `interrupted` for one marked so, else as stored."""
    return INTERRUPTED if status == "incomplete" and reason.startswith(INTERRUPTED) else status
