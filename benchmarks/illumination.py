"""Accuracy of the shipped model under uneven, drifting illumination, with and without dark/flat
correction, against the same cells under flat, steady illumination.

    .venv/bin/python benchmarks/illumination.py --samples 3 --fields 16 --json runs/illumination.json

Per sample (seeded), the same simulated film is acquired three times, differing only in the light:

- flat: no vignetting, no lamp drift;
- uneven, uncorrected: `--vignetting` fall-off to the frame corners (each light centred a little
  differently, as the simulator draws it) and per-field lamp drift `--drift` (gain 1 + N(0, drift)
  per light), the frames saved as the camera gives them;
- uneven, corrected: the same raw frames, corrected before registration by the rig's code
  (`RigCorrection.apply`) with dark frames and flat fields measured as `calibrate` measures them
  (`--dark-frames` frames per light with every light off, averaged; `flatfield.flat_from` over
  `--flat-fields` raw fields of another area of the film, and the bright-field background level
  of those fields), on the same simulated rig.

Each acquisition goes through the batch path (`pipeline.service.analyse`, every cell classified:
`target_cells` 0); each classified cell is matched to the nearest true white cell
(centres within `count_accuracy.MATCH_PX`). Printed: accuracy per condition over the matched cells, and over
the cells matched in all three (paired). Lamp drift is per field and flat fields cannot remove it;
the correction scales each bright-field frame to the background level the calibration measured
(`flatfield.background_from`, as `calibrate` records it).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from count_accuracy import MATCH_PX
from leukoscope.acquisition_files.acquisition_meta import AcquisitionMeta, ChannelMeta
from leukoscope.acquisition_files.channels import channel_optics
from leukoscope.acquisition_files.storage import write_acquisition_meta, write_field
from leukoscope.config import LightsConfig, load_settings
from leukoscope.instrument import flatfield
from leukoscope.instrument.flatfield import RigCorrection
from leukoscope.instrument.simulator.acquisition import GROUND_TRUTH_FILE, ground_truth
from leukoscope.instrument.simulator.frames import (
    CaptureSettings,
    capture_frameset,
    registration_shift,
    shift_image,
)
from leukoscope.instrument.simulator.optics import vignette
from leukoscope.instrument.simulator.params import OpticsParams, SampleParams
from leukoscope.instrument.simulator.render import FieldRenderer
from leukoscope.instrument.simulator.sample import SimulatedSample
from leukoscope.instrument.simulator.sensor import Sensor
from leukoscope.pipeline.service import analyse, load_predictor
from leukoscope.pipeline.sources import saved_acquisition
from leukoscope.results.store import ResultStore
from leukoscope.types import MODALITIES, CellResult, FrameSet, Modality

CONDITIONS = ("flat", "uneven uncorrected", "uneven corrected")


def calibration(
    renderer: FieldRenderer, settings: CaptureSettings, frames: int, fields: int
) -> RigCorrection:
    """Dark frames and flat fields of the rig `renderer` stands for, measured as `calibrate` does."""
    sensor = Sensor()
    shape = renderer.sample.frame_shape
    dark = {}
    for index, modality in enumerate(MODALITIES):
        rng = np.random.default_rng([renderer.sample.seed, 77, index])
        stack = [
            sensor.read_out([], shape, settings.bit_depth, settings.gain_db, rng, index)
            for _ in range(frames)
        ]  # every light off: black level, read noise and the sensor's pattern
        dark[modality] = np.mean(stack, axis=0, dtype=np.float64).astype(np.float32)
    raw = [
        capture_frameset(renderer, sensor, "calibration", fov, settings, register=False)
        for fov in range(fields)
    ]
    flat = {m: flatfield.flat_from([fs.frame(m) for fs in raw], dark[m]) for m in MODALITIES}
    background = {
        m: flatfield.background_from([fs.frame(m) for fs in raw], dark[m], flat[m])
        for m in MODALITIES
        if m is not Modality.FLUORESCENCE
    }
    return RigCorrection(
        dark, flat, flatfield.now_utc(), settings.digest(), frames, fields, background
    )


def acquire(
    folder: Path,
    sample_id: str,
    renderer: FieldRenderer,
    settings: CaptureSettings,
    fields: int,
    correction: RigCorrection | None,
) -> None:
    """A saved acquisition of `fields` fields: raw frames, corrected (or not), then registered."""
    sensor, full = Sensor(), float(2**settings.bit_depth - 1)
    meta = AcquisitionMeta(
        sample_id=sample_id, modalities=list(MODALITIES),
        pixel_size_um=renderer.sample.params.pixel_size_um, bit_depth=settings.bit_depth,
        frame_shape=renderer.sample.frame_shape,
        channels=[ChannelMeta(modality=m, exposure_us=settings.exposures_us[m],
                              intensity_percent=settings.intensities_percent[m]) for m in MODALITIES],
        settings_digest=settings.digest(), fields=fields, simulated=True,
        correction=correction.label if correction is not None else "",
    )  # fmt: skip
    write_acquisition_meta(folder, meta)
    optics = channel_optics(LightsConfig(), MODALITIES)
    for fov in range(fields):
        raw = capture_frameset(renderer, sensor, sample_id, fov, settings, register=False)
        shifts = tuple(registration_shift(renderer.offsets_px[m]) for m in MODALITIES)
        frames = []
        for modality, image, shift in zip(MODALITIES, raw.frames, shifts, strict=True):
            if correction is not None:
                image = correction.apply(modality, image, full)
            frames.append(shift_image(image, shift))
        frameset: FrameSet = dataclasses.replace(raw, frames=tuple(frames), shifts_px=shifts)
        write_field(folder, frameset, optics=optics, simulated=True)
    truth = ground_truth(renderer.sample, renderer, fields, True)
    truth["sample_id"] = sample_id
    truth["vignetting"] = renderer.optics.vignetting
    corners = {m.value: round(float(_corner_mean(renderer, m)), 4) for m in MODALITIES}
    truth["illumination_corner_over_centre"] = corners
    (folder / GROUND_TRUTH_FILE).write_text(json.dumps(truth), encoding="utf-8")


def nearest_cell(result: CellResult, truth: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The true white cell of the result's field whose centre is nearest the detection's (None
    beyond `MATCH_PX`)."""
    x, y, w, h = result.bbox
    centre = np.array([y + h / 2, x + w / 2])
    best, best_distance = None, MATCH_PX
    for cell in truth:
        if cell["field"] == result.key.fov:
            distance = float(np.linalg.norm(centre - np.asarray(cell["centre_yx"], dtype=float)))
            if distance < best_distance:
                best, best_distance = cell, distance
    return best


def _corner_mean(renderer: FieldRenderer, modality: Any) -> float:
    """Mean illumination of the four corners over that of the centre."""
    vmap = vignette(renderer.sample.frame_shape, renderer.optics.vignetting, modality)
    h, w = vmap.shape
    corners = (vmap[0, 0] + vmap[0, -1] + vmap[-1, 0] + vmap[-1, -1]) / 4
    return float(corners / vmap[h // 2, w // 2])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=3)
    parser.add_argument("--fields", type=int, default=16)
    parser.add_argument("--frame", type=int, default=2048)
    parser.add_argument("--cells-per-field", type=float, default=25.0)
    parser.add_argument("--seed", type=int, default=3000)
    parser.add_argument("--vignetting", type=float, default=0.4, help="fall-off to the corners")
    parser.add_argument("--drift", type=float, default=0.08, help="lamp gain sd per field")
    parser.add_argument("--dark-frames", type=int, default=8)
    parser.add_argument("--flat-fields", type=int, default=9)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    settings = load_settings()
    settings.pipeline.target_cells = 0  # every cell of every field
    predictor, model_path = load_predictor(settings)
    capture = CaptureSettings()
    flat_optics = OpticsParams(vignetting=0.0, illumination_drift=0.0)
    uneven_optics = OpticsParams(vignetting=args.vignetting, illumination_drift=args.drift)
    params = SampleParams(frame_shape=(args.frame, args.frame), wbc_per_field=args.cells_per_field)
    started = time.perf_counter()
    rig = FieldRenderer(SimulatedSample(args.seed - 1, params), uneven_optics)  # another area
    correction = calibration(rig, capture, args.dark_frames, args.flat_fields)
    print(f"calibration: {args.dark_frames} dark frames, {args.flat_fields} fields "
          f"({time.perf_counter() - started:.0f} s)", flush=True)  # fmt: skip

    correct = {c: 0 for c in CONDITIONS}
    matched = {c: 0 for c in CONDITIONS}
    per_cell: dict[str, dict[tuple[int, int, int], bool]] = {c: {} for c in CONDITIONS}
    tmp = Path(tempfile.mkdtemp(prefix="leukoscope-illumination-"))
    try:
        for index in range(args.samples):
            sample = SimulatedSample(args.seed + index, params)
            renderers = {
                "flat": (FieldRenderer(sample, flat_optics), None),
                "uneven uncorrected": (FieldRenderer(sample, uneven_optics), None),
                "uneven corrected": (FieldRenderer(sample, uneven_optics), correction),
            }
            for condition, (renderer, applied) in renderers.items():
                sample_id = f"s{index:02d}-{condition.replace(' ', '-')}"
                folder = tmp / sample_id
                acquire(folder, sample_id, renderer, capture, args.fields, applied)
                truth = json.loads((folder / GROUND_TRUTH_FILE).read_text())["cells"]
                outcome = analyse(settings, [saved_acquisition(folder)], predictor=predictor,
                                  model_path=model_path, database=tmp / "results.sqlite")  # fmt: skip
                with ResultStore(outcome.database) as store:
                    results = store.results(outcome.run_id, sample_id)
                for result in results:
                    true_cell = nearest_cell(result, truth)
                    if true_cell is None:
                        continue
                    hit = result.cell_class.value == true_cell["class"]
                    matched[condition] += 1
                    correct[condition] += hit
                    per_cell[condition][(index, result.key.fov, int(true_cell["index"]))] = hit
                shutil.rmtree(folder, ignore_errors=True)
                print(f"sample {index} {condition}: {len(results)} cells, accuracy "
                      f"{correct[condition] / max(matched[condition], 1):.4f} so far "
                      f"({time.perf_counter() - started:.0f} s)", flush=True)  # fmt: skip
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    paired = set.intersection(*(set(per_cell[c]) for c in CONDITIONS))
    figures: dict[str, Any] = {
        "vignetting": args.vignetting, "drift": args.drift, "samples": args.samples,
        "fields": args.fields, "frame": args.frame, "seed": args.seed,
        "corner_over_centre": {m.value: round(_corner_mean(rig, m), 3) for m in MODALITIES},
        "paired_cells": len(paired), "seconds": round(time.perf_counter() - started, 1),
    }  # fmt: skip
    for condition in CONDITIONS:
        figures[condition] = {
            "cells": matched[condition],
            "accuracy": correct[condition] / max(matched[condition], 1),
            "paired_accuracy": sum(per_cell[condition][c] for c in paired) / max(len(paired), 1),
        }
        print(f"{condition}: accuracy {figures[condition]['accuracy']:.4f} "
              f"({correct[condition]}/{matched[condition]}), on the {len(paired)} cells found in "
              f"all three {figures[condition]['paired_accuracy']:.4f}")  # fmt: skip
    print(json.dumps(figures))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
