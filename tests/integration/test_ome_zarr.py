"""OME-Zarr (NGFF 0.4) fields: ome-zarr's reader sees four named, coloured channels; a field reads
back as the same FrameSet as its OME-TIFF twin; the reader refuses damaged or hostile stores."""

from __future__ import annotations

import json
import shutil
import sys
import zlib
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
import tifffile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ome_types import from_xml
from ome_zarr.io import parse_url
from ome_zarr.reader import Multiscales, Reader

from leukoscope.acquisition_files import storage
from leukoscope.config import LightsConfig, RigConfig
from leukoscope.errors import StorageError
from leukoscope.instrument.acquisition import Acquisition
from leukoscope.instrument.rig import SimulationOptions, open_rig
from leukoscope.instrument.simulator.acquisition import generate_acquisition
from leukoscope.types import MODALITIES, Modality

WHEN = datetime(2026, 11, 27, 9, 30, 5, tzinfo=timezone.utc)
SHAPE = (96, 128)


@pytest.fixture(scope="module")
def twins(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The same simulated sample (same seed) saved as OME-TIFF and as OME-Zarr."""
    root = tmp_path_factory.mktemp("twins")
    for fmt in ("ome-tiff", "ome-zarr"):
        generate_acquisition(
            root / fmt, "Z-1", 2, frame_shape=SHAPE, acquired_at=WHEN, field_format=fmt
        )
    return root / "ome-tiff", root / "ome-zarr"


def _copy(twins: tuple[Path, Path], tmp_path: Path) -> Path:
    folder = tmp_path / "copy"
    shutil.copytree(twins[1], folder)
    return folder


def test_ome_zarrs_reader_opens_four_named_coloured_channels(twins: tuple[Path, Path]) -> None:
    _, zarr_folder = twins
    assert (zarr_folder / "fov_0001.ome.zarr").is_dir()
    assert storage.read_acquisition_meta(zarr_folder).field_format == "ome-zarr"
    nodes = list(Reader(parse_url(str(zarr_folder / "fov_0000.ome.zarr")))())
    image = nodes[0]
    assert image.load(Multiscales) is not None
    meta = image.metadata
    assert meta["channel_names"] == [m.value for m in MODALITIES]
    assert [a["name"] for a in meta["axes"]] == ["c", "y", "x"]
    assert meta["coordinateTransformations"][0][0]["scale"] == [1.0, 0.25, 0.25]
    lights = LightsConfig().channels
    for colormap, modality in zip(meta["colormap"], MODALITIES, strict=True):
        hex_colour = lights[modality].display_color
        rgb = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
        assert colormap[-1] == pytest.approx(rgb)  # the ramp ends at the light's colour
    assert meta["contrast_limits"][0] == [0, 4095]  # 12-bit window
    pixels = np.asarray(image.data[0])
    assert pixels.shape == (4, *SHAPE) and pixels.dtype == np.uint16


def test_a_zarr_field_reads_back_as_its_tiff_twin_with_the_same_channel_metadata(
    twins: tuple[Path, Path],
) -> None:
    tiff_folder, zarr_folder = twins
    assert storage.list_fields(zarr_folder) == storage.list_fields(tiff_folder) == [0, 1]
    for fov in (0, 1):
        a, b = storage.read_field(tiff_folder, fov), storage.read_field(zarr_folder, fov)
        assert all(np.array_equal(x, y) for x, y in zip(a.frames, b.frames, strict=True))
        assert (a.timestamps_s, a.exposures_us, a.lit, a.shifts_px, a.bit_depth) == (
            b.timestamps_s,
            b.exposures_us,
            b.lit,
            b.shifts_px,
            b.bit_depth,
        )
    with tifffile.TiffFile(tiff_folder / "fov_0000.ome.tif") as tif:
        ome = from_xml(tif.ome_metadata)
    attrs = json.loads((zarr_folder / "fov_0000.ome.zarr" / ".zattrs").read_text())["leukoscope"]
    assert attrs["significant_bits"] == ome.images[0].pixels.significant_bits == 12
    assert attrs["acquisition_date"] == "2026-11-27T09:30:05"
    for ours, theirs in zip(attrs["channels"], ome.images[0].pixels.channels, strict=True):
        assert ours["name"] == theirs.name
        assert ours["excitation_wavelength_nm"] == theirs.excitation_wavelength
        assert ours["emission_wavelength_nm"] == theirs.emission_wavelength
        assert ours["illumination"] == theirs.illumination_type.value
        assert ours["color"] == "#{:02x}{:02x}{:02x}".format(*theirs.color.as_rgb_tuple())
    assert attrs["channels"][3]["name"] == Modality.FLUORESCENCE.value


def test_compressed_zarr_fields_read_back_identically(
    twins: tuple[Path, Path], tmp_path: Path
) -> None:
    frameset = storage.read_field(twins[0], 0)
    packed = storage.write_field(
        tmp_path / "z", frameset, compression="zlib", field_format="ome-zarr"
    )
    spec = json.loads((packed / "0" / ".zarray").read_text())
    assert spec["compressor"]["id"] == "zlib" and spec["filters"][0]["id"] == "delta"
    meta = storage.read_acquisition_meta(twins[1])
    storage.write_acquisition_meta(tmp_path / "z", meta)
    again = storage.read_field(tmp_path / "z", 0)
    assert all(np.array_equal(x, y) for x, y in zip(frameset.frames, again.frames, strict=True))
    unpacked = sum(f.stat().st_size for f in (twins[1] / "fov_0000.ome.zarr" / "0").rglob("*"))
    assert sum(f.stat().st_size for f in (packed / "0").rglob("*")) < unpacked


def _zarray(folder: Path) -> Path:
    return folder / "fov_0000.ome.zarr" / "0" / ".zarray"


def _edit_json(path: Path, change: object) -> None:
    data = json.loads(path.read_text())
    change(data)  # type: ignore[operator]
    path.write_text(json.dumps(data))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda f: (f / "fov_0000.ome.zarr" / "0" / "2" / "0" / "0").unlink(), "chunk missing"),
        (
            lambda f: (f / "fov_0000.ome.zarr" / "0" / "1" / "0" / "0").write_bytes(b"\0" * 10),
            "10 bytes",
        ),
        (lambda f: (f / "fov_0000.ome.zarr" / ".zattrs").unlink(), "missing"),
        (lambda f: (f / "fov_0000.ome.zarr" / ".zattrs").write_text("{not json"), "not valid JSON"),
        (
            lambda f: (f / "fov_0000.ome.zarr" / ".zattrs").write_bytes(b" " * (2 << 20)),
            "metadata over",
        ),
        (
            lambda f: _edit_json(_zarray(f), lambda d: d.update(shape=[4, 9000, 9000])),
            "image shape",
        ),
        (lambda f: _edit_json(_zarray(f), lambda d: d.update(dtype="<f8")), "pixel type"),
        (lambda f: _edit_json(_zarray(f), lambda d: d.update(chunks=[1, 1, 1])), "over 4096"),
        (
            lambda f: _edit_json(_zarray(f), lambda d: d.update(compressor={"id": "blosc"})),
            "compressor",
        ),
        (
            lambda f: _edit_json(
                f / "fov_0000.ome.zarr" / ".zattrs",
                lambda d: d["omero"]["channels"][0].update(label="color9"),
            ),
            "channel names",
        ),
        (lambda f: shutil.rmtree(f / "fov_0000.ome.zarr"), "missing field of view 0"),
    ],
)
def test_damaged_zarr_fields_are_refused_with_one_clear_error(
    twins: tuple[Path, Path], tmp_path: Path, damage: object, message: str
) -> None:
    folder = _copy(twins, tmp_path)
    damage(folder)  # type: ignore[operator]
    with pytest.raises(StorageError, match=message):
        storage.read_field(folder, 0)
    assert storage.read_field(folder, 1).fov == 1  # the other field still reads


def test_a_zlib_bomb_chunk_is_refused_before_zarr_inflates_it(
    twins: tuple[Path, Path], tmp_path: Path
) -> None:
    folder = tmp_path / "bomb"
    frameset = storage.read_field(twins[0], 0)
    storage.write_field(folder, frameset, compression="zlib", field_format="ome-zarr")
    storage.write_acquisition_meta(folder, storage.read_acquisition_meta(twins[1]))
    chunk = folder / "fov_0000.ome.zarr" / "0" / "0" / "0" / "0"
    bomb = zlib.compress(b"\0" * (16 << 20), 9)  # 16 MiB from a file smaller than a chunk
    assert len(bomb) < 24 * 1024
    chunk.write_bytes(bomb)
    with pytest.raises(StorageError, match="inflate"):
        storage.read_field(folder, 0)


def test_replace_clears_zarr_fields_but_not_foreign_folders(
    twins: tuple[Path, Path], tmp_path: Path
) -> None:
    folder = _copy(twins, tmp_path)
    storage.prepare_sample_folder(folder, replace=True)
    assert list(folder.iterdir()) == []
    folder = _copy(twins, tmp_path / "again")
    (folder / "notes").mkdir()
    with pytest.raises(StorageError, match="notes"):
        storage.prepare_sample_folder(folder, replace=True)
    assert (folder / "fov_0000.ome.zarr").is_dir()  # nothing was deleted


def test_an_unknown_field_format_is_refused(twins: tuple[Path, Path], tmp_path: Path) -> None:
    frameset = storage.read_field(twins[0], 0)
    with pytest.raises(StorageError, match="field format 'n5'"):
        storage.write_field(tmp_path, frameset, field_format="n5")


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_any_damage_to_a_zarr_field_is_read_or_refused_with_storage_error(
    twins: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    folder = tmp_path_factory.mktemp("fuzz") / "z"
    frameset = storage.read_field(twins[0], 0)
    storage.write_field(folder, frameset, compression="zlib", field_format="ome-zarr")
    storage.write_acquisition_meta(folder, storage.read_acquisition_meta(twins[1]))
    files = sorted(p for p in (folder / "fov_0000.ome.zarr").rglob("*") if p.is_file())
    target = data.draw(st.sampled_from(files), label="file")
    raw = bytearray(target.read_bytes())
    if data.draw(st.booleans(), label="truncate"):
        raw = raw[: data.draw(st.integers(0, len(raw)))]
    else:
        for _ in range(data.draw(st.integers(1, 8))):
            raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    target.write_bytes(bytes(raw))
    try:
        again = storage.read_field(folder, 0)
    except StorageError as exc:
        assert str(exc)
    else:  # a harmless change (a JSON space, a chunk that still inflates to its size)
        assert again.frames[0].shape == SHAPE


def test_an_acquisition_with_rig_acquisition_format_ome_zarr_saves_zarr_fields(
    tmp_path: Path,
) -> None:
    config = RigConfig()
    config.lights.settle_ms = 0.0
    config.camera.pixel_format = "Mono12"
    config.acquisition.format = "ome-zarr"
    options = SimulationOptions(seed=2, frame_shape=SHAPE)
    with open_rig(config, simulate=True, options=options) as rig:
        results = list(Acquisition(rig).run("R-1", 2, tmp_path / "R-1"))
    assert all(r.ok for r in results)
    assert [r.path.name for r in results if r.path] == ["fov_0000.ome.zarr", "fov_0001.ome.zarr"]
    meta = storage.read_acquisition_meta(tmp_path / "R-1")
    assert (meta.field_format, meta.fields, meta.bit_depth) == ("ome-zarr", 2, 12)
    for result in results:
        assert result.frameset is not None
        again = storage.read_field(tmp_path / "R-1", result.fov)
        assert all(
            np.array_equal(a, b) for a, b in zip(result.frameset.frames, again.frames, strict=True)
        )


def test_without_zarr_an_ome_zarr_acquisition_is_refused_before_any_capture(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "zarr", None)  # as on Python 3.10: `import zarr` fails
    config = RigConfig()
    config.acquisition.format = "ome-zarr"
    options = SimulationOptions(seed=2, frame_shape=SHAPE)
    refused = pytest.raises(StorageError, match="the ome-zarr format needs the zarr package")
    with open_rig(config, simulate=True, options=options) as rig, refused:
        Acquisition(rig)  # refused when the run is set up: no field is captured, none lost
