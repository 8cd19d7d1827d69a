"""Comments on cells and samples: audit rows of action 'comment' in the hash chain (verified),
over HTTP under the session's account, refused when malformed; an audit table made before
comments is rebuilt in place with its rows and hashes."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from leukoscope.results.review_store import ReviewStore

from .review_helpers import LiveApp, finished_sample


def test_comments_over_http_are_chained_audit_rows(tmp_path: Path) -> None:
    database = tmp_path / "results.sqlite"
    run, results = finished_sample(database, "S-1")
    cell = results[2].key
    url = f"/api/sample/{run}/S-1/comment"
    with LiveApp(database, user="Ann Lee") as live:
        state = live.post(url, {"text": "looks like a band form", "fov": cell.fov,
                                "cell_index": cell.cell_index}).json()  # fmt: skip
        assert [c["text"] for c in state["comments"]] == ["looks like a band form"]
        assert state["comments"][0]["reviewer"] == "Ann Lee"
        assert live.post(url, {"text": "stain pale overall"}).status_code == 200
        assert live.post(url, {"text": "no"}).status_code == 400  # too short
        assert live.post(url, {"text": "a b c", "fov": 0}).status_code == 400  # half a cell
        assert live.post(url, {"text": "a b c", "fov": 9, "cell_index": 9}).status_code == 400
        assert live.post(url, {"text": "a b c", "reviewer": "Bo"}).status_code == 400
        page = live.get(f"/api/sample/{run}/S-1").json()
        assert page["version"] == 0  # a comment changes no label
        assert page["crop_um"] == 24.0
    with ReviewStore(database) as reviews:
        rows = [a for a in reviews.audit(run, "S-1") if a.action == "comment"]
        assert [(a.fov, a.cell_index, a.reason) for a in rows] == [
            (cell.fov, cell.cell_index, "looks like a band form"),
            (None, None, "stain pale overall"),
        ]
        assert reviews.verify() == []


def test_an_audit_table_without_comments_is_widened(tmp_path: Path) -> None:
    database = tmp_path / "results.sqlite"
    run, results = finished_sample(database, "S-1")
    with LiveApp(database, user="Ann Lee") as live:  # one chained reclassification
        key = results[0].key
        live.post(f"/api/sample/{run}/S-1/cell/{key.fov}/{key.cell_index}",
                  {"label": "MO", "version": 0})  # fmt: skip
    with sqlite3.connect(database) as db:  # the table as it was before comments
        sql = db.execute("SELECT sql FROM sqlite_master WHERE name='review_audit'").fetchone()[0]
        for (name,) in db.execute(
            "SELECT name FROM sqlite_master WHERE type='trigger' AND tbl_name='review_audit'"
        ).fetchall():
            db.execute(f"DROP TRIGGER {name}")
        db.execute("ALTER TABLE review_audit RENAME TO old_audit")
        db.execute(sql.replace(", 'comment'", ""))
        db.execute("INSERT INTO review_audit SELECT * FROM old_audit")
        db.execute("DROP TABLE old_audit")
        db.execute("UPDATE meta SET value='4' WHERE key='schema'")  # before the migration
        hashes = db.execute("SELECT row_hash FROM review_audit").fetchall()
    with ReviewStore(database) as reviews:
        assert reviews.verify() == []
        reviews.comment(run, "S-1", None, None, "checked after the upgrade", reviewer="Bo Chen")
        assert reviews.verify() == []
        audit = reviews.audit(run, "S-1")
    assert [(a.row_hash,) for a in audit[:-1]] == hashes
    assert audit[-1].action == "comment"
    with sqlite3.connect(database) as db:  # the append-only guards are back
        try:
            db.execute("DELETE FROM review_audit")
        except sqlite3.DatabaseError as exc:
            assert "append-only" in str(exc)
        else:
            raise AssertionError("the audit could be deleted")
