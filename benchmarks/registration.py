"""Registration residuals on the simulated rig, against the simulator's known inter-modality shifts.

Runs the real acquisition path (emulated light controller on a pty, simulated camera, per-field
registration, no prior calibration) on several simulated rigs, each with its own random misregistration
(colours within +-1 px, fluorescence within +-5 px, off any grid), and compares each field's applied
shift with the ground truth -(offset - offset_reference). The calibrated offset of each rig (the
median of its fields, as `leukoscope calibrate` computes it) is scored too.

    .venv/bin/python benchmarks/registration.py --rigs 5 --fields 8 --size 1024
"""

from __future__ import annotations

import argparse
import logging
import time

import numpy as np

from leukoscope.config import RigConfig
from leukoscope.instrument.acquisition import Acquisition
from leukoscope.instrument.rig import SimulationOptions, open_rig
from leukoscope.types import MODALITIES, Modality


def random_offsets(rng: np.random.Generator) -> dict[Modality, tuple[float, float]]:
    """A rig's misregistration: color1 at 0, other colours +-1 px, fluorescence +-5 px."""
    spread = {Modality.COLOR1: 0.0, Modality.COLOR2: 1.0, Modality.COLOR3: 1.0}
    out = {}
    for modality in MODALITIES:
        half = spread.get(modality, 5.0)
        out[modality] = (float(rng.uniform(-half, half)), float(rng.uniform(-half, half)))
    return out


def table(title: str, errors: dict[Modality, list[float]]) -> None:
    """Median / p95 / max of the residuals per modality and overall, as a Markdown table."""
    print(f"\n{title}\n")
    print("| modality | n | median (px) | p95 (px) | max (px) |")
    print("|---|---:|---:|---:|---:|")
    every: list[float] = []
    for modality, values in [*errors.items(), (None, [])]:
        arr = np.asarray(values if modality is not None else every)
        every.extend(values)
        name = modality.value if modality is not None else "all"
        print(
            f"| {name} | {arr.size} | {np.median(arr):.3f} | "
            f"{np.percentile(arr, 95):.3f} | {arr.max():.3f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rigs", type=int, default=5, help="simulated rigs (random offsets each)")
    parser.add_argument("--fields", type=int, default=8, help="fields of view per rig")
    parser.add_argument("--size", type=int, default=1024, help="square frame side, px")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pixel-format", default="Mono12")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)

    config = RigConfig()
    config.camera.pixel_format = args.pixel_format
    config.lights.settle_ms = 0.0
    reference = config.registration.reference
    others = [m for m in MODALITIES if m is not reference]
    per_field: dict[Modality, list[float]] = {m: [] for m in others}
    calibrated: dict[Modality, list[float]] = {m: [] for m in others}
    rejected = failed = 0
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    for rig_index in range(args.rigs):
        offsets = random_offsets(rng)
        options = SimulationOptions(
            seed=args.seed + rig_index, frame_shape=(args.size, args.size), offsets_px=offsets
        )
        ref = offsets[reference]
        truth = {m: (ref[0] - offsets[m][0], ref[1] - offsets[m][1]) for m in MODALITIES}
        found: dict[Modality, list[tuple[float, float]]] = {m: [] for m in others}
        with open_rig(config, simulate=True, options=options) as rig:
            for result in Acquisition(rig).run(f"rig{rig_index}", args.fields):
                if result.frameset is None:
                    failed += 1
                    continue
                fs = result.frameset
                for modality, shift in zip(fs.modalities, fs.shifts_px, strict=True):
                    if modality is reference:
                        continue
                    rejected += not result.refined.get(modality, False)
                    found[modality].append(shift)
                    error = np.hypot(shift[0] - truth[modality][0], shift[1] - truth[modality][1])
                    per_field[modality].append(float(error))
        for modality, shifts in found.items():
            median = np.median(np.asarray(shifts), axis=0)
            error = np.hypot(median[0] - truth[modality][0], median[1] - truth[modality][1])
            calibrated[modality].append(float(error))
    elapsed = time.perf_counter() - started

    print(
        f"{args.rigs} simulated rigs x {args.fields} fields, {args.size}x{args.size} px "
        f"{args.pixel_format}, seed {args.seed}, reference {reference.value}: {elapsed:.0f} s"
    )
    table("Per-field registration residual |applied - true| (no prior calibration)", per_field)
    table("Calibrated offset residual (median over each rig's fields)", calibrated)
    print(f"\nestimates rejected (calibrated offset used): {rejected}; failed fields: {failed}")


if __name__ == "__main__":
    main()
