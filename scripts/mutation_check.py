"""Mutation check: each deliberate bug, applied to a copy of src/, must make the suite fail.

    .venv/bin/python scripts/mutation_check.py            # every mutation
    .venv/bin/python scripts/mutation_check.py swap-lights --baseline

For each mutation: src/ is copied to a temporary folder, one line of the copy is changed, and the
tests that guard it run with that copy first on PYTHONPATH (subprocesses the tests start inherit it).
A mutation passes the check when those tests fail (pytest exit status 1); the check fails when the
tests stay green, when the mutation no longer applies (the code moved: update it here), or when the
copy was not the code the tests ran. `--baseline` also runs the same tests on the unchanged copy,
which must pass. Exit status 0 when every mutation was caught.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Mutation:
    name: str
    description: str
    path: str  # under src/
    old: str
    new: str
    tests: tuple[str, ...]


MUTATIONS = (
    Mutation(
        "swap-lights",
        "color1 and color2 swapped in the classify stage's input assembly",
        "leukoscope/pipeline/stages.py",
        "order = [batch.modalities.index(m) for m in self.modalities]",
        "order = [batch.modalities.index({Modality.COLOR1: Modality.COLOR2, "
        "Modality.COLOR2: Modality.COLOR1}.get(m, m)) for m in self.modalities]",
        ("tests/e2e/test_ground_truth.py",),
    ),
    Mutation(
        "any-reply",
        "the LC4 driver accepts any reply line as the answer to the pending command",
        "leukoscope/instrument/lights.py",
        "if fields[1 : 1 + len(expect)] == expect:",
        "if True:",
        (
            "tests/unit/test_lights_protocol.py",
            "tests/integration/test_lights_replies.py",
            "tests/integration/test_lights_pty.py",
        ),
    ),
    Mutation(
        "smudge-as-artefact",
        "the report counts smudge cells as artefacts",
        "leukoscope/report/review.py",
        'artefacts=sum(c.label == "ARTEFACT" for c in cells),',
        'artefacts=sum(c.label in ("ARTEFACT", "SMUDGE") for c in cells),',
        ("tests/integration/test_review_smudges.py",),
    ),
    Mutation(
        "deaf-worker",
        "a worker whose work connection zmq cut (an over-size frame) never connects again",
        "leukoscope/pipeline/stages.py",
        "work.close(linger=0)",
        "continue",
        ("tests/integration/test_worker_frame_limit.py",),
    ),
    Mutation(
        "headers-inside",
        "the security headers are set inside the body limit: its 413 answers go out without them",
        "leukoscope/review/app.py",
        "    app.add_middleware(BodyLimit, max_bytes=MAX_BODY_BYTES)\n"
        "    app.add_middleware(SecureHeaders)",
        "    app.add_middleware(SecureHeaders)\n"
        "    app.add_middleware(BodyLimit, max_bytes=MAX_BODY_BYTES)",
        ("tests/integration/test_review_headers.py",),
    ),
    Mutation(
        "one-sided-interval",
        "the lower end of the Clopper-Pearson interval at 5 % instead of 2.5 %",
        "leukoscope/results/counts.py",
        "float(stats.beta.ppf(alpha / 2, count, total - count + 1))",
        "float(stats.beta.ppf(alpha, count, total - count + 1))",
        ("tests/unit/test_report_data.py",),
    ),
    Mutation(
        "deep-failed-fields",
        "a deeply nested failed_fields.json raises RecursionError out of run --resume",
        "leukoscope/acquisition_files/storage.py",
        "TypeError, RecursionError):",
        "TypeError):",
        ("tests/integration/test_failed_fields_bounds.py",),
    ),
    Mutation(
        "shared-port",
        "the LC4 driver lets two threads talk on the port at once (no lock)",
        "leukoscope/instrument/lights.py",
        "with self._lock:",
        "if True:",
        ("tests/integration/test_lights_replies.py",),
    ),
)


def run_tests(src: Path, tests: tuple[str, ...]) -> int:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(src), os.environ.get("PYTHONPATH", "")]))
    where = subprocess.run(
        [sys.executable, "-c", "import leukoscope; print(leukoscope.__file__)"],
        env=env, capture_output=True, text=True, check=True, cwd=ROOT,
    ).stdout.strip()  # fmt: skip
    if not Path(where).is_relative_to(src):
        raise SystemExit(f"the copy is not what runs: leukoscope imports from {where}")
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests]
    result = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    lines = result.stdout.splitlines()
    errors = [line for line in lines if line.startswith("E  ")][:1]
    tail = errors + [line for line in lines if line.strip()][-3:]
    for line in tail:
        print(f"    {line}")
    return result.returncode


def check(mutation: Mutation, baseline: bool) -> bool:
    with tempfile.TemporaryDirectory(prefix="leukoscope-mutant-") as tmp:
        src = Path(tmp) / "src"
        shutil.copytree(ROOT / "src", src, ignore=shutil.ignore_patterns("__pycache__"))
        if baseline:
            print(f"{mutation.name}: baseline (unchanged copy)")
            if run_tests(src, mutation.tests) != 0:
                print(f"{mutation.name}: FAILED - the tests fail without the mutation")
                return False
        target = src / mutation.path
        text = target.read_text()
        if text.count(mutation.old) != 1:
            print(f"{mutation.name}: FAILED - the line to mutate is not in {mutation.path} once")
            return False
        target.write_text(text.replace(mutation.old, mutation.new))
        print(f"{mutation.name}: {mutation.description}")
        status = run_tests(src, mutation.tests)
    if status == 1:
        print(f"{mutation.name}: caught (the tests fail)")
        return True
    verdict = "SURVIVED - the tests pass" if status == 0 else f"FAILED - pytest exit {status}"
    print(f"{mutation.name}: {verdict}")
    return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="mutations to check (default: all)")
    parser.add_argument("--baseline", action="store_true", help="also run the tests unmutated")
    args = parser.parse_args()
    chosen = [m for m in MUTATIONS if not args.names or m.name in args.names]
    if not chosen:
        raise SystemExit(f"no such mutation; known: {[m.name for m in MUTATIONS]}")
    caught = [check(m, args.baseline) for m in chosen]
    print(f"{sum(caught)}/{len(caught)} mutations caught")
    raise SystemExit(0 if all(caught) else 1)


if __name__ == "__main__":
    main()
