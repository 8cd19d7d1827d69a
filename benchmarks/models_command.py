"""How long `leukoscope models` takes, and how soon it shows something: the installed command in a
pseudo-terminal (so its progress bar draws, as a user would see it), timed from start to the first
byte on the terminal and to exit; the median of `--repeats` runs.

    .venv/bin/python benchmarks/models_command.py --repeats 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time


def one_run(args: list[str]) -> tuple[float, float, bool]:
    """(seconds to the first byte, seconds to exit, whether a progress line was drawn)."""
    master, slave = os.openpty()
    start = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "leukoscope", "models", *args],
        stdin=slave, stdout=slave, stderr=slave, close_fds=True,
    )  # fmt: skip
    os.close(slave)
    first: float | None = None
    seen = bytearray()
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        if first is None:
            first = time.perf_counter() - start
        seen += chunk
    os.close(master)
    process.wait()
    total = time.perf_counter() - start
    return (first if first is not None else total), total, b"counting MACs" in seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    options, rest = parser.parse_known_args()
    firsts, totals = [], []
    for i in range(options.repeats):
        first, total, progress = one_run(rest)
        firsts.append(first)
        totals.append(total)
        print(f"run {i + 1}: first output {first:.2f} s, done {total:.2f} s, progress {progress}")
    print(
        f"median of {options.repeats}: first output {statistics.median(firsts):.2f} s, "
        f"done {statistics.median(totals):.2f} s (load average {os.getloadavg()[0]:.1f}, "
        f"{os.cpu_count()} CPUs)"
    )


if __name__ == "__main__":
    main()
