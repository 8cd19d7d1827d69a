"""The review app's HTML pages: the login form, the sample list and the (script-driven) review
page shell.

No inline script or style (the CSP allows only the app's own files); every text is escaped.
"""

from __future__ import annotations

import html
import json
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

from leukoscope.results.review_records import ReviewState
from leukoscope.results.store import SampleRecord

KEYS = (
    ("n", "NEU"), ("l", "LYM"), ("m", "MO"), ("e", "EOS"), ("b", "BAS"),
    ("i / x / t / r", "IG / NRBC / BLAST / RL, when the run's model names them"),
    ("a", "artefact (not a white cell: leaves the count)"),
    ("s", "smudge / unclassifiable (leaves the differential)"),
    ("→ / j", "next"), ("← / k", "previous"), ("f", "flagged cells only"),
    ("g", "group by the reviewed class (again: by the classifier's)"),
    ("Enter / z", "enlarge (all four lights)"), ("+ / -", "enlarged: zoom in, out"),
    ("] / [", "enlarged: brighter, darker"), ("c", "comment (the enlarged cell, else the sample)"),
    ("?", "this help"), ("Esc", "close"),
)  # fmt: skip
SORTS = (
    ("review", "flagged, then least confident"), ("p-low", "probability, lowest first"),
    ("p-high", "probability, highest first"), ("field", "field and cell"),
)  # fmt: skip


def esc(value: object) -> str:
    """HTML-escaped text."""
    return html.escape(str(value), quote=True)


def utc(seconds: float | None) -> str:
    """A Unix time as 'YYYY-MM-DD HH:MM UTC' ('' for None)."""
    if seconds is None:
        return ""
    return datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _head(title: str) -> str:
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{esc(title)}</title>"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="stylesheet" href="/static/review.css"></head>'
    )


def user_bar(user: str) -> str:
    """Who is logged in, and the button that logs out (static/account.js)."""
    return (
        f'<span id="user-box">Logged in as <b id="user">{esc(user)}</b> '
        '<button id="logout" type="button">Log out</button></span>'
    )


def login_html(csrf: str, next_page: str = "/") -> str:
    """The login form; static/account.js posts it to /api/login, then opens `next_page`."""
    return (
        f"{_head('Log in: leukoscope review')}"
        f'<body data-csrf="{esc(csrf)}" data-next="{esc(next_page)}"><header>'
        "<h1>leukoscope review: log in</h1></header><main>"
        '<form id="login" class="login">'
        '<label>Name <input id="login-user" name="user" autocomplete="username" '
        'maxlength="64" required autofocus></label>'
        '<label>Password <input id="login-password" name="password" type="password" '
        'autocomplete="current-password" maxlength="256" required></label>'
        '<button id="login-submit" type="submit">Log in</button>'
        '<p id="message" role="alert"></p></form>'
        "<p>No account? The operator adds one with <code>leukoscope user add NAME</code>.</p>"
        '</main><script src="/static/account.js"></script></body></html>'
    )


def review_label(state: ReviewState | None) -> str:
    """How the list names a sample's review state."""
    if state is None or (state.state == "open" and state.edits == 0):
        return "not reviewed"
    if state.released:
        return f"released by {state.reviewer}, {utc(state.released_s)}"
    return "in review"


def index_html(
    samples: list[SampleRecord],
    states: dict[tuple[str, str], ReviewState],
    database: str,
    csrf: str,
    user: str,
) -> str:
    """Every sample of the database, newest first, with its status and review state."""
    rows = []
    for s in reversed(samples):
        run, sample = s["run_id"], s["sample_id"]
        state = states.get((run, sample))
        href = f"/sample/{quote(run, safe='')}/{quote(sample, safe='')}"
        review = review_label(state)
        css = "released" if state and state.released else "pending"
        rows.append(
            f'<tr data-sample="{esc(sample)}"><td><a href="{esc(href)}">{esc(sample)}</a></td>'
            f'<td class="mono">{esc(run[:8])}</td><td><time data-s="{s["started_s"]}">'
            f"{esc(utc(s['started_s']))}</time></td>"
            f"<td>{esc(s['status'])}</td><td>{s['cells_counted']}</td>"
            f'<td class="{css}">{esc(review)}</td></tr>'
        )
    body = (
        "".join(rows) if rows else '<tr><td colspan="6">No samples in this database yet.</td></tr>'
    )
    return (
        f'{_head("leukoscope review")}<body data-csrf="{esc(csrf)}"><header>'
        f'<h1>Samples to review</h1><p class="mono">{esc(database)}</p>{user_bar(user)}'
        '<p id="message" role="alert"></p></header><main><table id="samples"><thead><tr>'
        "<th>sample</th><th>run</th><th>acquired</th><th>status</th><th>cells</th>"
        f"<th>review</th></tr></thead><tbody>{body}</tbody></table></main>"
        '<script src="/static/account.js"></script></body></html>'
    )


def state_block(state: dict[str, Any] | None) -> str:
    """The page's first state as a JSON data block (not executed; `<` escaped so no text in it
    can close the element), saving review.js a round trip."""
    if state is None:
        return ""
    text = json.dumps(state, separators=(",", ":")).replace("<", "\\u003c")
    return f'<script type="application/json" id="initial-state">{text}</script>'


def review_html(
    run_id: str, sample_id: str, csrf: str, state: dict[str, Any] | None = None, user: str = ""
) -> str:
    """The review page shell for the logged-in `user`; review.js fills it from the embedded state
    (or, without one, from `/api/sample/<run>/<sample>`)."""
    keys = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in KEYS)
    sorts = "".join(f'<option value="{k}">{esc(v)}</option>' for k, v in SORTS)
    return (
        f"{_head(f'Review {sample_id}')}"
        f'<body data-run="{esc(run_id)}" data-sample="{esc(sample_id)}" data-csrf="{esc(csrf)}">'
        f'<header><a href="/">← samples</a><h1>Review <span id="sample">{esc(sample_id)}</span>'
        f'</h1><p id="state" role="status">loading…</p>'
        f"{user_bar(user)}"
        '<button id="release" type="button">Sign off and release</button>'
        '<span id="partial-box"><label><input type="checkbox" id="partial"> partial</label> '
        '<input id="partial-reason" placeholder="why partial (sent with the result)" '
        'maxlength="500"></span>'
        '<span id="reopen-box"><input id="reopen-reason" placeholder="reason to reopen" '
        'maxlength="500"><button id="reopen" type="button">Reopen</button></span>'
        '<label><input type="checkbox" id="flagged-only"> flagged only (f)</label>'
        '<label><input type="checkbox" id="by-review"> group by reviewed class (g)</label>'
        f'<label>order <select id="sort">{sorts}</select></label>'
        '<button id="help-button" type="button" title="keyboard help (?)">Keys (?)</button>'
        '<p id="message" role="alert"></p></header>'
        '<div id="simulated-banner" class="banner" hidden>SIMULATED: counts from the simulator, '
        "not from a patient's blood; never released</div>"
        '<section id="evidence"><p id="model-evidence"></p><p id="fields-note"></p></section>'
        '<main><section id="differential-box"><h2>Differential</h2>'
        '<table id="differential"><thead><tr><th>class</th><th>reviewed</th><th>%</th>'
        "<th>95% interval</th><th>original</th><th>%</th></tr></thead><tbody></tbody></table>"
        '<p id="counts"></p><div id="sample-notes"><h3>Comments on the sample</h3>'
        '<ul id="sample-comments" class="comments"></ul>'
        '<input id="sample-comment" maxlength="500" placeholder="comment on the sample (c)">'
        '<button id="add-sample-comment" type="button">Add comment</button></div></section>'
        '<section id="galleries"></section><div id="pool" hidden></div></main>'
        '<div id="zoom" hidden><div id="zoom-bar"><label>zoom <input id="zoom-level" '
        'type="range" min="1" max="6" step="0.5"></label><label>brightness <input '
        'id="brightness" type="range" min="0.5" max="3" step="0.25"></label>'
        '<span id="zoom-settings"></span><span id="scale"><span id="scale-bar"></span> '
        '<span id="scale-label"></span></span>'
        '<button id="zoom-close" type="button">Close (Esc)</button></div>'
        '<div id="zoom-images"></div><p id="zoom-caption"></p>'
        '<ul id="cell-comments" class="comments"></ul><p><input id="cell-comment" '
        'maxlength="500" placeholder="comment on this cell (c)"> <button id="add-cell-comment" '
        'type="button">Add comment</button></p></div>'
        '<div id="help" hidden><div><h2>Keys</h2>'
        f'<dl id="keys">{keys}</dl><p>Keys are ignored while typing in a text field.</p>'
        "</div></div>"
        f'{state_block(state)}<script src="/static/account.js"></script>'
        '<script src="/static/review.js"></script></body></html>'
    )
