"""The README's quick start, run as a user runs it (`leukoscope run --simulate --sample demo` in an
empty folder, default configuration): every line the README quotes is what the command prints,
except the run id and the rates, which depend on the run and the machine."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.cli_helpers import clean_environ

README = Path(__file__).resolve().parents[2] / "README.md"
VARIABLE = (
    re.compile(r"^(fields \d+ \(failed \d+\)), [\d.]+ fields/s, [\d.]+ cells/s$"),
    re.compile(r"^(run) [0-9a-f]{32} (stored in leukoscope\.sqlite)$"),
)


def quoted_output() -> list[str]:
    """The block the README quotes after the quick start command."""
    text = README.read_text(encoding="utf-8")
    start = text.index("```\nSIMULATED sample demo")
    block = text[start + 4 : text.index("```", start + 4)]
    return [line.rstrip() for line in block.splitlines()]


def steady(line: str) -> str:
    """A line with its run id and rates taken out."""
    for pattern in VARIABLE:
        found = pattern.match(line)
        if found:
            return " ".join(found.groups())
    return line


def test_the_quick_start_prints_what_the_readme_quotes(tmp_path: Path) -> None:
    env = clean_environ()  # the suite's live endpoint (off) and layer cache
    env.update(COLUMNS="100")
    done = subprocess.run(
        [sys.executable, "-m", "leukoscope", "run", "--simulate", "--sample", "demo"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    printed = [line.rstrip() for line in done.stdout.splitlines()]
    start = next(i for i, line in enumerate(printed) if line.startswith("SIMULATED sample demo"))
    quoted = quoted_output()
    assert [steady(line) for line in printed[start:]] == [steady(line) for line in quoted]
    assert "Traceback" not in done.stderr
