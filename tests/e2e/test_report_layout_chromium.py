"""The report's layout in headless Chromium: at 1280 px every column of a reviewed sample's
differential (Original included) is inside its section, not under the chart; printed on A4 (print
media at the A4 text width) nothing is wider than the page, and the PDF is A4."""

from __future__ import annotations

from pathlib import Path

from leukoscope.report.data import gather_report
from leukoscope.report.render import render_report
from leukoscope.results.review_store import ReviewStore
from leukoscope.results.store import ResultStore

from ..integration.review_helpers import finished_sample
from .test_review_chromium import chromium, playwright

A4_TEXT_PX = 703  # 210 mm less 2 x 12 mm margins at 96 px per inch
COLUMNS_INSIDE = """() => {
  const table = document.getElementById('differential');
  const box = table.closest('section').getBoundingClientRect();
  const chart = document.getElementById('chart');
  const heads = [...table.tHead.rows[0].cells].map((c) => c.getBoundingClientRect());
  const under = chart && heads.some((h) => {
    const c = chart.getBoundingClientRect();
    return h.right > c.left && h.left < c.right && h.bottom > c.top && h.top < c.bottom;
  });
  return { names: [...table.tHead.rows[0].cells].map((c) => c.textContent),
           outside: heads.filter((h) => h.right > box.right || h.left < box.left).length,
           under: Boolean(under) };
}"""


def test_report_fits_1280_and_a4(tmp_path: Path) -> None:
    database = tmp_path / "results.sqlite"
    run, results = finished_sample(database, "S-1", cells=40, target=40)
    with ResultStore(database) as store, ReviewStore(database) as reviews:
        reviews.open_review(store, run, "S-1")
        key = results[0].key
        reviews.reclassify(run, "S-1", key.fov, key.cell_index, "EOS", reviewer="Ann Lee",
                           version=0)  # fmt: skip
        page_html = render_report(gather_report(store, "S-1"), "html")
    report = tmp_path / "report.html"
    report.write_text(page_html, encoding="utf-8")
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(report.as_uri())
        found = page.evaluate(COLUMNS_INSIDE)
        assert "Original" in found["names"]
        assert found == {"names": found["names"], "outside": 0, "under": False}
        assert page.evaluate("() => document.documentElement.scrollWidth") <= 1280
        page.set_viewport_size({"width": A4_TEXT_PX, "height": 1000})
        page.emulate_media(media="print")
        assert page.evaluate("() => document.documentElement.scrollWidth") <= A4_TEXT_PX
        assert page.evaluate(COLUMNS_INSIDE)["outside"] == 0
        pdf = page.pdf(prefer_css_page_size=True)
        browser.close()
    media_box = pdf.split(b"/MediaBox", 1)[1][:40].decode("latin-1")
    width, height = (float(v) for v in media_box.split("]")[0].strip(" [").split()[2:4])
    assert (round(width), round(height)) == (595, 842)  # A4 in points
