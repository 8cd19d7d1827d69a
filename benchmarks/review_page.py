"""How fast the review page of a 200-cell sample is usable, in the system's headless Chromium.

    .venv/bin/python benchmarks/review_page.py [--cells 200] [--repeat 3]

Writes a finished sample of `--cells` cells (32 px tiles, as the shipped model's crops) into a
temporary results database, serves `leukoscope review` on a loopback port (uvicorn in a thread) and
measures, per repetition, in a fresh browser page logged in as a bench account: the time from
navigation to the page being ready
for keys (data loaded, galleries built), to every image in view decoded, and the round trip of one
keyboard reclassification until the differential shows it (no reload).
"""

from __future__ import annotations

import argparse
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import uvicorn
from playwright.sync_api import sync_playwright

from leukoscope.pipeline.store import ResultStore, png_thumbnail
from leukoscope.review.accounts import Accounts
from leukoscope.review.app import create_app
from leukoscope.types import CELL_CLASSES, CellKey, CellResult


def sample(database: Path, cells: int, side: int = 32) -> str:
    """A complete sample of `cells` cells over fields of 10, every fifth flagged."""
    rng = np.random.default_rng(0)
    results, thumbs = [], {}
    for i in range(cells):
        probs = rng.dirichlet(np.ones(len(CELL_CLASSES)) * 0.5)
        key = CellKey("bench", i // 10, i % 10)
        cls = int(np.argmax(probs))
        results.append(CellResult(key, CELL_CLASSES[cls], tuple(map(float, probs)),
                                  (tuple(map(float, probs)),), flagged=i % 5 == 0))  # fmt: skip
        thumbs[key] = png_thumbnail(rng.integers(0, 255, (side, 4 * side), dtype=np.uint8))
    with ResultStore(database) as store:
        run = store.start_run()
        fields = (cells + 9) // 10
        store.start_sample(run, "bench", target_cells=0, fields_total=fields)
        for fov in range(fields):
            store.add_field(run, "bench", fov, min(10, cells - 10 * fov))
        store.add_results(run, results, thumbs)
        store.finish_sample(run, store.summary(run, "bench"))
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cells", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    browser_path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not browser_path:
        sys.exit("chromium not found")
    ready: list[float] = []
    images: list[float] = []
    edit: list[float] = []
    with tempfile.TemporaryDirectory() as folder, sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=browser_path, args=["--no-sandbox"])
        for repetition in range(args.repeat):  # a fresh database, app and page each time
            database = Path(folder) / f"bench{repetition}.sqlite"
            run = sample(database, args.cells)
            with Accounts(database) as accounts:
                accounts.add_user("Bench", "bench password")
            app = create_app(database)
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
            thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
            thread.start()
            while not server.started:
                time.sleep(0.02)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            base = f"http://127.0.0.1:{sock.getsockname()[1]}"
            page.goto(f"{base}/login")
            page.fill("#login-user", "Bench")
            page.fill("#login-password", "bench password")
            page.click("#login-submit")
            page.wait_for_url(f"{base}/")
            start = time.perf_counter()
            page.goto(f"{base}/sample/{run}/bench", wait_until="commit")
            page.wait_for_selector("body[data-ready='1']")
            ready.append(time.perf_counter() - start)
            page.wait_for_function(
                "() => [...document.images].filter((i) => i.getBoundingClientRect().top"
                " < innerHeight).every((i) => i.complete && i.naturalWidth > 0)"
            )
            images.append(time.perf_counter() - start)
            before = page.locator("#counts").inner_text()
            start = time.perf_counter()
            page.keyboard.press("a")
            page.wait_for_function(
                "(b) => document.getElementById('counts').textContent !== b", arg=before
            )
            edit.append(time.perf_counter() - start)
            page.close()
            server.should_exit = True
            thread.join(10)
            sock.close()
            app.state.service.close()
        browser.close()
    print(f"{args.cells} cells, {args.repeat} repetitions (median, max):")
    for name, values in (("ready for keys", ready), ("images in view", images),
                         ("reclassify -> differential", edit)):  # fmt: skip
        print(f"  {name:28s} {statistics.median(values):.3f} s  {max(values):.3f} s")


if __name__ == "__main__":
    main()
