"""A simulated run's report opened in headless Chromium; `leukoscope report` as a user runs it.

Chromium is installed by scripts/install.sh (when root). Without it the browser test skips on a
developer's machine, but fails in CI (CI=true), where a missing browser is a broken install.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from leukoscope.classifier.infer import Predictor
from leukoscope.config import PipelineConfig
from leukoscope.pipeline.runner import run_embedded
from leukoscope.pipeline.sources import saved_acquisition
from leukoscope.report.data import gather_report
from leukoscope.report.html import render_html
from leukoscope.results.store import ResultStore
from leukoscope.types import SampleSummary

from ..cli_helpers import clean_environ
from ..integration.pipeline_helpers import small_acquisition, untrained_checkpoint

SAMPLE = "e2e-report.1"  # sample ids are names (leukoscope.ids): no markup can reach the page
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--enable-logging=stderr", "--v=0",
)  # fmt: skip
PROBE = "report-probe"
PROBE_SCRIPT = f"""<script>
addEventListener("load", () => {{
  const images = [...document.images];
  const broken = images.filter((i) => !i.complete || i.naturalWidth === 0).length;
  console.log("{PROBE} images=" + images.length + " broken=" + broken);
}});
</script>"""


@dataclass(frozen=True)
class SimulatedRun:
    database: Path
    run_id: str
    summary: SampleSummary


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatedRun]:
    """Three small simulated fields analysed by the embedded pipeline with an untrained model."""
    root = tmp_path_factory.mktemp("report")
    model = untrained_checkpoint(root / "model.pt")
    predictor = Predictor.load(model, backend="torch", threads=1)
    folder = small_acquisition(root / "acq", SAMPLE, 3, seed=3)
    database = root / "results.sqlite"
    with ResultStore(database) as store:
        run_id = store.start_run(model_path=str(model), model_version="e2e-1")
        summaries = run_embedded(
            PipelineConfig(target_cells=0),
            [saved_acquisition(folder)],
            classify=lambda crops: predictor.predict(crops).head_probabilities,
            modalities=predictor.modalities,
            input_size=predictor.input_size,
            store=store,
            run_id=run_id,
            timeout_s=60,
        )
        store.finish_run(run_id)
    yield SimulatedRun(database, run_id, summaries[SAMPLE])


def chromium() -> str:
    """The Chromium binary; skip without one, except in CI where it must be installed."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    message = "chromium not found: run scripts/install.sh as root or apt-get install chromium"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message} (CI must install it)", pytrace=False)
    pytest.skip(message)


def browse(page: Path, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Open `page` in headless Chromium with console logging on stderr."""
    return subprocess.run(
        [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args, page.as_uri()],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def console_lines(stderr: str) -> list[str]:
    """Messages the page wrote to its console, and uncaught errors."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


def test_report_opens_in_chromium_without_console_errors(
    simulated: SimulatedRun, tmp_path: Path
) -> None:
    with ResultStore(simulated.database) as store:
        data = gather_report(store, SAMPLE)
    summary = simulated.summary
    assert summary.cells_counted > 0
    assert data.summary == summary  # the report's numbers are the store's and the pipeline's
    page = tmp_path / "report.html"
    page.write_text(render_html(data), encoding="utf-8")

    result = browse(page, tmp_path / "profile", "--dump-dom")
    assert result.returncode == 0, result.stderr[-2000:]
    assert console_lines(result.stderr) == []
    dom = result.stdout
    assert '<div class="sample">e2e-report.1</div>' in dom
    assert 'id="simulated"' in dom  # the simulator's sample says so on the page
    assert f'<dd id="run-id"><span class="mono">{simulated.run_id}</span></dd>' in dom
    assert f"{summary.cells_counted} (all fields)" in dom
    assert 'id="differential"' in dom and 'id="chart"' in dom and "<svg" in dom
    for row in summary.classes:
        shown = re.search(
            rf'<tr data-class="{row.cell_class.value}">.*?<td class="count">(\d+)</td>'
            r'<td class="percent">([\d.]+)</td><td class="ci">([\d.]+) – ([\d.]+)</td>',
            dom,
        )
        assert shown is not None, row.cell_class
        assert int(shown[1]) == row.count
        assert float(shown[2]) == round(row.percent, 1)
        assert (float(shown[3]), float(shown[4])) == (
            round(row.ci_low_percent, 1),
            round(row.ci_high_percent, 1),
        )
    assert dom.count('<figure class="cell') == summary.cells_counted
    assert 'id="quality-flags"' in dom  # an untrained model is flagged for review

    # a copy with a probe script (the report itself has none) checks every image decodes
    probe = tmp_path / "probe.html"
    policy = "content=\"script-src 'unsafe-inline'; "
    probed = page.read_text("utf-8").replace('content="default-src', f"{policy}default-src", 1)
    probe.write_text(probed.replace("</body>", f"{PROBE_SCRIPT}</body>"), encoding="utf-8")
    shot = tmp_path / "report.png"
    result = browse(probe, tmp_path / "profile", f"--screenshot={shot}", "--window-size=1280,2000")
    assert result.returncode == 0, result.stderr[-2000:]
    lines = console_lines(result.stderr)
    assert len(lines) == 1 and PROBE in lines[0], lines
    assert f"images={2 * summary.cells_counted} broken=0" in lines[0]  # composite + fluorescence
    png = shot.read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 20_000
    assert int.from_bytes(png[16:20], "big") == 1280


def test_gallery_jump_links_native_crops_and_flagged_first_in_chromium(
    simulated: SimulatedRun, tmp_path: Path
) -> None:
    """Driven by Playwright on the system Chromium: each jump link brings its class into view;
    in every class the flagged cells come first; every picture is the native crop, unscaled."""
    try:
        from playwright import sync_api as playwright
    except ImportError:  # installed with the dev extras (scripts/install.sh); CI must have it
        if os.environ.get("CI", "").lower() == "true":
            raise
        pytest.skip("playwright not installed: run scripts/install.sh")
    with ResultStore(simulated.database) as store:
        data = gather_report(store, SAMPLE)
    page_file = tmp_path / "report.html"
    page_file.write_text(render_html(data), encoding="utf-8")
    shown = [line for line in data.lines if line.count.count]
    assert sum(data.flagged_by_class.values()) > 0  # an untrained model: some cells flagged
    errors: list[str] = []
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 700})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(page_file.as_uri())
        links = page.locator("#gallery-jump a")
        assert links.count() == len(shown)
        for i, line in enumerate(shown):
            name = line.count.cell_class.value
            link = links.nth(i)
            assert link.inner_text().startswith(f"{name} {line.count.count}")
            page.evaluate("window.scrollTo(0, 0)")
            link.click()
            page.wait_for_function("(h) => location.hash === h", arg=f"#gallery-{name}")
            top = page.evaluate(
                "(id) => document.getElementById(id).getBoundingClientRect().top", f"gallery-{name}"
            )
            assert 0 <= top < 700, (name, top)  # the class's heading is on screen
            flags = page.eval_on_selector_all(
                f'.gallery[data-class="{name}"] figure.cell',
                "els => els.map(e => e.dataset.flagged)",
            )
            assert len(flags) == line.count.count
            assert flags == sorted(flags, reverse=True), (name, flags)  # flagged ("1") first
            assert flags.count("1") == data.flagged_by_class[line.count.cell_class]
        sizes = page.eval_on_selector_all(
            "figure.cell img",
            "els => els.map(e => [e.className, e.naturalWidth, e.naturalHeight,"
            " Math.round(e.getBoundingClientRect().width)])",
        )
        browser.close()
    assert errors == []
    assert len(sizes) == 2 * data.summary.cells_counted
    assert {kind for kind, *_ in sizes} == {"composite", "fluorescence"}
    # 24 um at 0.25 um/px, re-cut from the saved fields: 96 px, drawn at 96 CSS px (not scaled)
    assert {tuple(size) for _, *size in sizes} == {(96, 96, 96)}
    assert page_file.read_text("utf-8").count('class="crop-note"') == 0


def test_console_errors_are_detected(tmp_path: Path) -> None:
    """The check above would see a page that tried to load something or threw."""
    page = tmp_path / "bad.html"
    page.write_text(
        '<!DOCTYPE html><html><head><meta http-equiv="Content-Security-Policy" '
        "content=\"default-src 'none'; img-src data:\"></head><body>"
        '<img src="http://127.0.0.1:9/x.png"></body></html>',
        encoding="utf-8",
    )
    result = browse(page, tmp_path / "profile", "--dump-dom")
    assert any("Content Security Policy" in line for line in console_lines(result.stderr))


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = clean_environ()
    return subprocess.run(
        [sys.executable, "-m", "leukoscope", "report", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=cwd,
        check=False,
    )


def test_report_cli_json_equals_the_store_and_unknown_sample_is_one_line(
    simulated: SimulatedRun, tmp_path: Path
) -> None:
    db = str(simulated.database)
    result = cli(SAMPLE, "--db", db, "--format", "json", "--out", "-", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["sample"]["run_id"] == simulated.run_id
    assert document["sample"]["cells_counted"] == simulated.summary.cells_counted
    assert [(d["count"], d["percent"], d["ci_low_percent"]) for d in document["differential"]] == [
        (c.count, c.percent, c.ci_low_percent) for c in simulated.summary.classes
    ]
    assert document["model"]["version"] == "e2e-1" and document["model"]["arch"] == "hs_mm_mimo"

    missing = cli("nobody", "--db", db, cwd=tmp_path)
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines() == [
        f"error: no sample 'nobody' in {db} (samples: {SAMPLE})"
    ]
    unknown = cli(SAMPLE, "--db", db, "--run", "zz", cwd=tmp_path)  # run ids are hex: no match
    assert unknown.returncode == 2
    lines = unknown.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: no run 'zz' in {db}; runs with sample")
    assert simulated.run_id in lines[0]  # the candidate to copy
