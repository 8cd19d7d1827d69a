"""The package's import structure: the contracts of pyproject.toml hold (import-linter: layers, no
import circles, a pipeline core free of instrument), and runtime code reaches the simulator only
through its one factory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[2]
SIMULATOR = "leukoscope.instrument.simulator"
SIMULATOR_DOORS = {
    "leukoscope.instrument.rig",  # open_rig: a sim:// rig (the one factory)
    "leukoscope.cli.simulate",  # the `simulate` commands: where a user asks for simulation
}


def test_import_linter_contracts_are_kept() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run(
        [str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    report = done.stdout + done.stderr
    assert done.returncode == 0, report
    assert "Contracts: 3 kept, 0 broken." in report, report  # every contract ran


def test_runtime_code_reaches_the_simulator_only_through_its_factory() -> None:
    graph = grimp.build_graph("leukoscope")
    importers = {
        importer
        for module in graph.modules
        if module == SIMULATOR or module.startswith(SIMULATOR + ".")
        for importer in graph.find_modules_that_directly_import(module)
        if not (importer == SIMULATOR or importer.startswith(SIMULATOR + "."))
    }
    assert importers <= SIMULATOR_DOORS, sorted(importers - SIMULATOR_DOORS)
    assert "leukoscope.instrument.rig" in importers  # the rule looks at real imports
