"""`leukoscope devices`, `acquire`, `calibrate` (instrument/)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from leukoscope.cli.core import app, console, err_console, settings, state
from leukoscope.cli.help import GENTL_PRODUCER, SAMPLE_FOLDER
from leukoscope.cli.options import REPLACE, SIM_SEED, SIMULATE, new_sample_folder


@app.command("devices")
def devices_command(
    producer: Annotated[
        list[Path] | None,
        typer.Option(
            help="GenTL producer (.cti); default: config, then env.", show_default=GENTL_PRODUCER
        ),
    ] = None,
) -> None:
    """List serial ports and the GenTL cameras the producers find."""
    from rich.table import Table
    from serial.tools import list_ports

    from leukoscope.instrument.gentl_devices import default_producers, list_devices

    ports = Table("serial port", "description", "hardware id", title="Serial ports")
    for port in sorted(list_ports.comports(), key=lambda p: p.device):
        ports.add_row(port.device, port.description or "", port.hwid or "")
    console.print(ports)
    configured = settings().rig.camera.producer_path
    producers: list[str | Path] = list(producer or [])
    if not producers:
        producers = [configured] if configured else list(default_producers())
    if not producers:
        console.print("no GenTL producer: set rig.camera.producer_path or GENICAM_GENTL64_PATH")
        return
    cameras = Table("serial", "id", "model", "vendor", "producer", title="GenTL devices")
    for device in list_devices(producers):
        cameras.add_row(
            device.serial_number, device.id, device.model, device.vendor, device.producer
        )
    console.print(cameras)


@app.command("acquire")
def acquire_command(
    sample: Annotated[str, typer.Option("--sample", help="Sample id.")],
    fields: Annotated[int, typer.Option("--fields", min=1, help="Fields of view to acquire.")],
    simulate: SIMULATE = False,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", help="Folder; default: <data_dir>/<sample>.", show_default=SAMPLE_FOLDER
        ),
    ] = None,
    seed: SIM_SEED = 0,
    replace: REPLACE = False,
) -> None:
    """Acquire fields of view and save them (acquisition.json + one OME-TIFF per field)."""
    from rich.progress import Progress

    from leukoscope.ids import check_sample_id
    from leukoscope.instrument.acquisition import Acquisition
    from leukoscope.instrument.rig import SimulationOptions, open_rig

    rig_config = settings().rig
    check_sample_id(sample)
    folder = out if out is not None else rig_config.acquisition.data_dir / sample
    new_sample_folder(sample, folder, replace)
    failed: list[tuple[int, str]] = []
    saved = 0
    with (
        open_rig(rig_config, simulate=simulate, options=SimulationOptions(seed=seed)) as rig,
        Progress(console=err_console, transient=False) as progress,
    ):
        task = progress.add_task(f"acquiring {sample}", total=fields)
        for result in Acquisition(rig).run(sample, fields, folder):
            if result.ok:
                saved += 1
            else:
                failed.append((result.fov, result.error))
            progress.advance(task)
    console.print(f"saved {saved} of {fields} field(s) to {folder}")
    for fov, reason in failed:
        err_console.print(f"field {fov} failed: {reason}")
    if failed:
        raise typer.Exit(1)


@app.command("calibrate")
def calibrate_command(
    fields: Annotated[int, typer.Option("--fields", min=1, help="Fields of view to measure.")] = 5,
    simulate: SIMULATE = False,
    seed: SIM_SEED = 0,
    write: Annotated[
        Path | None,
        typer.Option(
            help="Config file to write the offsets to; default: --config or leukoscope.toml."
        ),
    ] = None,
    exposure: Annotated[
        bool,
        typer.Option(
            "--exposure/--no-exposure",
            help="First set each bright-field light's exposure (rig.calibration.target_background).",
        ),
    ] = False,
    dark_flat: Annotated[
        bool,
        typer.Option(
            "--dark-flat/--no-dark-flat",
            help="Take dark frames (lights off) and flat fields; saved to rig.calibration.path.",
        ),
    ] = True,
    dark_frames: Annotated[
        int, typer.Option("--dark-frames", min=1, max=256, help="Dark frames per light.")
    ] = 8,
) -> None:
    """Calibrate the rig: exposure, dark and flat frames, and the offsets between modalities."""
    from rich.table import Table

    from leukoscope.config.edit import write_exposures, write_offsets
    from leukoscope.instrument.calibration import (
        calibrate_correction,
        calibrate_exposure,
        calibrate_rig,
    )
    from leukoscope.instrument.rig import SimulationOptions, open_rig

    current = settings()
    target = write or state.config_path or Path("leukoscope.toml")
    options = SimulationOptions(seed=seed)
    if exposure:
        with open_rig(current.rig, simulate=simulate, options=options) as rig:
            found = calibrate_exposure(rig, current.rig.calibration.target_background)
        current = write_exposures(target, found)
        for modality, value in found.items():
            console.print(f"exposure {modality.value}: {value:g} us")
        console.print(f"wrote rig.camera.exposure_us to {target}")
    with open_rig(current.rig, simulate=simulate, options=options) as rig:
        if dark_flat:
            correction = calibrate_correction(rig, frames=dark_frames, fields=max(fields, 3))
            folder = correction.save(current.rig.calibration.path)
            console.print(
                f"saved dark and flat frames ({correction.frames} dark frame(s), "
                f"{correction.fields} field(s)) to {folder}"
            )
        offsets = calibrate_rig(rig, fields)
    table = Table("modality", "dy (px)", "dx (px)", title="Calibrated shifts")
    for modality, (dy, dx) in offsets.items():
        table.add_row(modality.value, f"{dy:+.2f}", f"{dx:+.2f}")
    console.print(table)
    write_offsets(target, offsets)  # only the offsets change; the file stays as written
    console.print(f"wrote rig.registration.offsets_px to {target}")
