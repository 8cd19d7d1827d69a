"""The live path against the batch path: per-stage shares, then both commands side by side.

`stages`: runs `run --simulate`'s path in this process (simulated rig, acquisition, saving, the
embedded pipeline) with every stage wrapped by a timer, and prints per stage its calls, the wall time
spent inside it (summed over threads; render and read-out use two threads inside) and its share.
`compare`: `leukoscope run --simulate --sample demo` and `leukoscope batch` on the acquisition it
saved, as child processes, alternated `--repeats` times: wall, CPU (user + sys) and peak RSS of each
(os.wait4), and their ratios (run / batch). `replay`: the live path with the simulated
camera replaced by `instrument/replay_camera.ReplayCamera` serving saved fields at `--fps`
four-light fields/s (emulated lights on the pty as before): fields analysed per second against the
camera's rate, and each stage's time per call (what holds it when it falls behind).

    .venv/bin/python benchmarks/live_profile.py stages --cells 200
    .venv/bin/python benchmarks/live_profile.py compare --repeats 3
    .venv/bin/python benchmarks/live_profile.py compare --repeats 3 --layer-cache cold
    .venv/bin/python benchmarks/live_profile.py compare --baseline-src ../other-worktree/src
    .venv/bin/python benchmarks/live_profile.py replay --fps 10 --fields 20
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

_LOCK = threading.Lock()
_WALL: dict[str, float] = defaultdict(float)
_CALLS: dict[str, int] = defaultdict(int)
_CPU: dict[str, float] = defaultdict(float)


def _timed(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start, cpu = time.perf_counter(), time.thread_time()
        try:
            return func(*args, **kwargs)
        finally:
            spent, used = time.perf_counter() - start, time.thread_time() - cpu
            with _LOCK:
                _WALL[name] += spent
                _CPU[name] += used
                _CALLS[name] += 1

    return wrapper


def _wrap(owner: Any, attribute: str, name: str) -> None:
    setattr(owner, attribute, _timed(name, getattr(owner, attribute)))


def _instrument() -> None:
    from leukoscope.acquisition_files import storage
    from leukoscope.instrument import lights, registration
    from leukoscope.instrument.simulator import camera, render, sensor
    from leukoscope.pipeline import field_quality, segmentation

    _wrap(render.FieldRenderer, "field", "simulator: render a field (4 lights)")
    _wrap(sensor.Sensor, "read_out", "simulator: sensor read-out (per frame)")
    _wrap(camera.SimulatedCamera, "trigger", "camera: trigger (simulated exposure inside)")
    _wrap(camera.SimulatedCamera, "fetch", "camera: fetch")
    for verb in ("on", "off", "lit"):
        _wrap(lights.Lc4Controller, verb, "lights: serial on / off / lit?")
    _wrap(registration.Registrar, "register", "registration")
    _wrap(storage, "write_field", "writing the field (OME-TIFF)")
    _wrap(storage, "read_field", "reading a saved field (batch only)")
    _wrap(field_quality, "check_field", "field-quality checks")
    _wrap(segmentation, "segment", "segmentation")  # assembly imports it when it builds a stage


def stages(args: argparse.Namespace) -> None:
    """Per-stage wall time of `run --simulate` in this process."""
    _instrument()
    if args.one_thread_sim:  # the simulator's own two threads off: its CPU is the caller's
        from leukoscope.instrument.simulator import render, sensor

        render._THREADED_PIXELS = sensor._THREADED_PIXELS = 1 << 40
    from leukoscope.config import load_settings
    from leukoscope.instrument.rig import SimulationOptions, open_rig
    from leukoscope.pipeline.service import analyse, load_predictor
    from leukoscope.pipeline.sources import rig_acquisition

    work = Path(tempfile.mkdtemp(prefix="live_profile_"))
    try:
        settings = load_settings()
        settings.pipeline.target_cells = args.cells
        predictor, model_path = load_predictor(settings)
        _wrap(predictor, "predict", "classification")
        cpu0, wall0 = time.process_time(), time.perf_counter()
        with open_rig(
            settings.rig, simulate=True, options=SimulationOptions(seed=args.seed)
        ) as rig:
            job = rig_acquisition(rig, "demo", 200, work / "demo")
            outcome = analyse(
                settings, [job], predictor=predictor, model_path=model_path, database=work / "db"
            )
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        summary = outcome.summaries["demo"]
        fields = summary.fields_done + summary.fields_failed
        print(f"run --simulate in process: {fields} fields, {summary.cells_counted} cells counted")
        print(f"wall {wall:.2f} s, CPU {cpu:.2f} s, {fields / wall:.2f} fields/s\n")
        print(
            "| stage | calls | wall s inside (all threads) | ms per call | share of run wall "
            "| CPU s of the calling thread | share of run CPU |"
        )
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for name, spent in sorted(_WALL.items(), key=lambda item: -item[1]):
            calls = _CALLS[name]
            print(
                f"| {name} | {calls} | {spent:.2f} | {1000 * spent / calls:.1f} | "
                f"{100 * spent / wall:.0f} % | {_CPU[name]:.2f} | {100 * _CPU[name] / cpu:.0f} % |"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


def replay(args: argparse.Namespace) -> None:
    """The live path fed by a replay camera at `--fps` four-light fields/s: does it keep up?"""
    _instrument()
    from leukoscope.config import load_settings
    from leukoscope.instrument.acquisition import Acquisition
    from leukoscope.instrument.replay_camera import ReplayCamera
    from leukoscope.instrument.rig import SimulationOptions, open_rig
    from leukoscope.pipeline.service import analyse, load_predictor
    from leukoscope.pipeline.sources import rig_acquisition

    work = Path(tempfile.mkdtemp(prefix="live_replay_"))
    try:
        settings = load_settings()
        settings.pipeline.target_cells = 0  # every field
        settings.rig.registration.reuse_stable = args.reuse_stable
        saved = work / "saved"
        with open_rig(
            settings.rig, simulate=True, options=SimulationOptions(seed=args.seed)
        ) as rig:
            for _ in Acquisition(rig).run("demo", args.fields, out_dir=saved):
                pass
        for table in (_WALL, _CPU, _CALLS):
            table.clear()
        predictor, model_path = load_predictor(settings)
        _wrap(predictor, "predict", "classification")
        small = SimulationOptions(seed=args.seed, frame_shape=(64, 64))  # its camera is unused
        _wrap(ReplayCamera, "fetch", "camera: fetch (waits for the frame's time)")
        _wrap(ReplayCamera, "_frames", "camera: replayed field read")
        with open_rig(settings.rig, simulate=True, options=small) as rig:
            rig.camera = ReplayCamera(saved, rig.state, frame_rate=4 * args.fps)
            job = rig_acquisition(rig, "demo", args.fields, work / "demo")
            wall0, cpu0 = time.perf_counter(), time.process_time()
            outcome = analyse(
                settings, [job], predictor=predictor, model_path=model_path, database=work / "db"
            )
            wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        summary = outcome.summaries["demo"]
        fields = summary.fields_done + summary.fields_failed
        rate = fields / wall
        print(f"rig.registration.reuse_stable = {args.reuse_stable}")
        print(
            f"replay camera at {args.fps:g} four-light fields/s: {fields} fields analysed in "
            f"{wall:.2f} s = {rate:.2f} fields/s ({rate / args.fps:.2f}x the camera), CPU {cpu:.2f} s"
        )
        print("| stage | ms per call | calls | ms per field | CPU s of the calling thread |")
        print("| --- | --- | --- | --- | --- |")
        for name, spent in sorted(_WALL.items(), key=lambda item: -item[1]):
            print(
                f"| {name} | {1000 * spent / max(_CALLS[name], 1):.1f} | {_CALLS[name]} | "
                f"{1000 * spent / fields:.1f} | {_CPU[name]:.2f} |"
            )
        chains = {  # each thread's work per field: the slowest sets the pace
            "capture thread (lights over serial, camera)": [
                "lights: serial on / off / lit?",
                "camera: fetch (waits for the frame's time)",
                "camera: replayed field read",
            ],
            "registration (source thread)": ["registration"],
            "writer thread": ["writing the field (OME-TIFF)"],
            "segment worker": ["field-quality checks", "segmentation"],
            "classify worker": ["classification"],
        }
        budget = 1000.0 / args.fps
        print(f"\nper field, each thread (the camera's budget: {budget:.0f} ms):")
        for chain, names in chains.items():
            ms = 1000 * sum(_WALL[n] for n in names) / fields
            over = f", {ms - budget:.0f} ms over" if ms > budget else ""
            print(f"  {chain}: {ms:.0f} ms{over}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _child(
    command: list[str], cwd: Path, env: dict[str, str] | None = None
) -> tuple[float, float, float, str]:
    """Wall s, CPU s (user + sys) and peak RSS MB of one command run to its end; its stdout."""
    start = time.perf_counter()
    with open(cwd / "out.txt", "w") as out:
        process = subprocess.Popen(command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    text = (cwd / "out.txt").read_text()
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} exited {process.returncode}:\n{text[-2000:]}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, text


def _environment(args: argparse.Namespace, src: str | None, cache: Path) -> dict[str, str]:
    """The children's environment: which source tree, which layer cache, which reuse_stable."""
    env = dict(os.environ)
    if src:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [src, env.get("PYTHONPATH")]))
    env["LEUKOSCOPE_SIMULATOR_CACHE"] = "off" if args.layer_cache == "off" else str(cache)
    if args.reuse_stable:
        env["LEUKOSCOPE__RIG__REGISTRATION__REUSE_STABLE"] = str(args.reuse_stable)
    return env


def compare(args: argparse.Namespace) -> None:
    """`run --simulate` and `batch` on the same acquisition, side by side, alternated; with
    `--baseline-src`, the same pair from that source tree first in every repeat."""
    exe = str(Path(sys.executable).with_name("leukoscope"))
    trees = [("baseline ", args.baseline_src), ("", None)] if args.baseline_src else [("", None)]
    rows: dict[str, list[tuple[float, float, float]]] = {}
    run = [exe, "run", "--simulate", "--sample", "demo", "--seed", str(args.seed)]
    run += ["--cells", str(args.cells)]
    shared = Path(tempfile.mkdtemp(prefix="live_compare_cache_"))
    try:
        if args.layer_cache == "warm":  # one untimed run per tree fills the layer cache
            for _, src in trees:
                work = Path(tempfile.mkdtemp(prefix="live_compare_"))
                _child(run, work, _environment(args, src, shared))
                shutil.rmtree(work, ignore_errors=True)
        load = os.getloadavg()
        for _ in range(args.repeats):
            for label, src in trees:
                work = Path(tempfile.mkdtemp(prefix="live_compare_"))
                cache = shared if args.layer_cache == "warm" else work / "layer_cache"
                env = _environment(args, src, cache)
                try:
                    *figures, _ = _child(run, work, env)
                    rows.setdefault(f"{label}run --simulate", []).append(tuple(figures))  # type: ignore[arg-type]
                    batch = [exe, "batch", "acquisitions/demo", "--cells", str(args.cells)]
                    *figures, _ = _child([*batch, "--db", "batch.sqlite"], work, env)
                    rows.setdefault(f"{label}batch", []).append(tuple(figures))  # type: ignore[arg-type]
                finally:
                    shutil.rmtree(work, ignore_errors=True)
    finally:
        shutil.rmtree(shared, ignore_errors=True)
    print(f"load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; after: "
          + " ".join(f"{v:.2f}" for v in os.getloadavg()))  # fmt: skip
    print(f"layer cache: {args.layer_cache}; rig.registration.reuse_stable = {args.reuse_stable}")
    print("| command | wall s (runs) | CPU s (runs) | peak RSS MB (runs) |")
    print("| --- | --- | --- | --- |")
    for name, runs in rows.items():
        cols = [
            ", ".join(f"{r[i]:.1f}" if i < 2 else f"{r[i]:.0f}" for r in runs) for i in range(3)
        ]
        print(f"| {name} | {cols[0]} | {cols[1]} | {cols[2]} |")
    for label, _ in trees:
        ratios = [
            sorted(
                r[i] / b[i]
                for r, b in zip(rows[f"{label}run --simulate"], rows[f"{label}batch"], strict=True)
            )
            for i in range(3)
        ]
        med = [r[len(r) // 2] for r in ratios]
        print(
            f"\n{label}run / batch, median of pairs: wall {med[0]:.2f}x, CPU {med[1]:.2f}x, "
            f"peak RSS {med[2]:.2f}x"
        )


def main() -> None:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["stages", "compare", "replay"])
    parser.add_argument("--fps", type=float, default=10.0, help="replay: four-light fields/s")
    parser.add_argument("--fields", type=int, default=20, help="replay: fields saved and replayed")
    parser.add_argument(
        "--reuse-stable", type=int, default=0, help="replay, compare: rig.registration.reuse_stable"
    )
    parser.add_argument(
        "--layer-cache",
        choices=["warm", "cold", "off"],
        default="warm",
        help="compare: the simulator's red-cell layers read from a filled cache (warm: every run "
        "after the first), built and saved (cold: a first run) or built only (off)",
    )
    parser.add_argument(
        "--baseline-src", help="compare: another source tree's src/ (a git worktree), run paired"
    )
    parser.add_argument("--cells", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--one-thread-sim",
        action="store_true",
        help="stages: render and read out on the calling thread, so their CPU is counted",
    )
    args = parser.parse_args()
    {"stages": stages, "compare": compare, "replay": replay}[args.mode](args)


if __name__ == "__main__":
    main()
