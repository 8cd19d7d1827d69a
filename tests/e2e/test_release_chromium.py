"""The lab's path to a released result, as a technologist and a quality manager take it, in the real
system Chromium and through the HTTP API: real BCCD fields analysed by `batch` cannot be released
while the model has no passing validation for the rig; `validate` and `model promote` on the lab's
labelled acquisitions; then the same sample is released, reopened, corrected and released again
(HL7 `C`, FHIR `corrected`, read with python-hl7 and fhir.resources). A sample with no counted
cells is never released; a simulated acquisition whose `simulated` key was removed is refused, and
one analysed as simulated is shown so and never released; an anonymous change is refused."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hl7
import pytest
from fhir.resources.R4B.bundle import Bundle

from leukoscope.results.review_store import ReviewStore
from leukoscope.results.store import ResultStore
from tests.cli_helpers import run_cli

from ..integration.pipeline_helpers import small_acquisition, untrained_checkpoint
from ..integration.review_helpers import PASSWORD, LiveApp, add_user
from .test_review_chromium import chromium

try:
    from playwright import sync_api as playwright
except ImportError:  # installed with the dev extras (scripts/install.sh); CI must have it
    import os

    if os.environ.get("CI", "").lower() == "true":
        raise
    pytest.skip("playwright not installed: run scripts/install.sh", allow_module_level=True)

DATA = Path(__file__).resolve().parents[1] / "data" / "bccd"
LABELLED = [DATA / s for s in ("bccd-01", "bccd-02", "bccd-03")]
LENIENT = """
[validation]
min_segmentation_recall = 0.0
min_accuracy = 0.0
min_coverage = 0.0
[validation.max_bias_pp]
NEU = 100.0
LYM = 100.0
MO = 100.0
EOS = 100.0
BAS = 100.0
"""


@pytest.fixture
def lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Path]]:
    """A lab's configuration: its results database, an (untrained) model of its own and
    acceptance criteria it chose (lenient here, so the untrained model can pass)."""
    monkeypatch.delenv("LEUKOSCOPE_CONFIG", raising=False)
    model = untrained_checkpoint(tmp_path / "model.pt")
    database = tmp_path / "lab.sqlite"
    config = tmp_path / "leukoscope.toml"
    config.write_text(
        f'[pipeline]\nresults_db = "{database}"\ntarget_cells = 3\nlive_endpoint = ""\n'
        f'[classifier]\nmodel_path = "{model}"\nbackend = "torch"\nthreads = 1\n{LENIENT}',
        encoding="utf-8",
    )
    yield {"model": model, "database": database, "config": config, "tmp": tmp_path}


def _cli(monkeypatch: pytest.MonkeyPatch, lab: dict[str, Path], *args: object) -> int:
    return run_cli(monkeypatch, "--config", lab["config"], *args)


def _run_of(database: Path, sample: str) -> str:
    with ResultStore(database, read_only=True) as store:
        return next(s.run_id for s in store.samples() if s.sample_id == sample)


def _message(page: Any, text: str) -> str:
    page.wait_for_function(
        "(t) => document.getElementById('message').textContent.includes(t)", arg=text
    )
    return str(page.locator("#message").inner_text())


def _open(page: Any, base: str, run: str, sample: str) -> None:
    page.goto(f"{base}/sample/{run}/{sample}")
    page.wait_for_selector("body[data-ready='1']", timeout=20_000)


def _log_in(page: Any, base: str) -> None:
    page.goto(f"{base}/login")
    page.fill("#login-user", "Ann Lee")
    page.fill("#login-password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_url(f"{base}/")


def test_validate_promote_release_and_correct(
    lab: dict[str, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    database = lab["database"]
    assert _cli(monkeypatch, lab, "batch", LABELLED[0], LABELLED[1]) == 0
    run = _run_of(database, "bccd-01")
    add_user(database, "Ann Lee")
    errors: list[str] = []
    with LiveApp(database, user="Ann Lee") as live, playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("pageerror", lambda e: errors.append(str(e)))
        _log_in(page, live.base)
        _open(page, live.base, run, "bccd-01")
        # no passing validation: the page says so, the server refuses the release
        assert "not releasable" in page.locator("#model-evidence").inner_text()
        page.click("#release")
        refusal = _message(page, "has no passing validation for this rig set-up")
        assert "\n" not in refusal and "leukoscope validate" in refusal
        state = live.get(f"/api/sample/{run}/bccd-01").json()
        answer = live.post(f"/api/sample/{run}/bccd-01/release", {"version": state["version"]})
        assert answer.status_code == 403 and "no passing validation" in answer.json()["error"]

        # the quality manager validates the model on the lab's labelled acquisitions, promotes it
        out = lab["tmp"] / "validation"
        code = _cli(
            monkeypatch, lab, "validate", *LABELLED, "--labels", DATA / "labels.csv",
            "--model", lab["model"], "--out", out, "--by", "Quality Manager",
        )  # fmt: skip
        assert code == 0, capsys.readouterr().err
        assert json.loads((out / "validation.json").read_text())["record"]["verdict"] == "PASS"
        assert _cli(monkeypatch, lab, "model", "promote", lab["model"]) == 0

        # the same sample can now be released
        _open(page, live.base, run, "bccd-01")
        evidence = page.locator("#model-evidence").inner_text()
        assert "validated on this rig" in evidence and "Quality Manager" in evidence
        page.click("#release")
        page.wait_for_function(
            "() => document.getElementById('state').textContent.startsWith('Released by Ann Lee')"
        )
        # reopened with a reason, one cell changed, released again: a correction
        page.fill("#reopen-reason", "cell 0 is a lymphocyte")
        page.click("#reopen")
        _message(page, "Reopened.")
        first = page.locator("figure.cell").first
        label = first.get_attribute("data-label")
        page.keyboard.press("l" if label != "LYM" else "n")
        page.wait_for_function(
            "(l) => document.querySelector('figure.cell').dataset.label !== l", arg=label
        )
        page.click("#release")
        page.wait_for_function(
            "() => document.getElementById('state').textContent.includes('release 2, a correction')"
        )

        # a sample whose every cell is set aside has nothing to release, final or partial
        run2 = _run_of(database, "bccd-02")
        _open(page, live.base, run2, "bccd-02")
        for done in range(1, page.locator("figure.cell").count() + 1):
            page.keyboard.press("a")  # one at a time: the page takes a key once the last is saved
            page.wait_for_function(
                "(n) => document.querySelectorAll('figure.cell[data-label=ARTEFACT]').length === n",
                arg=done,
            )
        page.click("#release")
        _message(page, "has no counted cells")
        page.check("#partial")
        page.fill("#partial-reason", "smear too thin")
        page.click("#release")
        _message(page, "has no counted cells")
        state = live.get(f"/api/sample/{run2}/bccd-02").json()
        answer = live.post(
            f"/api/sample/{run2}/bccd-02/release",
            {"version": state["version"], "partial": True, "reason": "smear too thin"},
        )
        assert answer.status_code == 403 and "no counted cells" in answer.json()["error"]

        # nobody logged in: a change is refused
        anonymous = live.client().post(
            f"/api/sample/{run2}/bccd-02/cell/0/0", {"label": "NEU", "version": 0}
        )
        assert anonymous.status_code == 401
        browser.close()
    assert errors == []
    with ReviewStore(database, read_only=True) as reviews:
        assert [r.release_no for r in reviews.releases(run, "bccd-01")] == [1, 2]
        assert reviews.releases(run2, "bccd-02") == []
        assert {a.reviewer for a in reviews.audit(run, "bccd-01")} == {"Ann Lee"}

    # what the laboratory system receives for the second release: a correction of the first
    capsys.readouterr()
    hl7_file, fhir_file = lab["tmp"] / "bccd-01.hl7", lab["tmp"] / "bccd-01.json"
    assert _cli(monkeypatch, lab, "report", "bccd-01", "--format", "hl7", "-o", hl7_file) == 0
    assert _cli(monkeypatch, lab, "report", "bccd-01", "--format", "fhir", "-o", fhir_file) == 0
    message = hl7.parse(hl7_file.read_bytes().decode("utf-8"))  # segments end with CR
    assert str(message.segment("OBR")[25]) == "C"
    assert [str(obx[11]) for obx in message.segments("OBX")] == ["C"] * 5
    notes = " ".join(str(n[3]) for n in message.segments("NTE"))
    assert "Corrected result: replaces release 1" in notes and "cell 0 is a lymphocyte" in notes
    bundle = json.loads(fhir_file.read_text())
    Bundle.model_validate(bundle)
    report = next(e["resource"] for e in bundle["entry"]
                  if e["resource"]["resourceType"] == "DiagnosticReport")  # fmt: skip
    assert report["status"] == "corrected" and report["meta"]["versionId"] == "2"


def test_a_simulated_sample_is_never_released_even_without_its_key(
    lab: dict[str, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    database = lab["database"]
    folder = small_acquisition(lab["tmp"] / "sim", "sim-1", 2, seed=3)
    meta = json.loads((folder / "acquisition.json").read_text())
    stripped = dict(meta)
    del stripped["simulated"]
    (folder / "acquisition.json").write_text(json.dumps(stripped))
    capsys.readouterr()
    assert _cli(monkeypatch, lab, "batch", folder) != 0  # refused: its fields say simulated
    err = capsys.readouterr().err
    assert "is marked simulated but acquisition.json says real" in err and "Traceback" not in err
    assert not database.exists() or not ResultStore(database, read_only=True).samples()
    (folder / "acquisition.json").write_text(json.dumps(meta))
    assert _cli(monkeypatch, lab, "batch", folder) == 0
    run = _run_of(database, "sim-1")
    add_user(database, "Ann Lee")
    with LiveApp(database, user="Ann Lee") as live, playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        page = browser.new_page()
        _log_in(page, live.base)
        _open(page, live.base, run, "sim-1")
        assert page.locator("#simulated-banner").is_visible()
        page.click("#release")
        _message(page, "is simulated: it is never released")
        browser.close()
        state = live.get(f"/api/sample/{run}/sim-1").json()
        answer = live.post(f"/api/sample/{run}/sim-1/release", {"version": state["version"]})
        assert answer.status_code == 403 and "is simulated" in answer.json()["error"]
    shutil.rmtree(folder)
