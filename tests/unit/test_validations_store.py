"""review/validations.py: the model_validations table (round trip, append-only, passing record)."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from leukoscope.errors import ParameterError
from leukoscope.review.validations import (
    ValidationRecord,
    model_sha256_of,
    passing_validation,
    record_validation,
    validation_records,
)

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


def test_read_only_file(tmp_path: Path) -> None:
    db = tmp_path / "results.sqlite"
    stored = record_validation(db, _record())
    db.chmod(0o444)
    tmp_path.chmod(0o555)  # no journal or WAL file can be made beside it
    try:
        assert passing_validation(db, SHA_A, "0123456789abcdef") == stored
    finally:
        tmp_path.chmod(0o755)
        db.chmod(0o644)


def test_bad_records_refused(tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match="SHA-256"):
        record_validation(tmp_path / "r.sqlite", _record(model_sha256="abc"))
    with pytest.raises(ParameterError, match="verdict"):
        record_validation(tmp_path / "r.sqlite", _record(verdict="OK"))


def test_model_sha256_of() -> None:
    assert model_sha256_of(f"hs_mm_mimo 2026-01-01T00:00:00+00:00 sha256:{SHA_A}") == SHA_A
    assert model_sha256_of("hs_mm_mimo undated") == ""
    assert model_sha256_of("") == ""
