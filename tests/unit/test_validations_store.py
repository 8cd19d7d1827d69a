"""results/validations.py: the model_validations table (round trip, append-only, passing record)."""

from __future__ import annotations

import sqlite3
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from leukoscope.errors import ParameterError
from leukoscope.results.validations import (
    ValidationRecord,
    model_sha256_of,
    passing_validation,
    record_validation,
    validation_records,
)

from ..fakes.confined import on_read_only, python

SHA_A = "a" * 64
SHA_B = "b" * 64


def _record(**fields: object) -> ValidationRecord:
    base = ValidationRecord(
        id=0,
        model_sha256=SHA_A,
        rig_digest="0123456789abcdef",
        verdict="PASS",
        simulated=False,
        created_s=1000.0,
        validated_by="tech",
        samples=3,
        cells=412,
        accuracy=0.93,
        segmentation_recall=0.97,
        largest_bias_pp=2.5,
        largest_bias_class="NEU",
        model_path="/models/m.pt",
        failed=(),
        report="/out/validation.json",
    )
    return replace(base, **fields)  # type: ignore[arg-type]


def test_round_trip_and_filter(tmp_path: Path) -> None:
    db = tmp_path / "results.sqlite"
    assert validation_records(db) == []  # no file yet
    first = record_validation(db, _record(verdict="FAIL", failed=("accuracy 0.5 < 0.9",)))
    second = record_validation(db, _record(model_sha256=SHA_B, created_s=2000.0))
    assert (first.id, second.id) == (1, 2)
    assert validation_records(db) == [first, second]
    assert validation_records(db, SHA_B) == [second]
    assert first.failed == ("accuracy 0.5 < 0.9",) and not first.passing and second.passing
    with sqlite3.connect(db) as conn:
        assert validation_records(conn, SHA_A) == [first]


def test_database_without_the_table_reads_empty(tmp_path: Path) -> None:
    db = tmp_path / "other.sqlite"
    sqlite3.connect(db).close()
    assert validation_records(db) == []
    assert passing_validation(db, SHA_A, "0123456789abcdef") is None


def test_append_only(tmp_path: Path) -> None:
    db = tmp_path / "results.sqlite"
    record_validation(db, _record())
    conn = sqlite3.connect(db)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("UPDATE model_validations SET verdict='PASS'")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("DELETE FROM model_validations")
    conn.close()


def test_passing_picks_model_and_rig_and_never_simulated(tmp_path: Path) -> None:
    db = tmp_path / "results.sqlite"
    record_validation(db, _record(created_s=1.0))
    newest = record_validation(db, _record(created_s=5.0))
    record_validation(db, _record(created_s=9.0, simulated=True))  # newer, but simulated
    record_validation(db, _record(created_s=9.0, verdict="FAIL"))
    record_validation(db, _record(created_s=9.0, rig_digest="ffffffffffffffff"))
    assert passing_validation(db, SHA_A, "0123456789abcdef") == newest
    assert passing_validation(db, SHA_B, "0123456789abcdef") is None
    assert passing_validation(db, SHA_A, "1111111111111111") is None
    sim = _record(simulated=True)
    assert sim.verdict == "PASS" and not sim.passing


READ_ON_READ_ONLY_MEDIA = """
import sys
from pathlib import Path
from leukoscope.results.validations import passing_validation
db = Path(sys.argv[1])
try:
    (db.parent / "probe").write_text("x")
except OSError as exc:
    print(exc.strerror)
print(repr(passing_validation(db, sys.argv[2], sys.argv[3])))
print(sorted(p.name for p in db.parent.iterdir()))
"""


def test_read_only_media(tmp_path: Path) -> None:
    """The database on read-only media (a read-only bind mount in a mount namespace of its own,
    any user, tests/fakes/confined.py): no journal or WAL file can be made beside it."""
    media = tmp_path / "media"
    media.mkdir()
    db = media / "results.sqlite"
    stored = record_validation(db, _record())
    before = sorted(p.name for p in media.iterdir())
    code = python(READ_ON_READ_ONLY_MEDIA, str(db), SHA_A, "0123456789abcdef")
    done = subprocess.run(
        on_read_only(code, media), capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    refused, found, listed = done.stdout.splitlines()
    assert refused == "Read-only file system"  # the media really is read-only
    assert found == repr(stored)
    assert listed == repr(before)


def test_bad_records_refused(tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match="SHA-256"):
        record_validation(tmp_path / "r.sqlite", _record(model_sha256="abc"))
    with pytest.raises(ParameterError, match="verdict"):
        record_validation(tmp_path / "r.sqlite", _record(verdict="OK"))


def test_model_sha256_of() -> None:
    assert model_sha256_of(f"hs_mm_mimo 2026-01-01T00:00:00+00:00 sha256:{SHA_A}") == SHA_A
    assert model_sha256_of("hs_mm_mimo undated") == ""
    assert model_sha256_of("") == ""
