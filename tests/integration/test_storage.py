"""Saved acquisitions on real files: round trip, OME metadata, atomic writes, validating reader."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile

from leukoscope.acquisition_files import storage
from leukoscope.acquisition_files.storage import (
    AcquisitionMeta,
    ChannelMeta,
    list_fields,
    read_acquisition_meta,
    read_field,
    write_acquisition_meta,
    write_field,
)
from leukoscope.errors import StorageError
from leukoscope.instrument.simulator.acquisition import GROUND_TRUTH_FILE, generate_acquisition
from leukoscope.types import MODALITIES, FrameSet

SHAPE = (48, 64)


def _meta(**changes: object) -> AcquisitionMeta:
    data: dict[str, object] = {
        "sample_id": "S-1",
        "modalities": list(MODALITIES),
        "pixel_size_um": 0.25,
        "bit_depth": 12,
        "frame_shape": SHAPE,
        "channels": [
            ChannelMeta(modality=m, exposure_us=2000.0, intensity_percent=50.0) for m in MODALITIES
        ],
        "fields": 2,
    }
    data.update(changes)
    return AcquisitionMeta.model_validate(data)


def _frameset(fov: int) -> FrameSet:
    rng = np.random.default_rng(fov)
    frames = tuple(rng.integers(0, 4096, SHAPE).astype(np.uint16) for _ in MODALITIES)
    return FrameSet(
        sample_id="S-1",
        fov=fov,
        modalities=MODALITIES,
        frames=frames,
        timestamps_s=(1.0, 1.1, 1.2, 1.3),
        exposures_us=(2000.0, 2000.0, 2000.0, 20000.0),
        lit=MODALITIES,
        shifts_px=((0.0, 0.0), (0.3, -0.2), (-0.1, 0.4), (2.5, -3.5)),
        settings_digest="abc123",
        pixel_size_um=0.25,
    )


@pytest.fixture
def acq(tmp_path: Path) -> Path:
    folder = tmp_path / "S-1"
    write_acquisition_meta(folder, _meta())
    write_field(folder, _frameset(0))
    write_field(folder, _frameset(1))
    return folder


def test_round_trip_is_pixel_exact_with_metadata(acq: Path) -> None:
    assert list_fields(acq) == [0, 1]
    assert read_acquisition_meta(acq) == _meta()
    for fov in (0, 1):
        back, original = read_field(acq, fov), _frameset(fov)
        for a, b in zip(back.frames, original.frames, strict=True):
            assert a.dtype == b.dtype and np.array_equal(a, b)
        assert back.shifts_px == original.shifts_px
        assert back.timestamps_s == original.timestamps_s
        assert back.exposures_us == original.exposures_us
        assert back.lit == original.lit and back.sample_id == "S-1"
        assert back.settings_digest == "abc123" and back.pixel_size_um == 0.25


def test_ome_metadata_is_readable_by_tifffile(acq: Path) -> None:
    with tifffile.TiffFile(acq / "fov_0000.ome.tif") as tif:
        assert tif.is_ome
        assert tif.series[0].axes == "CYX" and tif.series[0].shape == (4, *SHAPE)
        pixels = tifffile.xml2dict(tif.ome_metadata or "")["OME"]["Image"]["Pixels"]
    assert [c["Name"] for c in pixels["Channel"]] == [m.value for m in MODALITIES]
    assert pixels["PhysicalSizeX"] == 0.25 and pixels["PhysicalSizeXUnit"] == "µm"
    assert [p["ExposureTime"] for p in pixels["Plane"]] == [2000.0, 2000.0, 2000.0, 20000.0]


def test_atomic_write_leaves_no_partial_file(acq: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    good = (acq / "fov_0001.ome.tif").read_bytes()

    def crash(handle: object, data: np.ndarray, **kwargs: object) -> None:
        handle.write(b"II*\x00 half a file")  # type: ignore[attr-defined]
        raise OSError("disk unplugged")

    monkeypatch.setattr(tifffile, "imwrite", crash)
    with pytest.raises(OSError, match="disk unplugged"):
        write_field(acq, _frameset(2))
    with pytest.raises(OSError, match="disk unplugged"):
        write_field(acq, _frameset(1))  # overwriting: the old file survives intact
    assert sorted(p.name for p in acq.iterdir()) == [
        "acquisition.json",
        "fov_0000.ome.tif",
        "fov_0001.ome.tif",
    ]
    assert (acq / "fov_0001.ome.tif").read_bytes() == good


def test_missing_or_garbled_metadata(acq: Path) -> None:
    meta = acq / "acquisition.json"
    meta.write_text("{not json", encoding="utf-8")
    with pytest.raises(StorageError, match=r"acquisition.json: not valid JSON"):
        read_field(acq, 0)
    meta.write_text(json.dumps({"sample_id": "S-1"}), encoding="utf-8")
    with pytest.raises(StorageError, match=r"acquisition.json: invalid acquisition metadata: "):
        read_acquisition_meta(acq)
    meta.unlink()
    with pytest.raises(StorageError, match=r"acquisition.json: missing acquisition metadata"):
        read_acquisition_meta(acq)


@pytest.mark.parametrize(
    ("meta", "message"),
    [
        (_meta(modalities=list(MODALITIES[:3]), channels=_meta().channels[:3]), "channel names"),
        (_meta(frame_shape=(48, 65)), r"image shape \(4, 48, 64\), expected \(4, 48, 65\)"),
        (_meta(bit_depth=8), "pixel type uint16, expected uint8"),
    ],
)
def test_field_that_does_not_match_the_metadata(
    acq: Path, meta: AcquisitionMeta, message: str
) -> None:
    write_acquisition_meta(acq, meta)
    with pytest.raises(StorageError, match=rf"fov_0000\.ome\.tif: {message}"):
        read_field(acq, 0)


def test_wrong_channel_names(acq: Path) -> None:
    data = tifffile.imread(acq / "fov_0000.ome.tif")
    names = {"Channel": {"Name": ["a", "b", "c", "d"]}, "axes": "CYX"}
    tifffile.imwrite(acq / "fov_0000.ome.tif", data, ome=True, metadata=names)
    with pytest.raises(StorageError, match=r"channel names \['a', 'b', 'c', 'd'\] do not match"):
        read_field(acq, 0)


@pytest.mark.parametrize("keep", [0.5, 0.98, 100])
def test_truncated_or_garbage_tiff(acq: Path, keep: float) -> None:
    path = acq / "fov_0001.ome.tif"
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)] if keep < 1 else b"\x00" * int(keep))
    with pytest.raises(StorageError, match=r"fov_0001\.ome\.tif: .*(truncated|unreadable)"):
        read_field(acq, 1)


def test_missing_field_and_folder(acq: Path, tmp_path: Path) -> None:
    with pytest.raises(StorageError, match=r"fov_0007\.ome\.tif: missing field of view 7"):
        read_field(acq, 7)
    with pytest.raises(StorageError, match="no such acquisition folder"):
        list_fields(tmp_path / "nowhere")


def test_writer_rejects_inconsistent_frames(tmp_path: Path) -> None:
    fs = _frameset(0)
    mixed = FrameSet(**{**fs.__dict__, "frames": (*fs.frames[:3], fs.frames[3][:10])})
    with pytest.raises(StorageError, match="one shape and dtype"):
        write_field(tmp_path, mixed)
    assert storage.list_fields(tmp_path) == []


def test_simulated_acquisition_of_ten_fields_reads_back(tmp_path: Path) -> None:
    out = tmp_path / "sim"
    meta = generate_acquisition(
        out, "demo", 10, seed=4, frame_shape=(128, 160), cells_per_field=3.0
    )
    assert list_fields(out) == list(range(10)) and read_acquisition_meta(out) == meta
    truth = json.loads((out / GROUND_TRUTH_FILE).read_text(encoding="utf-8"))
    assert truth["sample_id"] == "demo" and truth["fields"] == 10
    assert {c["field"] for c in truth["cells"]} <= set(range(10)) and len(truth["cells"]) > 10
    assert set(truth["offsets_px"]) == {m.value for m in MODALITIES}
    fs = read_field(out, 3)
    assert fs.frame(MODALITIES[3]).shape == (128, 160) and fs.frames[0].dtype == np.uint16
    # same seed: byte-identical files; another seed: different
    again = tmp_path / "again"
    generate_acquisition(again, "demo", 2, seed=4, frame_shape=(128, 160), cells_per_field=3.0)
    other = tmp_path / "other"
    generate_acquisition(other, "demo", 2, seed=5, frame_shape=(128, 160), cells_per_field=3.0)
    first = (out / "fov_0001.ome.tif").read_bytes()
    assert first == (again / "fov_0001.ome.tif").read_bytes()
    assert first != (other / "fov_0001.ome.tif").read_bytes()
