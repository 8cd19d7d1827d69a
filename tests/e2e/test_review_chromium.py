"""The review page in a real headless Chromium (driven by Playwright, the system's Chromium):
logging in through the login page (a wrong password first), keyboard reclassification, an artefact, next/previous, the flagged filter, the enlarged view and
sign-off; then the store's audit, the recomputed differential and intervals, the lock and the
report's reviewed figures are checked. Screenshots go to tmp (or $LEUKOSCOPE_SCREENSHOTS, which is
how docs/img/review*.png are made).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from leukoscope.acquisition_files import storage
from leukoscope.classifier.infer import Predictor
from leukoscope.config import PipelineConfig
from leukoscope.pipeline.runner import run_embedded
from leukoscope.pipeline.service import model_version
from leukoscope.pipeline.sources import saved_acquisition
from leukoscope.report.data import gather_report
from leukoscope.report.export import report_document
from leukoscope.results.counts import clopper_pearson
from leukoscope.results.review_records import ReviewConflict
from leukoscope.results.review_store import ReviewStore
from leukoscope.results.store import ResultStore

from ..integration.pipeline_helpers import small_acquisition, untrained_checkpoint
from ..integration.release_helpers import give_evidence
from ..integration.review_helpers import PASSWORD, LiveApp, add_user, finished_sample

try:
    from playwright import sync_api as playwright
except ImportError:  # installed with the dev extras (scripts/install.sh); CI must have it
    if os.environ.get("CI", "").lower() == "true":
        raise
    pytest.skip("playwright not installed: run scripts/install.sh", allow_module_level=True)

SAMPLE = "e2e-review.1"
CLASSES = ["NEU", "LYM", "MO", "EOS", "BAS"]
NATIVE_PX = 96
KEY = {"NEU": "n", "LYM": "l", "MO": "m", "EOS": "e", "BAS": "b"}


def as_acquired(folder: Path) -> Path:
    """The simulated fields re-saved as a real rig saves them (marked acquired, in
    acquisition.json and every field): a sample the lab may release."""
    meta = storage.read_acquisition_meta(folder).model_copy(update={"simulated": False})
    storage.write_acquisition_meta(folder, meta)
    for fov in storage.list_fields(folder):
        storage.write_field(folder, storage.read_field(folder, fov), simulated=False)
    return folder


def chromium() -> str:
    """The system Chromium; skip without one, except in CI where it must be installed."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    message = "chromium not found: run scripts/install.sh as root or apt-get install chromium"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message} (CI must install it)", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="module")
def analysed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """Simulated fields saved as a real rig saves them, analysed by the embedded pipeline
    (untrained model: cells get flagged), the model validated for the rig."""
    root = tmp_path_factory.mktemp("review")
    model = untrained_checkpoint(root / "model.pt")
    predictor = Predictor.load(model, backend="torch", threads=1)
    folder = as_acquired(small_acquisition(root / "acq", SAMPLE, 4, seed=5))
    database = root / "results.sqlite"
    with ResultStore(database) as store:
        run_id = store.start_run(
            model_path=str(model), model_version=model_version(predictor, model)
        )
        run_embedded(
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
    give_evidence(database, run_id, SAMPLE)  # a passing validation of the model on this rig
    yield database, run_id


def _screens(tmp_path: Path) -> Path:
    chosen = os.environ.get("LEUKOSCOPE_SCREENSHOTS")
    return Path(chosen) if chosen else tmp_path


def _count(page: Any, cls: str) -> int:
    return int(page.locator(f'#differential tr[data-class="{cls}"] td.count').inner_text())


def log_in(page: Any, base: str, path: str) -> None:
    """Open `path` without a session: the login page; a wrong password is refused, the right
    one leads back to `path`, logged in as Ann Lee."""
    page.goto(f"{base}{path}")
    page.wait_for_url(f"{base}/login?next={path}")
    page.fill("#login-user", "Ann Lee")
    page.fill("#login-password", "not the password")
    page.press("#login-password", "Enter")
    page.wait_for_function(
        "() => document.getElementById('message').textContent.includes('wrong name')"
    )
    page.fill("#login-password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_selector("body[data-ready='1']", timeout=15_000)
    assert page.url == f"{base}{path}"
    assert page.locator("#user").inner_text() == "Ann Lee"
    assert page.locator("#reviewer").count() == 0  # nobody types a name any more


def test_login_in_the_browser(tmp_path: Path) -> None:
    """Log in through the page, reclassify a cell (audited under the account), log out."""
    database = tmp_path / "results.sqlite"
    run, _ = finished_sample(database, "S-1")
    add_user(database, "Ann Lee")
    errors: list[str] = []
    with LiveApp(database) as live, playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        page = browser.new_page()
        page.on("pageerror", lambda e: errors.append(str(e)))
        log_in(page, live.base, f"/sample/{run}/S-1")
        page.keyboard.press("a")
        page.wait_for_function("() => document.querySelector('figure.cell.removed') !== null")
        page.click("#logout")
        page.wait_for_url(f"{live.base}/login")
        page.goto(f"{live.base}/")  # the session is gone
        page.wait_for_url(f"{live.base}/login")
        browser.close()
    assert errors == []
    with ReviewStore(database) as reviews:
        audit = reviews.audit(run, "S-1")
    assert [(a.action, a.to_label, a.reviewer) for a in audit] == [
        ("reclassify", "ARTEFACT", "Ann Lee")
    ]


def test_keyboard_review_and_sign_off(analysed: tuple[Path, str], tmp_path: Path) -> None:
    database, run = analysed
    shots = _screens(tmp_path)
    add_user(database, "Ann Lee")
    with LiveApp(database, user="Ann Lee") as live:  # the test's own client, logged in
        before = live.get(f"/api/sample/{run}/{SAMPLE}").json()
        first = before["cells"][0]
        picture = live.get(
            f"/img/{run}/{SAMPLE}/{first['fov']}/{first['cell_index']}/composite.png"
        )
        assert picture.headers["x-leukoscope-crop"] == "native"  # re-cut from the acquisition
        image = cv2.imdecode(np.frombuffer(picture.body, np.uint8), cv2.IMREAD_COLOR)
        assert image.shape == (NATIVE_PX, NATIVE_PX, 3)  # 24 um at 0.25 um/px, not the 32 px crop
        cells = before["cells"]
        assert len(cells) >= 6, "the simulated sample needs at least six cells"
        # what the keys will do: the first three cells each to the next class, the fifth artefact
        targets = [CLASSES[(CLASSES.index(c["original"]) + 1) % 5] for c in cells[:3]]
        errors: list[str] = []
        with playwright.sync_playwright() as driver:
            browser = driver.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            log_in(page, live.base, f"/sample/{run}/{SAMPLE}")
            assert page.locator("figure.cell").count() == len(cells)
            for i, target in enumerate(targets):
                page.keyboard.press(KEY[target])
                page.wait_for_function(
                    "([id, label]) => document.getElementById(id).dataset.label === label",
                    arg=[f"cell-{cells[i]['fov']}-{cells[i]['cell_index']}", target],
                )
            page.keyboard.press("j")  # next (cell 5), previous (cell 4), next again: cell 5
            page.keyboard.press("k")
            page.keyboard.press("ArrowRight")
            page.keyboard.press("a")
            fifth = f"cell-{cells[4]['fov']}-{cells[4]['cell_index']}"
            page.wait_for_function(
                "(id) => document.getElementById(id).dataset.label === 'ARTEFACT'", arg=fifth
            )
            assert "artefacts 1" in page.locator("#counts").inner_text()
            page.screenshot(path=str(shots / "review.png"))
            page.keyboard.press("f")  # flagged only
            flagged = sum(c["flagged"] for c in cells)
            assert page.locator("figure.cell:visible").count() == flagged
            page.keyboard.press("f")
            page.keyboard.press("Enter")  # enlarge the current cell with all four lights
            page.wait_for_selector("#zoom:not([hidden])")
            assert page.locator("#zoom-images img").count() == 5
            page.wait_for_function(
                "() => [...document.querySelectorAll('#zoom-images img')]"
                ".every((i) => i.complete && i.naturalWidth > 0)"
            )
            page.screenshot(path=str(shots / "review-zoom.png"))
            page.keyboard.press("Escape")
            shown = {c: _count(page, c) for c in CLASSES}  # updated without a reload
            page.click("#release")
            page.wait_for_function(
                "() => document.getElementById('state').textContent.startsWith('Released by')"
            )
            assert "Ann Lee" in page.locator("#state").inner_text()
            page.keyboard.press("n")  # locked: refused with a message, nothing changes
            page.wait_for_function(
                "() => document.getElementById('message').textContent.includes('released by')"
            )
            page.click("#logout")  # the session ends: back to the login page
            page.wait_for_url(f"{live.base}/login")
            page.goto(f"{live.base}/")
            page.wait_for_url(f"{live.base}/login")
            browser.close()
        # the only console errors: the wrong password (401), the refused (409) edit of the
        # released sample
        assert errors == [
            "Failed to load resource: the server responded with a status of 401 (Unauthorized)",
            "Failed to load resource: the server responded with a status of 409 (Conflict)",
        ]
    # the store: audit rows, the recomputed differential and intervals, the lock
    with ResultStore(database, read_only=True) as results, ReviewStore(database) as reviews:
        audit = reviews.audit(run, SAMPLE)
        expected = [
            (c["fov"], c["cell_index"], c["original"], t)
            for c, t in zip(cells[:3], targets, strict=True)
        ] + [(cells[4]["fov"], cells[4]["cell_index"], cells[4]["original"], "ARTEFACT")]
        assert [(a.fov, a.cell_index, a.from_label, a.to_label) for a in audit[:4]] == expected
        assert {a.reviewer for a in audit} == {"Ann Lee"} and audit[4].action == "release"
        assert len(audit) == 5
        state = reviews.state(run, SAMPLE)
        assert state is not None and state.released and state.reviewer == "Ann Lee"
        with pytest.raises(ReviewConflict):
            reviews.reclassify(run, SAMPLE, cells[5]["fov"], cells[5]["cell_index"], "NEU",
                               reviewer="Bo", version=0)  # fmt: skip
        original = {c["cell_class"]: c["count"] for c in before["original"]}
        recount = dict(original)
        for _, _, old, new in expected:
            recount[old] -= 1
            if new != "ARTEFACT":
                recount[new] += 1
        assert shown == recount
        document = report_document(gather_report(results, SAMPLE))
    total = sum(recount.values())
    assert total == len(cells) - 1
    for row in document["differential"]:
        assert row["count"] == recount[row["cell_class"]]
        low, high = clopper_pearson(row["count"], total)
        assert row["ci_low_percent"] == pytest.approx(100 * low)
        assert row["ci_high_percent"] == pytest.approx(100 * high)
    assert document["review"]["state"] == "released"
    assert document["review"]["reviewer"] == "Ann Lee"
    assert {d["cell_class"]: d["count"] for d in document["review"]["original_differential"]} == (
        original
    )
