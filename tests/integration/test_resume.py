"""Resuming an interrupted acquisition: saved fields kept, failed ones remembered, the rest acquired
on the same (simulated) rig into the same folder; other set-ups refused."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from leukoscope.acquisition_files import storage
from leukoscope.config import RigConfig
from leukoscope.errors import ParameterError, StorageError
from leukoscope.instrument.acquisition import FAILED_FIELDS_FILE, Acquisition
from leukoscope.instrument.rig import Rig, SimulationOptions, open_rig
from leukoscope.pipeline.resume import resume_args, resume_point, resumed_acquisition

SHAPE = (96, 128)


def rig_config() -> RigConfig:
    config = RigConfig()
    config.lights.timeout_s = 2.0  # generous: a loaded machine answers late
    config.lights.settle_ms = 0.0
    config.camera.pixel_format = "Mono12"
    config.camera.fetch_timeout_s = 1.0
    config.camera.retries = 1
    return config


@pytest.fixture
def rigs() -> Iterator[list[Rig]]:
    opened: list[Rig] = []
    yield opened
    for rig in opened:
        rig.close()


def simulated(
    rigs: list[Rig], config: RigConfig | None = None, drop: frozenset[int] = frozenset()
) -> Rig:
    options = SimulationOptions(seed=2, frame_shape=SHAPE, drop_triggers=drop)
    rig = open_rig(config or rig_config(), simulate=True, options=options)
    rigs.append(rig)
    return rig


def interrupted(rigs: list[Rig], folder: Path) -> None:
    """Fields 0 and 1 saved, field 2 failed (color3 timed out twice), then the run stops."""
    run = Acquisition(simulated(rigs, drop=frozenset({10, 11}))).run("S-1", 8, folder)
    assert [next(run).ok for _ in range(3)] == [True, True, False]
    run.close()  # as SIGTERM does: the generator's finally turns the lights off


def test_resume_keeps_saved_and_failed_fields_and_acquires_the_rest(
    rigs: list[Rig], tmp_path: Path
) -> None:
    folder = tmp_path / "S-1"
    interrupted(rigs, folder)
    before = {f: storage.field_path(folder, f).read_bytes() for f in (0, 1)}
    point = resume_point(folder, "S-1")
    assert (point.saved, point.next_fov) == ((0, 1), 3)
    assert list(point.failed) == [2] and "color3: no valid frame" in point.failed[2]

    job = resumed_acquisition(simulated(rigs), point, max_fields=6)
    outcomes = list(job.fields)
    assert [o.fov for o in outcomes] == [0, 1, 2, 3, 4, 5]
    assert [o.frameset is not None for o in outcomes] == [True, True, False, True, True, True]
    assert outcomes[2].reason == point.failed[2]
    assert job.simulated and job.acquisition == folder.resolve()
    assert storage.list_fields(folder) == [0, 1, 3, 4, 5]
    assert storage.read_acquisition_meta(folder).fields == 5  # the number saved, in all
    assert {f: storage.field_path(folder, f).read_bytes() for f in (0, 1)} == before
    recorded = json.loads((folder / FAILED_FIELDS_FILE).read_text())["failed"]
    assert [r["fov"] for r in recorded] == [2]  # the earlier failure is not forgotten
    assert rigs[-1].state.lit() == {}


def test_resume_refuses_what_would_mix_fields(rigs: list[Rig], tmp_path: Path) -> None:
    folder = tmp_path / "S-1"
    with pytest.raises(StorageError, match="nothing to resume"):
        resume_point(folder, "S-1")
    interrupted(rigs, folder)
    with pytest.raises(StorageError, match="holds sample 'S-1', not 'S-2'"):
        resume_point(folder, "S-2")
    with pytest.raises(ParameterError, match="--replace deletes them"):
        resume_point(folder, "S-1", replace=True)
    point = resume_point(folder, "S-1")
    brighter = rig_config()
    brighter.lights.channels[next(iter(brighter.lights.channels))].intensity_percent = 12.5
    with pytest.raises(StorageError, match="acquisition settings changed"):
        resumed_acquisition(simulated(rigs, brighter), point, 6)
    bigger = rig_config()
    bigger.camera.width, bigger.camera.height = 256, 256
    with pytest.raises(StorageError, match="camera is set to 256x256 px, its fields are 128x96"):
        resumed_acquisition(simulated(rigs, bigger), point, 6)
    zarr = rig_config()
    zarr.acquisition.format = "ome-zarr"
    with pytest.raises(
        StorageError, match=r"saved as ome-tiff and rig\.acquisition\.format is ome-zarr"
    ):
        resumed_acquisition(simulated(rigs, zarr), point, 6)
    real = point.meta.model_copy(update={"simulated": False})
    with pytest.raises(StorageError, match="its fields are real and this rig is simulated"):
        resumed_acquisition(simulated(rigs), replace(point, meta=real), 6)
    assert storage.list_fields(folder) == [0, 1]  # nothing was added by a refused resume


def test_a_stray_field_file_does_not_make_millions_of_fields(
    rigs: list[Rig], tmp_path: Path
) -> None:
    folder = tmp_path / "S-1"
    interrupted(rigs, folder)
    storage.field_path(folder, 9_999_999).write_bytes(storage.field_path(folder, 0).read_bytes())
    point = resume_point(folder, "S-1")
    assert point.next_fov <= 4 and 9_999_999 not in point.saved


def test_resume_args_repeat_how_the_run_was_started() -> None:
    args = resume_args("S 1", simulate=True, seed=5, out=Path("/data/acq"), cells=0, max_fields=12)
    assert args == (
        "run --sample 'S 1' --resume --simulate --seed 5 --cells 0 --max-fields 12 --out /data/acq"
    )
    assert resume_args("S-1", simulate=False, seed=0, out=None, cells=None, max_fields=200) == (
        "run --sample S-1 --resume --max-fields 200"
    )
