"""Review page details in a real headless Chromium: the released style stays on the header, the
status line in plain words and local time, no empty gallery in the flagged-only view, regrouping
by the reviewed class and sorting, comments on a cell and on the sample (audit rows, chained and
verified), the enlarged view's zoom, brightness and scale bar, and the keyboard help on `?`."""

from __future__ import annotations

from pathlib import Path

from leukoscope.results.review_store import ReviewStore

from ..integration.release_helpers import give_evidence
from ..integration.review_helpers import LiveApp, add_user, finished_sample
from .test_review_chromium import chromium, log_in, playwright


def test_review_page_details(tmp_path: Path) -> None:
    database = tmp_path / "results.sqlite"
    run, results = finished_sample(database, "S-1", cells=12)
    give_evidence(database, run, "S-1")
    add_user(database, "Ann Lee")
    errors: list[str] = []
    with LiveApp(database) as live, playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("pageerror", lambda e: errors.append(str(e)))
        log_in(page, live.base, f"/sample/{run}/S-1")
        status = page.locator("#state").inner_text()
        assert "version" not in status and "Not reviewed yet" in status
        # '?' shows the keys; Esc hides them
        page.keyboard.press("?")
        assert page.locator("#help").is_visible()
        assert "group by the reviewed class" in page.locator("#help").inner_text()
        page.keyboard.press("Escape")
        assert not page.locator("#help").is_visible()
        # flagged only: no heading without a visible cell
        page.keyboard.press("f")
        for heading in page.locator("#galleries h2").all():
            gallery = heading.locator("xpath=following-sibling::div[1]")
            assert gallery.locator("figure.cell:visible").count() > 0
        flagged_classes = {r.cell_class.value for r in results if r.flagged}
        assert page.locator("#galleries h2").count() == len(flagged_classes)
        page.keyboard.press("f")
        # regroup: the first cell reclassified moves to its new class's gallery with 'g'
        first = page.locator("figure.cell.current")
        cell_id = first.get_attribute("id")
        old = first.locator("xpath=..").get_attribute("data-class")
        target = "EOS" if old != "EOS" else "NEU"
        page.keyboard.press(target[0].lower())
        page.wait_for_function(
            "([i, t]) => document.getElementById(i).dataset.label === t", arg=[cell_id, target]
        )
        parent = f"document.getElementById('{cell_id}').parentElement.dataset.class"
        assert page.evaluate(parent) == old
        page.keyboard.press("g")
        assert page.evaluate(parent) == target
        assert "In review" in page.locator("#state").inner_text()
        # sorting by probability, lowest first, within each gallery
        page.select_option("#sort", "p-low")
        for gallery in page.locator("#galleries .gallery").all():
            shown = [
                float(t.split("p ")[1])
                for t in gallery.locator("figure.cell .meta").all_inner_texts()
            ]
            assert shown == sorted(shown)
        # the enlarged view: zoom, brightness, scale bar (10 um of a 24 um crop)
        page.keyboard.press("Enter")
        page.wait_for_function(
            "() => [...document.querySelectorAll('#zoom-images img')]"
            ".every((i) => i.complete && i.naturalWidth > 0)"
        )
        side = page.evaluate("() => document.querySelector('#zoom-images img').clientWidth")
        bar = page.evaluate("() => document.getElementById('scale-bar').offsetWidth")
        assert abs(bar - side * 10 / 24) <= 3
        page.keyboard.press("+")
        assert page.evaluate("() => document.querySelector('#zoom-images img').clientWidth") > side
        page.keyboard.press("]")
        assert "brightness(1.25)" in page.evaluate(
            "() => document.querySelector('#zoom-images img').style.filter"
        )
        # a comment on the enlarged cell, then one on the sample
        page.keyboard.press("c")
        page.keyboard.type("nucleus looks lobed, checked twice")
        page.keyboard.press("Enter")
        page.wait_for_function(
            "() => document.getElementById('cell-comments').textContent.includes('lobed')"
        )
        page.keyboard.press("Escape")  # leaves the text field
        page.keyboard.press("Escape")  # closes the enlarged view
        page.fill("#sample-comment", "smear thin at the edges")
        page.click("#add-sample-comment")
        page.wait_for_function(
            "() => document.getElementById('sample-comments').textContent.includes('thin')"
        )
        assert page.locator("figure.cell.commented").count() == 1
        # release: the green style stays on the header and status line
        page.click("#release")
        page.wait_for_function(
            "() => document.getElementById('state').textContent.startsWith('Released by')"
        )
        status = page.locator("#state").inner_text()
        assert "T" not in status.split(" on ")[1][:12] and "Z" not in status  # no ISO time
        weight = "(s) => getComputedStyle(document.querySelector(s)).fontWeight"
        assert page.evaluate(weight, "#counts") == "400"
        assert page.evaluate(weight, "#state") == "700"
        assert not page.evaluate("() => document.body.classList.contains('released')")
        browser.close()
    assert errors == []
    with ReviewStore(database) as reviews:
        audit = reviews.audit(run, "S-1")
        problems = reviews.verify()
    comments = [(a.fov is None, a.reason, a.reviewer) for a in audit if a.action == "comment"]
    assert comments == [
        (False, "nucleus looks lobed, checked twice", "Ann Lee"),
        (True, "smear thin at the edges", "Ann Lee"),
    ]
    assert problems == []
