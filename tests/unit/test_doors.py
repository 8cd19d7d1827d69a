"""Bounds at the doors: config, acquisition.json, field files, endpoints, the source's wire check."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import tifffile

from leukoscope.acquisition_files import storage
from leukoscope.config import load_settings
from leukoscope.errors import ConfigError, ParameterError, StorageError
from leukoscope.instrument.simulator.acquisition import generate_acquisition
from leukoscope.pipeline import wire
from leukoscope.pipeline.endpoints import Endpoints
from leukoscope.pipeline.source_stage import FieldOutcome, field_message
from leukoscope.pipeline.sources import saved_acquisition
from leukoscope.types import MODALITIES, FrameSet


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ("[pipeline]\nworker_timeout_s = inf", "worker_timeout_s"),
        ("[pipeline]\nworker_timeout_s = 1e308", "worker_timeout_s"),
        ("[pipeline]\nmin_probability = nan", "min_probability"),
        ('[pipeline]\nlive_endpoint = "tcp://127.0.0.1:99999"', "live_endpoint"),
        ("[rig.camera]\npixel_size_um = 1e-5", "pixel_size_um"),
        ("[rig.camera]\nwidth = 100000", "width"),
        ("[rig.camera.exposure_us]\ncolor1 = inf", "color1"),
    ],
)
def test_config_refuses_what_no_rig_or_pipeline_can_use(
    tmp_path: Path, toml: str, key: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError, match=key) as caught:
        load_settings(path, environ={})
    assert str(caught.value).startswith(f"{path}: ")


def test_config_errors_from_the_environment_name_the_variable() -> None:
    env = {"LEUKOSCOPE__PIPELINE__BATCH_SISE": "4", "LEUKOSCOPE__PIPELINE__WORKER_TIMEOUT_S": "inf"}
    with pytest.raises(ConfigError) as caught:
        load_settings(None, environ=env)
    lines = str(caught.value).splitlines()
    assert any(
        line.startswith("environment LEUKOSCOPE__PIPELINE__BATCH_SISE: pipeline.batch_sise")
        for line in lines
    ), lines
    assert any(
        line.startswith("environment LEUKOSCOPE__PIPELINE__WORKER_TIMEOUT_S") for line in lines
    )
    assert not any(line.startswith("defaults") for line in lines)


def test_config_file_that_is_a_folder_or_nested_too_deep(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a folder"):
        load_settings(tmp_path, environ={})
    deep = tmp_path / "deep.toml"
    deep.write_text("x = " + "[" * 100_000 + "]" * 100_000)
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(deep, environ={})


@pytest.mark.parametrize("address", ["tcp://127.0.0.1:70000", "tcp://127.0.0.1:65532", "tcp://h:0"])
def test_endpoints_refuse_ports_past_65535(address: str) -> None:
    with pytest.raises(ParameterError, match="base port"):
        Endpoints.parse(address)
    assert Endpoints.parse("tcp://127.0.0.1:65531").live == "tcp://127.0.0.1:65535"


def small(folder: Path, fields: int = 2) -> Path:
    generate_acquisition(folder, "S-1", fields, frame_shape=(32, 32), cells_per_field=0.0)
    return folder


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"pixel_size_um": 1e-5}, "pixel_size_um"),
        ({"frame_shape": [100_000, 4]}, "frame_shape"),
        ({"bit_depth": 32}, "bit_depth"),
    ],
)
def test_acquisition_json_bounds(tmp_path: Path, change: dict[str, object], key: str) -> None:
    folder = small(tmp_path / "a")
    meta = json.loads((folder / storage.META_FILE).read_text())
    (folder / storage.META_FILE).write_text(json.dumps({**meta, **change}))
    with pytest.raises(StorageError, match=key):
        storage.read_acquisition_meta(folder)


def test_a_compressed_field_announcing_huge_pixels_is_refused_before_decoding(
    tmp_path: Path,
) -> None:
    folder = small(tmp_path / "a")
    bomb = np.zeros((4, 4096, 4096), np.uint16)  # 128 MiB decoded, a few KiB compressed
    names = {"axes": "CYX", "Channel": {"Name": [m.value for m in MODALITIES]}}
    tifffile.imwrite(
        storage.field_path(folder, 0), bomb, ome=True, compression="zlib", metadata=names
    )
    del bomb
    tracemalloc.start()
    try:
        with pytest.raises(StorageError, match="image shape"):
            storage.read_field(folder, 0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * 1024 * 1024, f"{peak / 2**20:.0f} MiB allocated before the refusal"


def test_a_stray_far_field_file_does_not_make_millions_of_fields(tmp_path: Path) -> None:
    folder = small(tmp_path / "a", fields=3)
    storage.field_path(folder, 9_999_999).write_bytes(b"stray")
    job = saved_acquisition(folder)
    assert job.fields_total is not None and job.fields_total <= 4


def test_a_field_the_wire_would_refuse_fails_alone_at_the_source() -> None:
    frame = np.zeros((4, 4), np.uint8)
    good = FrameSet("S-1", 0, MODALITIES, (frame,) * 4, (0.0,) * 4, (1.0,) * 4, MODALITIES,
                    ((0.0, 0.0),) * 4, "d", 0.25)  # fmt: skip
    assert isinstance(field_message("S-1", FieldOutcome(0, good)), wire.FrameSetMessage)
    for bad in (
        FrameSet("S-1", 1, MODALITIES, (frame,) * 4, (float("nan"),) * 4, (1.0,) * 4,
                 MODALITIES, ((0.0, 0.0),) * 4, "d", 0.25),
        FrameSet("S-1", 1, MODALITIES, (frame,) * 4, (0.0,) * 4, (1.0,) * 4, MODALITIES,
                 ((0.0, 0.0),) * 4, "x" * 300, 0.25),
        FrameSet("S-1", 1, MODALITIES, (frame,) * 4, (0.0,) * 4, (1.0,) * 4, MODALITIES,
                 ((0.0, 0.0),) * 4, "d", 5000.0),
    ):  # fmt: skip
        message = field_message("S-1", FieldOutcome(1, bad))
        assert isinstance(message, wire.FieldFailed)
        assert message.fov == 1 and message.stage == "source" and message.reason


def test_a_field_that_cannot_be_written_is_a_storage_error(tmp_path: Path) -> None:
    blocker = tmp_path / "S-1"
    blocker.write_text("a file where the sample folder should be")
    frame = np.zeros((4, 4), np.uint8)
    frameset = FrameSet("S-1", 0, MODALITIES, (frame,) * 4, (0.0,) * 4, (1.0,) * 4, MODALITIES,
                        ((0.0, 0.0),) * 4, "d", 0.25)  # fmt: skip
    with pytest.raises(StorageError, match="cannot create folder"):
        storage.write_field(blocker / "inner", frameset)
    with pytest.raises(StorageError, match="cannot write"):
        storage.atomic_write_bytes(blocker / "x.json", b"{}")
