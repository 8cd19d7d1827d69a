"""Generate a saved acquisition of a simulated sample, plus `ground_truth.json` for every white cell."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from leukoscope.acquisition_files.acquisition_meta import FieldFormat
from leukoscope.acquisition_files.channels import channel_optics
from leukoscope.acquisition_files.storage import (
    AcquisitionMeta,
    ChannelMeta,
    atomic_write_bytes,
    write_acquisition_meta,
    write_field,
)
from leukoscope.config import LightsConfig
from leukoscope.errors import ParameterError
from leukoscope.instrument.simulator.composition import DEFAULT_COMPOSITION
from leukoscope.instrument.simulator.frames import CaptureSettings, capture_frameset
from leukoscope.instrument.simulator.params import SampleParams
from leukoscope.instrument.simulator.render import FieldRenderer
from leukoscope.instrument.simulator.request import check_acquisition_request
from leukoscope.instrument.simulator.sample import SimulatedSample
from leukoscope.instrument.simulator.sensor import Sensor
from leukoscope.types import EXTRA_CLASSES, MODALITIES, CellClass

GROUND_TRUTH_FILE = "ground_truth.json"


def ground_truth(
    sample: SimulatedSample, renderer: FieldRenderer, fields: int, registered: bool
) -> dict[str, Any]:
    """Every white cell of fields 0..fields-1 (centres in color1 = registered frame coordinates)."""
    cells = [c.to_json(fov) for fov in range(fields) for c in sample.field(fov).cells]
    return {
        "seed": sample.seed,
        "fields": fields,
        "frame_shape": list(sample.frame_shape),
        "pixel_size_um": sample.params.pixel_size_um,
        "composition": {c.value: round(v, 4) for c, v in sample.params.composition.items()},
        "wbc_per_field": sample.params.wbc_per_field,
        "registered": registered,
        "offsets_px": {m.value: list(renderer.offsets_px[m]) for m in MODALITIES},
        "cells": cells,
        "platelets_per_1000um2": sample.params.platelets_per_1000um2,
        "platelets": [p.to_json(fov) for fov in range(fields) for p in sample.field(fov).platelets],
        "debris_per_1000um2": sample.params.debris_per_1000um2,
        "debris": [d.to_json(fov) for fov in range(fields) for d in sample.field(fov).debris],
        "smudge_fraction": sample.params.smudge_fraction,
        "lookalike_fraction": sample.params.lookalike_fraction,
        "smudge": [s.to_json(fov) for fov in range(fields) for s in sample.field(fov).smudge],
        "focus_drift": renderer.optics.focus_drift,
        "illumination_drift": renderer.optics.illumination_drift,
        "drift": [renderer.drift(fov).to_json(fov) for fov in range(fields)],
        **atypical_json(sample.params),
    }


def atypical_json(params: SampleParams) -> dict[str, Any]:
    """The atypical-cell settings of a ground-truth record; empty when none are drawn."""
    if params.atypical_fraction <= 0:
        return {}
    mix = dict(zip(EXTRA_CLASSES, params.atypical_probabilities(), strict=True))
    return {
        "atypical_fraction": params.atypical_fraction,
        "atypical_mix": {c.value: round(v, 4) for c, v in mix.items()},
    }


def generate_acquisition(
    out: Path,
    sample_id: str,
    fields: int,
    *,
    seed: int = 0,
    composition: Mapping[CellClass, float] | None = None,
    cells_per_field: float = 10.0,
    frame_shape: tuple[int, int] = (2048, 2048),
    pixel_size_um: float = 0.25,
    settings: CaptureSettings | None = None,
    register: bool = True,
    progress: Callable[[int], None] | None = None,
    acquired_at: datetime | None = None,
    field_format: FieldFormat = "ome-tiff",
    atypical_fraction: float = 0.0,
) -> AcquisitionMeta:
    """Write `fields` fields of a simulated sample to `out` (saved-acquisition format) + ground truth.

    With `register` the frames are aligned to color1 with the known offsets (as the rig's registration
    would, shifts recorded per frame); without it they keep the raw misregistration (shifts 0).
    `acquired_at` is the OME AcquisitionDate of every field (None: none, and the same seed gives
    byte-identical files). `field_format` is how the fields are saved (ome-tiff or ome-zarr).
    `atypical_fraction` of the white cells are drawn outside the five (IG, NRBC, BLAST, RL).
    """
    if fields < 0:
        raise ParameterError(f"number of fields must be >= 0, got {fields}")
    if not sample_id.strip():
        raise ParameterError("sample id must not be empty")
    check_acquisition_request(fields, frame_shape)
    params = SampleParams(
        frame_shape=frame_shape,
        pixel_size_um=pixel_size_um,
        wbc_per_field=cells_per_field,
        composition=dict(composition if composition is not None else DEFAULT_COMPOSITION),
        atypical_fraction=atypical_fraction,
    )
    sample = SimulatedSample(seed, params)
    renderer = FieldRenderer(sample)
    sensor = Sensor()
    settings = settings or CaptureSettings()
    meta = AcquisitionMeta(
        sample_id=sample_id,
        modalities=list(MODALITIES),
        pixel_size_um=pixel_size_um,
        bit_depth=settings.bit_depth,
        frame_shape=frame_shape,
        channels=[
            ChannelMeta(
                modality=m,
                exposure_us=settings.exposures_us[m],
                intensity_percent=settings.intensities_percent[m],
            )
            for m in MODALITIES
        ],
        settings_digest=settings.digest(),
        fields=fields,
        simulated=True,
        field_format=field_format,
    )
    out = Path(out)
    optics = channel_optics(LightsConfig(), MODALITIES)
    write_acquisition_meta(out, meta)
    for fov in range(fields):
        frameset = capture_frameset(renderer, sensor, sample_id, fov, settings, register=register)
        write_field(
            out,
            frameset,
            optics=optics,
            acquired_at=acquired_at,
            field_format=field_format,
            simulated=True,
        )
        if progress is not None:
            progress(fov)
    truth = ground_truth(sample, renderer, fields, register)
    truth["sample_id"] = sample_id
    atomic_write_bytes(out / GROUND_TRUTH_FILE, json.dumps(truth, indent=1).encode("utf-8"))
    return meta
