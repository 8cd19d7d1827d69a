"""What the HTML report costs to write: seconds to gather and render a sample's report (median of
`--repeats`), the page's size and how many pictures it holds; optionally a screenshot of its cell
gallery in the system Chromium (Playwright), as in docs/report.md.

    .venv/bin/leukoscope run --simulate --sample demo          # 200 cells, fields saved
    .venv/bin/python benchmarks/report_gallery.py --db leukoscope.sqlite --sample demo
    .venv/bin/python benchmarks/report_gallery.py --db leukoscope.sqlite --sample demo \\
        --screenshot docs/img/report-gallery.png

Run it with another tree first on PYTHONPATH (a `git worktree` of an older commit) to compare.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from leukoscope.config import load_settings
from leukoscope.report.data import gather_report, open_results
from leukoscope.report.html import render_html


def screenshot(page: str, target: Path, width: int = 1280, height: int = 900) -> None:
    """The page from its gallery's jump links down, in the system Chromium."""
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("no chromium on PATH")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "report.html"
        path.write_text(page, encoding="utf-8")
        with sync_playwright() as driver:
            browser = driver.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            view = browser.new_page(viewport={"width": width, "height": height})
            view.goto(path.as_uri())
            view.locator("#gallery-section").scroll_into_view_if_needed()
            view.evaluate("document.getElementById('gallery-section').scrollIntoView()")
            target.parent.mkdir(parents=True, exist_ok=True)
            view.screenshot(path=str(target))
            browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--sample", required=True)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--screenshot", type=Path)
    options = parser.parse_args()
    settings = load_settings(None)
    times, page = [], ""
    for _ in range(options.repeats):
        start = time.perf_counter()
        with open_results(options.db) as store:
            data = gather_report(store, options.sample, settings=settings)
        page = render_html(data)
        times.append(time.perf_counter() - start)
    cells = data.summary.cells_counted
    images = page.count("data:image/png;base64,")
    print(
        f"{options.sample}: {cells} cells, {images} pictures, page {len(page) / 1e6:.2f} MB, "
        f"gather + render {statistics.median(times):.2f} s (median of {options.repeats}: "
        + ", ".join(f"{t:.2f}" for t in times)
        + ")"
    )
    if options.screenshot is not None:
        screenshot(page, options.screenshot)
        print(f"wrote {options.screenshot}")


if __name__ == "__main__":
    main()
