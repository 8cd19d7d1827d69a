"""Simulator speed: four-light fields per second through SimulatedCamera (what a simulated run sees).

    .venv/bin/python benchmarks/simulator.py [--size 2048] [--fields 20] [--threads 2]

Prints start-up time (pre-rendering the red-cell layers), then steady-state four-light fields/s and
the split between rendering a field (once per field, cached) and exposing a frame (noise, digitise).
"""

from __future__ import annotations

import argparse
import os
import time


def main() -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=2048, help="square frame side, px")
    parser.add_argument("--fields", type=int, default=20, help="fields to time")
    parser.add_argument("--threads", type=int, default=2, help="OpenCV threads")
    parser.add_argument("--pixel-format", default="Mono12")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import cv2

    cv2.setNumThreads(args.threads)
    from leukoscope.instrument.simulator.camera import SimulatedCamera
    from leukoscope.instrument.simulator.params import SampleParams
    from leukoscope.instrument.simulator.state import SimulatedRigState

    state = SimulatedRigState()
    sample = SampleParams(frame_shape=(args.size, args.size))
    exposures = {1: 2000.0, 2: 2000.0, 3: 2000.0, 4: 20000.0}

    t0 = time.perf_counter()
    camera = SimulatedCamera.create(state, seed=args.seed, sample=sample)
    camera.configure(pixel_format=args.pixel_format)
    camera.start()

    def cycle(fov: int) -> float:
        state.move_to(fov)
        expose_s = 0.0
        for channel, exposure in exposures.items():
            state.all_off()
            state.set_channel(channel, 50.0)
            camera.configure(exposure_us=exposure, pixel_format=args.pixel_format)
            t = time.perf_counter()
            camera.trigger()
            camera.fetch(1.0)
            expose_s += time.perf_counter() - t
        state.all_off()
        return expose_s

    camera.renderer.prepare()  # the red-cell layers of every canvas, once per sample
    startup = time.perf_counter() - t0
    cycle(10_000)  # warm caches (vignetting maps, noise pools)

    render = 0.0
    for fov in range(args.fields):
        t = time.perf_counter()
        camera.renderer.field(20_000 + fov)  # rendering alone (the cycle below renders its own)
        render += time.perf_counter() - t
    render /= args.fields
    start = time.perf_counter()
    for fov in range(args.fields):
        cycle(fov)
    total = (time.perf_counter() - start) / args.fields
    camera.close()
    print(
        f"frame {args.size}x{args.size} {args.pixel_format}, cores {os.cpu_count()}, "
        f"OpenCV threads {args.threads}"
    )
    print(f"start-up (pre-render the red-cell layers): {startup:.2f} s")
    print(f"render one field, 4 modalities, noise-free: {1000 * render:.0f} ms")
    print(
        f"four-light cycle through SimulatedCamera (render + 4 exposures): {1000 * total:.0f} ms"
        f" -> {1.0 / total:.2f} four-light fields/s"
    )


if __name__ == "__main__":
    main()
