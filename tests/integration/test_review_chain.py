"""Tamper evidence of the review records on copies of a reviewed, released store: each write path
outside the review is refused in SQL or found by the verifier (`leukoscope verify`), which names the
first bad row; the report and the laboratory export refuse a broken store."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from leukoscope.results.review_store import ReviewStore
from leukoscope.results.store import ResultStore
from tests.cli_helpers import run_cli

from .release_helpers import give_evidence
from .review_helpers import finished_sample

SAMPLE = "S-1"
OTHER = "S-2"


@pytest.fixture(scope="module")
def reviewed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """S-1 reclassified, released, reopened, corrected and released again; S-2 in review."""
    database = tmp_path_factory.mktemp("chain") / "results.sqlite"
    run, _ = finished_sample(database, SAMPLE, cells=12, target=10)
    give_evidence(database, run, SAMPLE)
    run2, _ = finished_sample(database, OTHER, cells=6, target=6)
    with ResultStore(database) as results, ReviewStore(database) as reviews:
        reviews.open_review(results, run, SAMPLE)
        reviews.open_review(results, run2, OTHER)
        cell = reviews.cells(run, SAMPLE)[0]
        reviews.reclassify(run, SAMPLE, cell.fov, cell.cell_index, "MO", reviewer="Ann Lee",
                           version=0)  # fmt: skip
        state = reviews.release(run, SAMPLE, reviewer="Ann Lee", version=1)
        state = reviews.reopen(run, SAMPLE, reviewer="Bo Chen", reason="recount cell 0/0",
                               version=state.version)  # fmt: skip
        reviews.reclassify(run, SAMPLE, cell.fov, cell.cell_index, "LYM", reviewer="Bo Chen",
                           version=1)  # fmt: skip
        reviews.release(run, SAMPLE, reviewer="Bo Chen", version=state.version + 1)
        other = reviews.cells(run2, OTHER)[0]
        reviews.reclassify(run2, OTHER, other.fov, other.cell_index, "EOS", reviewer="Ann Lee",
                           version=0)  # fmt: skip
        assert reviews.verify() == []
    return database


def _copy(reviewed: Path, tmp_path: Path) -> Path:
    target = tmp_path / "copy.sqlite"
    shutil.copy(reviewed, target)
    return target


def _problems(database: Path) -> list[str]:
    with ReviewStore(database, read_only=True) as reviews:
        return reviews.verify()


REFUSED_IN_SQL = [
    "REPLACE INTO review_audit SELECT id, run_id, sample_id, fov, cell_index, action, from_label,"
    " to_label, 'Eve', time_s, reason, prev_hash, row_hash FROM review_audit WHERE id=1",
    "UPDATE review_audit SET reviewer='Eve' WHERE id=1",
    "DELETE FROM review_audit WHERE id=2",
    "INSERT INTO review_audit (run_id, sample_id, action, from_label, to_label, reviewer, time_s)"
    " VALUES ('r', 'S-1', 'release', 'open', 'released', 'Eve', 0)",
    "DELETE FROM review_cells",
    "INSERT OR REPLACE INTO review_cells SELECT run_id, sample_id, fov, cell_index, original,"
    " 'BAS', flagged, version FROM review_cells",
    "UPDATE review_cells SET original='BAS'",
    "DELETE FROM review_samples",
    "INSERT OR REPLACE INTO review_samples SELECT * FROM review_samples",
    "UPDATE review_releases SET reviewer='Eve'",
    "DELETE FROM review_releases",
    "REPLACE INTO review_releases SELECT * FROM review_releases",
]


@pytest.mark.parametrize("sql", REFUSED_IN_SQL)
def test_writes_outside_the_review_are_refused_in_sql(
    reviewed: Path, tmp_path: Path, sql: str
) -> None:
    database = _copy(reviewed, tmp_path)
    before = database.read_bytes()
    with sqlite3.connect(database) as db, pytest.raises(sqlite3.IntegrityError):
        db.execute(sql)
    db.close()
    assert _problems(database) == []
    assert database.read_bytes() == before


def _sql(*statements: str) -> Callable[[sqlite3.Connection], None]:
    def run(db: sqlite3.Connection) -> None:
        for statement in statements:
            db.execute(statement)

    return run


FOUND_BY_THE_VERIFIER = {
    "audit row rewritten": (
        _sql(
            "DROP TRIGGER review_audit_no_update",
            "UPDATE review_audit SET to_label='EOS' WHERE id=1",
        ),
        "review_audit row 1: does not follow the row before it or its content changed",
    ),
    "audit row removed": (
        _sql("DROP TRIGGER review_audit_no_delete", "DELETE FROM review_audit WHERE id=2"),
        "review_audit row 3: does not follow the row before it",
    ),
    "label changed with no audit row": (
        _sql(
            "UPDATE review_cells SET label='BAS', version=version+1 WHERE sample_id='S-2'"
            " AND label='EOS'"
        ),
        "review_cells S-2 0/0: label BAS, but the audit gives EOS",
    ),
    "released by someone else": (
        _sql("UPDATE review_samples SET reviewer='Eve' WHERE sample_id='S-1'"),
        "review_samples S-1: released by Eve, but the audit gives released by Bo Chen",
    ),
    "silently reopened": (
        _sql("UPDATE review_samples SET state='open', reviewer='' WHERE sample_id='S-1'"),
        "review_samples S-1: open by nobody, but the audit gives released by Bo Chen",
    ),
    "released differential rewritten": (
        _sql(
            "DROP TRIGGER review_releases_no_update",
            "UPDATE review_releases SET differential=replace(differential, '\"MO\": 2',"
            " '\"MO\": 3') WHERE release_no=2",
        ),
        "review_releases S-1 release 2: its differential is not the one the audit gives",
    ),
    "counted cell removed": (
        _sql(
            "DROP TRIGGER review_cells_no_delete",
            "DELETE FROM review_cells WHERE sample_id='S-2' AND fov=1",
        ),
        "review_cells S-2 1/0: not the classifier's counted cell",
    ),
}


@pytest.mark.parametrize("case", sorted(FOUND_BY_THE_VERIFIER))
def test_edits_that_pass_sql_are_found_and_named(
    reviewed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str], case: str,
) -> None:  # fmt: skip
    database = _copy(reviewed, tmp_path)
    tamper, expected = FOUND_BY_THE_VERIFIER[case]
    with sqlite3.connect(database) as db:
        tamper(db)
    db.close()
    problems = _problems(database)
    assert problems and problems[0].startswith(expected), problems
    capsys.readouterr()
    assert run_cli(monkeypatch, "verify", "--db", database) == 1
    err = capsys.readouterr().err
    assert err.splitlines()[0] == f"broken: {problems[0]}" and "Traceback" not in err
    for fmt in ("hl7", "json"):
        out = tmp_path / f"out.{fmt}"
        code = run_cli(monkeypatch, "report", SAMPLE, "--db", database, "--format", fmt, "-o", out)
        err = capsys.readouterr().err
        assert code == 2 and not out.exists(), err
        assert "changed outside the review" in err and len(err.strip().splitlines()) == 1


def test_an_intact_store_verifies_and_its_head_goes_out_with_the_result(
    reviewed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    database = _copy(reviewed, tmp_path)
    assert run_cli(monkeypatch, "verify", "--db", database) == 0
    with ReviewStore(database, read_only=True) as reviews:
        head = reviews.head()
        (run_id,) = {run for run, sample in reviews.states() if sample == SAMPLE}
        releases = reviews.releases(run_id, SAMPLE)
    assert f"chain head sha256:{head}" in capsys.readouterr().err
    out = tmp_path / "result.hl7"
    assert run_cli(monkeypatch, "report", SAMPLE, "--db", database, "--format", "hl7",
                   "-o", out) == 0  # fmt: skip
    assert f"chain head: sha256:{releases[-1].chain_head}" in out.read_text()


def test_a_store_written_before_the_chain_is_chained_once_on_open(
    reviewed: Path, tmp_path: Path
) -> None:
    database = _copy(reviewed, tmp_path)
    with sqlite3.connect(database) as db:  # as an older version left it: no chain columns
        db.execute("DROP TRIGGER review_audit_chained")
        db.execute("ALTER TABLE review_audit DROP COLUMN prev_hash")
        db.execute("ALTER TABLE review_audit DROP COLUMN row_hash")
        db.execute("UPDATE meta SET value='4' WHERE key='schema'")  # before the migration
    db.close()
    ReviewStore(database).close()  # opened for review by this version: chained in id order
    assert _problems(database) == []
