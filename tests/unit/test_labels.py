"""The labels file: every problem is one LabelError naming the file and line; matching is one-to-one."""

from __future__ import annotations

from pathlib import Path

import pytest

from leukoscope.config import Settings, load_settings
from leukoscope.errors import ConfigError, LabelError, StorageError
from leukoscope.pipeline.segmentation import SegmentationParams
from leukoscope.validation.labels import describe_acquisitions, read_labels
from leukoscope.validation.matching import match_points

DATA = Path(__file__).resolve().parents[1] / "data" / "bccd"
HEADER = "sample,fov,x_px,y_px,class,annotator\n"


@pytest.fixture(scope="module")
def acquisitions() -> dict:
    return describe_acquisitions([DATA / s for s in ("bccd-01", "bccd-02", "bccd-03")])


def labels_file(tmp_path: Path, body: str, header: str = HEADER) -> Path:
    path = tmp_path / "labels.csv"
    path.write_text(header + body, encoding="utf-8")
    return path


def test_the_shipped_labels_read_back(acquisitions: dict) -> None:
    labels = read_labels(DATA / "labels.csv", acquisitions)
    assert len(labels) == 12
    assert {lb.cell_class for lb in labels} == {"NEU", "LYM", "MO", "EOS", "BAS"}
    first = labels[0]
    assert (first.sample, first.fov, first.line, first.annotator) == ("bccd-01", 0, 2, "BCCD")
    assert first.is_white_cell


def test_optional_annotator_and_other_class(tmp_path: Path, acquisitions: dict) -> None:
    # columns in any order, annotator optional, class case-insensitive
    path = labels_file(tmp_path, "other,bccd-01,0,10,12\n", header="class,sample,fov,y_px,x_px\n")
    (label,) = read_labels(path, acquisitions)
    assert (label.cell_class, label.x_px, label.y_px, label.annotator) == ("OTHER", 12, 10, "")
    assert not label.is_white_cell


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("bccd-09,0,10,10,NEU\n", ":2: sample 'bccd-09' is not among the acquisitions given"),
        ("bccd-01,7,10,10,NEU\n", ":2: sample 'bccd-01' has no field 7"),
        ("bccd-01,x,10,10,NEU\n", ":2: fov 'x' is not a whole number"),
        ("bccd-01,0,184,10,NEU\n", ":2: point (184, 10) lies outside the 184 x 138 px frame"),
        ("bccd-01,0,10,-1,NEU\n", ":2: point (10, -1) lies outside"),
        ("bccd-01,0,ten,10,NEU\n", ":2: x_px 'ten' is not a number"),
        ("bccd-01,0,nan,10,NEU\n", ":2: x_px 'nan' is not a finite number"),
        (
            "bccd-01,0,10,10,PLATELET\n",
            ":2: unknown class 'PLATELET'; expected NEU, LYM, MO, EOS, BAS, IG, NRBC, BLAST, RL, "
            "OTHER",
        ),
        ("bccd-01,0,10,10,NEU\n\nbccd-01,0,10.3,10,LYM\n", ":4: duplicate of line 2"),
        ("bccd-01,0,10,10\n", ":2: 4 values for 5 columns"),
        ("", ": no labels (only a header)"),
    ],
)
def test_each_problem_is_one_error_naming_file_and_line(
    tmp_path: Path, acquisitions: dict, body: str, message: str
) -> None:
    path = labels_file(tmp_path, body, header="sample,fov,x_px,y_px,class\n")
    with pytest.raises(LabelError) as caught:
        read_labels(path, acquisitions)
    text = str(caught.value)
    assert text.startswith(str(path))
    assert message in text
    assert "\n" not in text


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("sample,fov,x_px,y_px\n", ":1: missing column class"),
        ("sample,fov,x_px,y_px,class,colour\n", ":1: unknown column 'colour'"),
        ("sample,fov,x_px,x_px,class\n", ":1: missing column y_px"),
    ],
)
def test_bad_header(tmp_path: Path, acquisitions: dict, header: str, message: str) -> None:
    with pytest.raises(LabelError, match=message):
        read_labels(labels_file(tmp_path, "", header=header), acquisitions)


def test_missing_or_empty_file(tmp_path: Path, acquisitions: dict) -> None:
    with pytest.raises(LabelError, match="labels file not found"):
        read_labels(tmp_path / "nope.csv", acquisitions)
    with pytest.raises(LabelError, match="empty file"):
        read_labels(labels_file(tmp_path, "", header=""), acquisitions)


def test_acquisitions_are_checked(tmp_path: Path) -> None:
    with pytest.raises(LabelError, match="sample 'bccd-01' is also in"):
        describe_acquisitions([DATA / "bccd-01", DATA / "bccd-01"])
    with pytest.raises(StorageError, match="missing acquisition metadata"):
        describe_acquisitions([tmp_path])


def test_matching_is_one_to_one_nearest_first() -> None:
    labels = [(0.0, 0.0), (0.0, 10.0)]
    detections = [(0.0, 4.0), (0.0, 30.0), (0.0, 9.0)]
    # label 1 is nearest to detection 2 (1 px); label 0 then takes detection 0 (4 px)
    assert match_points(labels, detections, radius_px=5.0) == [(0, 0), (1, 2)]
    # one detection between two labels goes to the nearer one only
    assert match_points([(0.0, 0.0), (0.0, 3.0)], [(0.0, 2.0)], radius_px=5.0) == [(1, 0)]
    assert match_points(labels, detections, radius_px=0.5) == []
    assert match_points([], detections, radius_px=5.0) == []


def test_segmentation_section_is_validated_and_reaches_the_params(tmp_path: Path) -> None:
    settings = load_settings(environ={"LEUKOSCOPE__PIPELINE__SEGMENTATION__MAX_CELL_UM": "8.5"})
    params = SegmentationParams.from_config(settings.pipeline.segmentation)
    assert params.max_cell_um == 8.5
    # the section's defaults are the segmentation's own defaults
    assert SegmentationParams.from_config(Settings().pipeline.segmentation) == SegmentationParams()
    bad = tmp_path / "bad.toml"
    bad.write_text("[pipeline.segmentation]\nmin_area_um2 = 300.0\nborder_um = -1\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(bad, environ={})
    assert "pipeline.segmentation.border_um = -1: Input should be greater than 0" in str(
        caught.value
    )


def test_a_labels_file_that_is_not_a_regular_file_is_refused(acquisitions: dict) -> None:
    with pytest.raises(LabelError, match="/dev/zero: not a regular file"):
        read_labels(Path("/dev/zero"), acquisitions)


def test_a_labels_file_is_bounded_in_bytes_and_rows(
    tmp_path: Path, acquisitions: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    from leukoscope.validation import labels

    body = "".join(f"bccd-01,0,{x},10,NEU,a\n" for x in range(10, 20))
    path = labels_file(tmp_path, body)
    monkeypatch.setattr(labels, "MAX_LABEL_ROWS", 9)
    with pytest.raises(LabelError, match="more than 9 labels"):
        read_labels(path, acquisitions)
    monkeypatch.setattr(labels, "MAX_LABEL_ROWS", 10)
    assert len(read_labels(path, acquisitions)) == 10
    monkeypatch.setattr(labels, "MAX_LABELS_BYTES", 100)
    with pytest.raises(LabelError, match="at most 100 bytes"):
        read_labels(path, acquisitions)
