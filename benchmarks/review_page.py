"""How fast the review page of a freshly analysed sample is usable, as served, in the system's
headless Chromium.

    .venv/bin/python benchmarks/review_page.py [--cells 200] [--repeat 3] [--unprepared]

Simulates one acquisition (`leukoscope run --simulate`, about `--cells` cells at the native
0.25 um/px, 16 MB fields), then per repetition analyses it into a fresh results database with
`leukoscope batch` (which prepares the review pictures, timed apart), starts a fresh review app
(uvicorn in a thread: nothing in memory; the saved fields dropped from the file cache) and opens the sample's page in a fresh browser context
(nothing cached) logged in as a bench account. It measures from navigation: the page ready for keys,
the first screen's images decoded, then scrolling screen by screen until every image has been in
view and decoded, and the round trip of one keyboard reclassification until the differential
shows it. `--unprepared` drops the prepared pictures before serving: the page cuts them from the
saved fields, as for a sample analysed before pictures were prepared.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import uvicorn
from playwright.sync_api import Page, sync_playwright

from leukoscope.review.accounts import Accounts
from leukoscope.review.app import create_app

CLI = [sys.executable, "-m", "leukoscope"]
IMAGES_IN_VIEW = (
    "() => [...document.images].filter((i) => { const r = i.getBoundingClientRect();"
    " return r.bottom > 0 && r.top < innerHeight; }).every((i) => i.complete && i.naturalWidth > 0)"
)


def leukoscope(folder: Path, *args: str) -> float:
    """Run a leukoscope command in `folder`; its wall time in seconds."""
    start = time.perf_counter()
    subprocess.run([*CLI, *args], cwd=folder, check=True, capture_output=True, text=True)
    return time.perf_counter() - start


def evict(folder: Path) -> None:
    """Drop the saved fields from the operating system's file cache, as hours after the
    analysis (POSIX_FADV_DONTNEED: no root needed)."""
    for path in folder.iterdir():
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def scroll_through(page: Page) -> int:
    """Scroll screen by screen to the end, each screen's images decoded; how many screens."""
    screens = 1
    while page.evaluate("() => scrollY + innerHeight < document.body.scrollHeight - 2"):
        page.evaluate("() => scrollBy(0, innerHeight)")
        page.wait_for_function(IMAGES_IN_VIEW)
        screens += 1
    return screens


def first_view(browser: object, base: str, run: str, sample: str) -> tuple[float, ...]:
    """(ready, first screen decoded, all screens decoded, reclassification) in seconds."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
    page = context.new_page()
    page.goto(f"{base}/login")
    page.fill("#login-user", "Bench")
    page.fill("#login-password", "bench password")
    page.click("#login-submit")
    page.wait_for_url(f"{base}/")
    start = time.perf_counter()
    page.goto(f"{base}/sample/{run}/{sample}", wait_until="commit")
    page.wait_for_selector("body[data-ready='1']")
    ready = time.perf_counter() - start
    page.wait_for_function(IMAGES_IN_VIEW)
    first = time.perf_counter() - start
    screens = scroll_through(page)
    every = time.perf_counter() - start
    page.evaluate("() => scrollTo(0, 0)")
    before = page.locator("#counts").inner_text()
    start = time.perf_counter()
    page.keyboard.press("a")
    page.wait_for_function("(b) => document.getElementById('counts').textContent !== b", arg=before)
    edit = time.perf_counter() - start
    context.close()
    return ready, first, every, edit, float(screens)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cells", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--unprepared", action="store_true", help="drop the prepared pictures")
    args = parser.parse_args()
    browser_path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not browser_path:
        sys.exit("chromium not found")
    rows: list[tuple[float, ...]] = []
    batch_s: list[float] = []
    with tempfile.TemporaryDirectory() as name, sync_playwright() as driver:
        folder = Path(name)
        cells = str(args.cells)
        leukoscope(folder, "run", "--simulate", "--sample", "bench", "--cells", cells,
                   "--out", str(folder / "acq"), "--db", str(folder / "first.sqlite"))  # fmt: skip
        browser = driver.chromium.launch(executable_path=browser_path, args=["--no-sandbox"])
        for repetition in range(args.repeat):
            database = folder / f"bench{repetition}.sqlite"
            batch_s.append(leukoscope(folder, "batch", str(folder / "acq" / "bench"),
                                      "--cells", cells, "--db", str(database)))  # fmt: skip
            with sqlite3.connect(database) as db:
                run = str(db.execute("SELECT run_id FROM runs").fetchone()[0])
                if args.unprepared:
                    db.execute("DELETE FROM cell_pictures")
                    db.execute("DELETE FROM cell_pictures_samples")
            evict(folder / "acq" / "bench")
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
            base = f"http://127.0.0.1:{sock.getsockname()[1]}"
            rows.append(first_view(browser, base, run, "bench"))
            server.should_exit = True
            thread.join(10)
            sock.close()
            app.state.service.close()
        browser.close()
    kind = "unprepared (cut from the fields)" if args.unprepared else "prepared by batch"
    print(f"{args.cells} cells, {int(rows[0][4])} screens at 1280x900, pictures {kind}, "
          f"{args.repeat} repetitions (median, max):")  # fmt: skip
    names = ("ready for keys", "first screen's images", "every screen's images",
             "reclassify -> differential")  # fmt: skip
    for i, label in enumerate(names):
        values = [r[i] for r in rows]
        print(f"  {label:28s} {statistics.median(values):.3f} s  {max(values):.3f} s")
    print(f"  {'batch (with the pictures)':28s} {statistics.median(batch_s):.3f} s"
          f"  {max(batch_s):.3f} s")  # fmt: skip


if __name__ == "__main__":
    main()
