"""A finished sample written straight into a real results database, and the review app served on
a loopback port (with an account to log in as), for the review tests."""

from __future__ import annotations

import http.cookiejar
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import uvicorn

from leukoscope.pictures.png import encode_png
from leukoscope.results.store import ResultStore
from leukoscope.review.accounts import Accounts
from leukoscope.review.app import create_app
from leukoscope.types import CELL_CLASSES, CellKey, CellResult

TILE = 24
PASSWORD = "correct horse battery"


def cell_thumbnail(seed: int) -> bytes:
    """Four 24 px tiles side by side (color1, color2, color3, fluorescence): a dark disc on a
    bright background in the bright-field tiles, a bright disc on black in the fluorescence."""
    yy, xx = np.mgrid[:TILE, :TILE]
    disc = (yy - TILE / 2) ** 2 + (xx - TILE / 2) ** 2 < (4 + seed % 5) ** 2
    tiles = [np.where(disc, 60 + 10 * i, 200 - 5 * i) for i in range(3)]
    tiles.append(np.where(disc, 180, 10))
    return encode_png(np.concatenate(tiles, axis=1).astype(np.uint8))


def finished_sample(
    database: Path, sample_id: str = "S-1", cells: int = 12, target: int = 10
) -> tuple[str, list[CellResult]]:
    """A complete sample of `cells` cells over two fields (target `target`): classes cycle
    NEU, LYM, MO, EOS, BAS; every third cell is flagged. Returns the run id and the results."""
    per_field = (cells + 1) // 2
    results = []
    for i in range(cells):
        cls = i % len(CELL_CLASSES)
        probs = [0.1] * len(CELL_CLASSES)
        probs[cls] = 0.6 if i % 3 == 0 else 0.9 - 0.01 * i
        results.append(
            CellResult(
                key=CellKey(sample_id, i // per_field, i % per_field),
                cell_class=CELL_CLASSES[cls],
                probabilities=tuple(probs),
                head_probabilities=(tuple(probs),),
                flagged=i % 3 == 0,
                flag_reason="low probability 0.60 < 0.65" if i % 3 == 0 else "",
                bbox=(10 * i, 5, 20, 20),
            )
        )
    with ResultStore(database) as store:
        run_id = store.start_run(model_version="review-test")
        store.start_sample(run_id, sample_id, target_cells=target, fields_total=2)
        store.add_field(run_id, sample_id, 0, per_field)
        store.add_field(run_id, sample_id, 1, cells - per_field)
        store.add_results(
            run_id, results, {r.key: cell_thumbnail(i) for i, r in enumerate(results)}
        )
        store.finish_sample(run_id, store.summary(run_id, sample_id))
    return run_id, results


class Answer(NamedTuple):
    """An HTTP answer: status, headers, body."""

    status_code: int
    headers: dict[str, str]  # names lower-cased
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")


def _lower(items: Any) -> dict[str, str]:
    return {k.lower(): v for k, v in items}


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Redirects are answers to look at (303 to /login), not to follow."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def add_user(database: Path, name: str, password: str = PASSWORD) -> None:
    """A review account in the results database (kept as it is if it exists)."""
    with Accounts(database) as accounts:
        if accounts.account(name) is None:
            accounts.add_user(name, password)


class Client:
    """A urllib client of the app with its own cookie jar (its own session, access-token cookie
    and all, as a browser keeps them); redirects are not followed."""

    def __init__(self, base: str, csrf: str) -> None:
        self.base = base
        self.csrf = csrf
        self._opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), _NoRedirect()
        )

    def login(self, name: str, password: str = PASSWORD) -> Answer:
        """POST /api/login (the session cookie is kept when it succeeds)."""
        return self.post("/api/login", {"user": name, "password": password})

    def logout(self) -> Answer:
        """POST /api/logout."""
        return self.post("/api/logout", {})

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        request = urllib.request.Request(
            self.base + path, data=body, method=method, headers=headers or {}
        )
        try:
            with self._opener.open(request, timeout=20) as response:
                return Answer(response.status, _lower(response.headers.items()), response.read())
        except urllib.error.HTTPError as error:
            return Answer(error.code, _lower(error.headers.items()), error.read())

    def get(self, path: str, headers: dict[str, str] | None = None) -> Answer:
        return self.request("GET", path, headers=headers)

    def post(self, path: str, payload: dict[str, Any], *, csrf: bool = True) -> Answer:
        headers = {"Content-Type": "application/json"}
        if csrf:
            headers["X-CSRF-Token"] = self.csrf
        return self.request("POST", path, json.dumps(payload).encode(), headers)


class LiveApp(Client):
    """The review app served by uvicorn on a free loopback port, in a thread, and a client of it.
    With `user`, that account is made (password PASSWORD) and the client logged in as it."""

    def __init__(self, database: Path, *, user: str | None = None, **options: Any) -> None:
        self.database = database
        self.user = user
        self.app = create_app(database, **options)
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self.port = self._socket.getsockname()[1]
        super().__init__(f"http://127.0.0.1:{self.port}", self.app.state.csrf)
        self._server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning"))
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    def __enter__(self) -> LiveApp:
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("review app did not start")
            time.sleep(0.02)
        if self.user is not None:
            add_user(self.database, self.user)
            answer = self.login(self.user)
            if answer.status_code != 200:
                raise RuntimeError(f"login as {self.user!r} failed: {answer.text}")
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(10)
        self._socket.close()
        self.app.state.service.close()

    def client(self) -> Client:
        """Another client of the same app (no session yet)."""
        return Client(self.base, self.csrf)
