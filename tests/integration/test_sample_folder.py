"""A new acquisition never mixes with an old one: non-empty folders are refused unless replaced."""

from __future__ import annotations

from pathlib import Path

import pytest

from leukoscope.acquisition_files import storage
from leukoscope.errors import StorageError


def old_acquisition(folder: Path, fields: int) -> None:
    folder.mkdir(parents=True)
    (folder / storage.META_FILE).write_text("{}")
    for fov in range(fields):
        storage.field_path(folder, fov).write_bytes(b"old")


def test_absent_and_empty_folders_are_fine(tmp_path: Path) -> None:
    assert storage.prepare_sample_folder(tmp_path / "new").is_dir()
    (tmp_path / "empty").mkdir()
    assert storage.prepare_sample_folder(tmp_path / "empty") == tmp_path / "empty"


def test_non_empty_folder_is_refused_and_left_alone(tmp_path: Path) -> None:
    folder = tmp_path / "S-1"
    old_acquisition(folder, 6)
    with pytest.raises(StorageError, match=r"not empty.*--replace"):
        storage.prepare_sample_folder(folder)
    assert storage.list_fields(folder) == list(range(6))


def test_replace_clears_the_old_acquisition(tmp_path: Path) -> None:
    folder = tmp_path / "S-1"
    old_acquisition(folder, 6)
    (folder / "failed_fields.json").write_text("{}")
    storage.prepare_sample_folder(folder, replace=True)
    assert list(folder.iterdir()) == []


def test_replace_never_deletes_what_is_not_an_acquisition(tmp_path: Path) -> None:
    folder = tmp_path / "home"
    old_acquisition(folder, 2)
    (folder / "thesis.docx").write_text("precious")
    with pytest.raises(StorageError, match=r"thesis\.docx"):
        storage.prepare_sample_folder(folder, replace=True)
    assert (folder / "thesis.docx").read_text() == "precious"
    assert storage.list_fields(folder) == [0, 1]


def test_a_file_in_place_of_the_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "S-1").write_text("x")
    with pytest.raises(StorageError, match="not a folder"):
        storage.prepare_sample_folder(tmp_path / "S-1", replace=True)
