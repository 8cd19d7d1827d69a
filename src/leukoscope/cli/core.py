"""The `leukoscope` command: thin typer layer that parses, calls the library and renders with rich."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from leukoscope import __version__
from leukoscope.config import Settings, load_settings, render_default_toml, render_toml
from leukoscope.errors import ConfigError, LeukoscopeError
from leukoscope.types import SampleSummary

console = Console()
err_console = Console(stderr=True)

app = typer.Typer(
    name="leukoscope",
    help="Multimodal white-blood-cell differential: rig, pipeline, classifier, reports.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(help="Write, check and show the configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")


@dataclass
class _State:
    config_path: Path | None = None
    verbose: int = 0


state = _State()


def settings() -> Settings:
    """The effective settings for this invocation (file from --config, then env overrides)."""
    return load_settings(state.config_path)


def _print_version(value: bool) -> None:
    if value:
        console.print(f"leukoscope {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Show version."),
    ] = False,
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", envvar="LEUKOSCOPE_CONFIG", help="TOML config file."),
    ] = None,
    verbose: Annotated[
        int, typer.Option("--verbose", "-v", count=True, help="More logging (-v, -vv).")
    ] = 0,
) -> None:
    state.config_path = config
    state.verbose = verbose
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@config_app.command("init")
def config_init(
    path: Annotated[Path, typer.Argument(help="Where to write the file.")] = Path(
        "leukoscope.toml"
    ),
    force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented configuration file holding every default."""
    if path.exists() and not force:
        raise ConfigError(f"{path} exists; pass --force to overwrite it")
    _write_text(path, render_default_toml())
    console.print(f"wrote {path}")


@config_app.command("validate")
def config_validate(path: Annotated[Path, typer.Argument(help="Config file to check.")]) -> None:
    """Check a configuration file; print one line per problem."""
    try:
        load_settings(path, environ={})
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    console.print(f"{path}: valid")


@config_app.command("show")
def config_show() -> None:
    """Print the effective configuration (file, then environment overrides)."""
    typer.echo(render_toml(settings()), nl=False)


# --- training and evaluation (classifier/train.py, evaluate.py, experiment.py) -----------------

experiment_app = typer.Typer(help="Reproduce the paper's experiments.", no_args_is_help=True)
app.add_typer(experiment_app, name="experiment")

_DATA = Annotated[Path, typer.Argument(help="Dataset root: <modality>/<CLASS>/<cell_id>.png.")]
_FOLDS = Annotated[int, typer.Option(help="Stratified cross-validation folds.")]
_EPOCHS = Annotated[int, typer.Option(help="Training epochs per model.")]
_SIZE = Annotated[int, typer.Option(help="Square input size the crops are resized to, px.")]
_SEED = Annotated[int, typer.Option(help="Seed for folds, initialisation and sampling.")]
_RHO = Annotated[
    float, typer.Option(help="MIMO input repetition: share of a batch whose heads see one cell.")
]
_REPEAT = Annotated[int, typer.Option(help="MIMO batch repetition R (R x the steps per epoch).")]
_FOLD_LIMIT = Annotated[
    int | None, typer.Option(help="Run only the first N folds (for a time budget).")
]
_WEIGHT_DECAY = Annotated[float, typer.Option(help="AdamW weight decay.")]
_WARMUP = Annotated[float, typer.Option(help="Linear learning-rate warm-up, epochs.")]
_AUGMENT = Annotated[bool, typer.Option(help="Random flips/90-degree rotations.")]
_JITTER = Annotated[
    str | None,
    typer.Option(
        help="Extra augmentation, e.g. 'scale=0.1,shift=0.05,contrast=0.15,gain=0.1' "
        "(off by default: it costs accuracy on real cells, docs/results.md)."
    ),
]
_SMOOTHING = Annotated[float, typer.Option(help="Label smoothing of the cross-entropy.")]
_DEVICE = Annotated[str, typer.Option(help="auto, cpu or cuda.")]
_THREADS = Annotated[int, typer.Option(help="CPU threads; 0 = torch's default.")]
_MODALITIES = Annotated[
    str | None, typer.Option(help="Comma-separated modalities; default: every folder.")
]


@app.command("train")
def train_command(
    data: _DATA,
    model: Annotated[str, typer.Option(help="single, ensemble, mm_mimo or hs_mm_mimo.")] = (
        "hs_mm_mimo"
    ),
    folds: _FOLDS = 5,
    epochs: _EPOCHS = 20,
    input_size: _SIZE = 64,
    seed: _SEED = 0,
    out: Annotated[Path, typer.Option(help="Run folder (resumable).")] = Path("runs/train"),
    modalities: _MODALITIES = None,
    batch_size: Annotated[int, typer.Option(help="Examples per step.")] = 64,
    lr: Annotated[float, typer.Option(help="Peak learning rate (AdamW, cosine).")] = 2e-3,
    rho: _RHO = 0.5,
    batch_repetition: _REPEAT = 1,
    balance: Annotated[
        float,
        typer.Option(
            help="Class balancing: draw weight count**-balance (1 = equal, 0.5 = square root, "
            "0 = none)."
        ),
    ] = 0.5,
    width: Annotated[float, typer.Option(help="ShuffleNetV2 width: 0.5, 1.0, 1.5, 2.0.")] = 1.0,
    weight_decay: _WEIGHT_DECAY = 1e-4,
    warmup_epochs: _WARMUP = 0.0,
    augment: _AUGMENT = True,
    jitter: _JITTER = None,
    label_smoothing: _SMOOTHING = 0.0,
    final: Annotated[
        bool, typer.Option(help="Fit a final model on every cell (else keep the best fold's).")
    ] = True,
    fold_limit: _FOLD_LIMIT = None,
    part: Annotated[
        list[str] | None,
        typer.Option(
            help="Run only this fold (0, 1, ...) or 'final'; repeatable; for parallel runs."
        ),
    ] = None,
    device: _DEVICE = "auto",
    threads: _THREADS = 0,
) -> None:
    """Cross-validate a network on a dataset, then fit the model to ship (OUT/model.pt)."""
    from leukoscope.classifier.evaluate import percent
    from leukoscope.classifier.recipe import jitter_options, make_config
    from leukoscope.classifier.train import run_training

    config = make_config(
        model,
        modalities,
        folds=folds,
        epochs=epochs,
        input_size=input_size,
        seed=seed,
        batch_size=batch_size,
        lr=lr,
        rho=rho,
        batch_repetition=batch_repetition,
        balance=balance,
        width=width,
        weight_decay=weight_decay,
        warmup_epochs=warmup_epochs,
        augment=augment,
        label_smoothing=label_smoothing,
        **jitter_options(jitter),
    )
    result = run_training(
        data,
        config,
        out,
        final=final,
        fold_limit=fold_limit,
        parts=part,
        device=device,
        threads=threads,
        console=err_console,
    )
    if part:
        console.print(f"done: {', '.join(part)} in {out}; rerun without --part to finish the run")
        return
    s = result.summary
    console.print(
        f"{config.arch} raw argmax: accuracy {percent(s['accuracy'])} %, macro-F1 "
        f"{percent(s['macro_f1'])} %, balanced accuracy {percent(s['balanced_accuracy'])} % over "
        f"{s['folds']} fold(s); report {out / 'cv.md'}"
    )
    c = result.corrected
    if c is not None:
        console.print(
            f"{config.arch} prior-corrected (the reading the pipeline uses): accuracy "
            f"{percent(c['accuracy'])} %, macro-F1 {percent(c['macro_f1'])} %, balanced accuracy "
            f"{percent(c['balanced_accuracy'])} %; report {out / 'cv_prior_corrected.md'}"
        )
    else:
        console.print("no prior correction fitted (power 0): the pipeline uses the raw reading")
    console.print(
        f"model {result.model_path}; per-epoch history {out / 'history.png'}; "
        f"{result.wall_s / 60:.1f} min"
    )


@app.command("evaluate")
def evaluate_command(
    model: Annotated[Path, typer.Argument(help="Checkpoint (.pt).")],
    data: _DATA,
    out: Annotated[
        Path | None, typer.Option(help="Write metrics JSON/Markdown and the confusion PNG here.")
    ] = None,
    device: _DEVICE = "auto",
) -> None:
    """Evaluate a saved model on a labelled dataset."""
    from leukoscope.classifier.evaluate import evaluate_checkpoint, metrics_markdown, write_report
    from leukoscope.classifier.train import select_device

    result = evaluate_checkpoint(model, data, select_device(device))
    names = result.modalities if len(result.modalities) > 1 else None
    readings = [("raw", "raw argmax", result.raw)]
    if result.corrected is not None:
        readings.append(("prior_corrected", "prior-corrected", result.corrected))
    for key, title, metrics in readings:
        typer.echo(f"## {title}\n\n{metrics_markdown(metrics, names)}", nl=False)
        if out is not None:
            write_report(
                out, f"evaluation_{key}", metrics, f"{model.name} on {data}, {title}", names
            )
    s = result.pipeline
    console.print(
        f"the pipeline uses the {result.pipeline_reading} reading: accuracy "
        f"{100 * s['accuracy']:.2f} %, macro-F1 {100 * s['macro_f1']:.2f} %"
    )
    if out is not None:
        console.print(f"wrote {out / 'evaluation_raw.md'}")


@experiment_app.command("paper")
def experiment_paper(
    data: _DATA,
    out: Annotated[Path, typer.Option(help="Experiment folder (resumable).")] = Path("runs/paper"),
    folds: _FOLDS = 5,
    epochs: _EPOCHS = 20,
    input_size: _SIZE = 64,
    seed: _SEED = 0,
    rho: _RHO = 0.5,
    batch_repetition: _REPEAT = 1,
    weight_decay: _WEIGHT_DECAY = 1e-4,
    warmup_epochs: _WARMUP = 0.0,
    augment: _AUGMENT = True,
    jitter: _JITTER = None,
    label_smoothing: _SMOOTHING = 0.0,
    fold_limit: _FOLD_LIMIT = None,
    device: _DEVICE = "auto",
    threads: _THREADS = 0,
) -> None:
    """Table 1 (single per modality) and Table 2 (ensemble, mm_mimo, hs_mm_mimo) of the paper."""
    from leukoscope.classifier.experiment import run_paper
    from leukoscope.classifier.recipe import jitter_options, make_config

    config = make_config(
        "hs_mm_mimo",
        None,
        folds=folds,
        epochs=epochs,
        input_size=input_size,
        seed=seed,
        rho=rho,
        batch_repetition=batch_repetition,
        weight_decay=weight_decay,
        warmup_epochs=warmup_epochs,
        augment=augment,
        label_smoothing=label_smoothing,
        **jitter_options(jitter),
    )
    run_paper(
        data,
        config,
        out,
        fold_limit=fold_limit,
        device=device,
        threads=threads,
        console=err_console,
    )
    typer.echo((out / "tables.md").read_text(encoding="utf-8"), nl=False)


# --- instrument: devices, acquire, calibrate (instrument/) -----------------------------------

_SIMULATE = Annotated[
    bool, typer.Option("--simulate", help="Simulated rig: emulated light controller + camera.")
]
_SIM_SEED = Annotated[int, typer.Option("--seed", help="Simulated sample seed.")]
_REPLACE = Annotated[
    bool,
    typer.Option(
        "--replace", help="Clear the sample's existing acquisition folder first (else refused)."
    ),
]


def _new_sample_folder(sample: str, folder: Path, replace: bool) -> Path:
    """Check the sample id; `folder` absent or empty (cleared with --replace), else an error."""
    from leukoscope.ids import check_sample_id
    from leukoscope.instrument.storage import prepare_sample_folder

    check_sample_id(sample)
    return prepare_sample_folder(folder, replace=replace)


@app.command("devices")
def devices_command(
    producer: Annotated[
        list[Path] | None, typer.Option(help="GenTL producer (.cti); default: config, then env.")
    ] = None,
) -> None:
    """List serial ports and the GenTL cameras the producers find."""
    from rich.table import Table
    from serial.tools import list_ports

    from leukoscope.instrument.harvesters_camera import default_producers, list_devices

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
    simulate: _SIMULATE = False,
    out: Annotated[
        Path | None, typer.Option("--out", help="Folder; default: <data_dir>/<sample>.")
    ] = None,
    seed: _SIM_SEED = 0,
    replace: _REPLACE = False,
) -> None:
    """Acquire fields of view and save them (acquisition.json + one OME-TIFF per field)."""
    from rich.progress import Progress

    from leukoscope.ids import check_sample_id
    from leukoscope.instrument.acquisition import Acquisition
    from leukoscope.instrument.rig import SimulationOptions, open_rig

    rig_config = settings().rig
    check_sample_id(sample)
    folder = out if out is not None else rig_config.acquisition.data_dir / sample
    _new_sample_folder(sample, folder, replace)
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
    simulate: _SIMULATE = False,
    seed: _SIM_SEED = 0,
    write: Annotated[
        Path | None,
        typer.Option(
            help="Config file to write the offsets to; default: --config or leukoscope.toml."
        ),
    ] = None,
) -> None:
    """Measure the offsets between modalities and write them to the configuration."""
    from rich.table import Table

    from leukoscope.config_edit import write_offsets
    from leukoscope.instrument.calibration import calibrate_rig
    from leukoscope.instrument.rig import SimulationOptions, open_rig

    current = settings()
    with open_rig(current.rig, simulate=simulate, options=SimulationOptions(seed=seed)) as rig:
        offsets = calibrate_rig(rig, fields)
    table = Table("modality", "dy (px)", "dx (px)", title="Calibrated shifts")
    for modality, (dy, dx) in offsets.items():
        table.add_row(modality.value, f"{dy:+.2f}", f"{dx:+.2f}")
    console.print(table)
    target = write or state.config_path or Path("leukoscope.toml")
    write_offsets(target, offsets)  # only the offsets change; the file stays as written
    console.print(f"wrote rig.registration.offsets_px to {target}")


@app.command("models")
def models_table(
    in_chans: Annotated[int, typer.Option(min=1, help="Channels per modality.")] = 3,
    size: Annotated[int, typer.Option(min=32, help="Input side, pixels.")] = 224,
    width: Annotated[float, typer.Option(help="ShuffleNetV2 width: 0.5, 1.0, 1.5, 2.0.")] = 1.0,
) -> None:
    """Parameters and MACs of every network (4 modalities, 5 classes) beside the paper's figures."""
    from rich import box
    from rich.table import Table

    from leukoscope.classifier.complexity import MAC_COUNTER, complexity_table

    table = Table(
        title=f"{in_chans} channel(s) x 4 modalities, {size}x{size}, width {width}",
        box=box.SIMPLE,
        pad_edge=False,
        show_edge=False,
    )
    for column in ("model", "params", "MACs", "paper", "difference"):
        table.add_column(column, justify="left" if column == "model" else "right", no_wrap=True)
    for row in complexity_table(in_chans, size, width):
        paper = row.paper
        diffs = [f"{d:+.2%}" if d is not None else "-" for d in (row.params_diff, row.macs_diff)]
        table.add_row(
            row.name,
            f"{row.params:,}",
            f"{row.macs / 1e6:.2f}M",
            f"{paper.params_text} / {paper.macs_text}" if paper else "-",
            " / ".join(diffs),
        )
    console.print(table)
    console.print(f"MACs: {MAC_COUNTER}; the paper calls them FLOPs.")


@app.command("export")
def export_model(
    checkpoint: Annotated[Path, typer.Argument(help="Checkpoint file (.pt).")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="ONNX file; default: beside the checkpoint.")
    ] = None,
    check: Annotated[bool, typer.Option(help="Compare onnxruntime with PyTorch.")] = True,
) -> None:
    """Export a checkpoint to ONNX for the onnxruntime backend."""
    from leukoscope.classifier.export import export_checkpoint
    from leukoscope.classifier.export_check import check_export

    target = export_checkpoint(checkpoint, out)
    console.print(f"wrote {target}")
    if check:
        worst = check_export(checkpoint, target)
        console.print(f"onnxruntime vs PyTorch: max probability difference {worst:.2e}")


# --- simulator (instrument/simulator/) -----------------------------------------------------------

simulate_app = typer.Typer(
    help="Synthetic blood: training sets and saved acquisitions with ground truth.",
    no_args_is_help=True,
)
app.add_typer(simulate_app, name="simulate")

_SIMULATE_COMPOSITION = Annotated[
    str | None,
    typer.Option(
        help="Percent per class, e.g. NEU=62.2,LYM=30.3,MO=1.2,EOS=5.6,BAS=0.6 (paper's)."
    ),
]
_SIMULATE_SEED = Annotated[int, typer.Option(help="Random seed (same seed, same bytes).")]


@simulate_app.command("dataset")
def simulate_dataset(
    out: Annotated[Path, typer.Argument(help="Dataset root to write.")],
    cells: Annotated[int, typer.Option(help="Cells in all (6697 = the paper's counts).")] = 6697,
    composition: _SIMULATE_COMPOSITION = None,
    seed: _SIMULATE_SEED = 0,
    crop_um: Annotated[float, typer.Option(help="Crop side in the sample plane, um.")] = 24.0,
    bit_depth: Annotated[int, typer.Option(help="PNG bit depth, 8 or 16.")] = 8,
    out_px: Annotated[
        int | None, typer.Option(help="Resize crops to this side, px (default: native).")
    ] = None,
) -> None:
    """Write four-modality cell crops in the training layout: OUT/<modality>/<CLASS>/<id>.png."""
    from rich.progress import Progress

    from leukoscope.instrument.simulator.composition import parse_composition
    from leukoscope.instrument.simulator.dataset import generate_dataset

    shares = parse_composition(composition)
    with Progress(console=err_console, transient=True) as bar:
        task = bar.add_task("rendering cells", total=cells)
        counts = generate_dataset(
            out,
            cells,
            composition=shares,
            seed=seed,
            crop_um=crop_um,
            bit_depth=bit_depth,
            out_px=out_px,
            pixel_size_um=settings().rig.camera.pixel_size_um,
            progress=lambda _: bar.advance(task),
        )
    summary = ", ".join(f"{c.value} {n}" for c, n in counts.items())
    console.print(f"wrote {sum(counts.values())} cells to {out}: {summary}")


@simulate_app.command("acquisition")
def simulate_acquisition(
    out: Annotated[Path, typer.Argument(help="Acquisition folder to write.")],
    sample: Annotated[str, typer.Option("--sample", help="Sample id.")],
    fields: Annotated[int, typer.Option(help="Fields of view.")] = 10,
    composition: _SIMULATE_COMPOSITION = None,
    cells_per_field: Annotated[float, typer.Option(help="Mean white cells per field.")] = 10.0,
    seed: _SIMULATE_SEED = 0,
    frame_size: Annotated[int, typer.Option(help="Square frame side, px.")] = 2048,
    bit_depth: Annotated[int, typer.Option(help="Camera bit depth, 8 or 12.")] = 12,
    raw: Annotated[
        bool, typer.Option(help="Keep the modalities' raw misregistration (no registration).")
    ] = False,
    replace: _REPLACE = False,
) -> None:
    """Write a saved acquisition (acquisition.json + fov_NNNN.ome.tif) and ground_truth.json."""
    from rich.progress import Progress

    from leukoscope.errors import ParameterError
    from leukoscope.instrument.simulator.acquisition import generate_acquisition
    from leukoscope.instrument.simulator.composition import parse_composition
    from leukoscope.instrument.simulator.frames import CaptureSettings

    if bit_depth not in (8, 12):
        raise ParameterError(f"--bit-depth must be 8 or 12, got {bit_depth}")
    _new_sample_folder(sample, out, replace)
    rig = settings().rig
    capture = CaptureSettings(
        exposures_us=dict(rig.camera.exposure_us),
        intensities_percent={m: c.intensity_percent for m, c in rig.lights.channels.items()},
        bit_depth=bit_depth,
        gain_db=rig.camera.gain_db,
    )
    with Progress(console=err_console, transient=True) as bar:
        task = bar.add_task("rendering fields", total=fields)
        generate_acquisition(
            out,
            sample,
            fields,
            seed=seed,
            composition=parse_composition(composition),
            cells_per_field=cells_per_field,
            frame_shape=(frame_size, frame_size),
            pixel_size_um=rig.camera.pixel_size_um,
            settings=capture,
            register=not raw,
            progress=lambda _: bar.advance(task),
        )
    console.print(f"wrote {fields} fields of sample {sample} to {out} (+ ground_truth.json)")


def _pipeline_settings(cells: int | None, db: Path | None) -> Settings:
    current = settings()
    if cells is not None:
        current.pipeline.target_cells = cells
    if db is not None:
        current.pipeline.results_db = db
    return current


def _show_outcome(outcome: object) -> None:
    from leukoscope.pipeline.service import RunOutcome

    assert isinstance(outcome, RunOutcome)
    for summary in outcome.summaries.values():
        _print_summary(summary)
    console.print(f"run {outcome.run_id} stored in {outcome.database}")


@app.command("run")
def run_command(
    sample: Annotated[str, typer.Option("--sample", "-s", help="Sample id.")],
    simulate: Annotated[bool, typer.Option(help="Use the simulated rig.")] = False,
    cells: Annotated[
        int | None, typer.Option(help="Target white-cell count (0 = all fields).", min=0)
    ] = None,
    max_fields: Annotated[int, typer.Option(help="Most fields to acquire.", min=1)] = 200,
    out: Annotated[Path | None, typer.Option(help="Where acquisitions are saved.")] = None,
    db: Annotated[Path | None, typer.Option(help="Results database (SQLite).")] = None,
    seed: Annotated[int, typer.Option(help="Simulated sample seed.")] = 0,
    replace: _REPLACE = False,
) -> None:
    """Acquire a sample and show its live 5-part differential."""
    from rich.live import Live

    from leukoscope.ids import check_sample_id
    from leukoscope.instrument.rig import SimulationOptions, open_rig
    from leukoscope.pipeline.service import analyse, load_predictor
    from leukoscope.pipeline.sources import rig_acquisition
    from leukoscope.report.table import summary_table

    check_sample_id(sample)
    current = _pipeline_settings(cells, db)
    out_dir = (out or current.rig.acquisition.data_dir) / sample
    _new_sample_folder(sample, out_dir, replace)
    try:
        with open_rig(current.rig, simulate=simulate, options=SimulationOptions(seed=seed)) as rig:
            predictor, model_path = load_predictor(current)  # after the rig: no rig, no wait
            with Live(console=console, auto_refresh=False, transient=True) as live:

                def show(summary: SampleSummary, workers: Mapping[str, object]) -> None:
                    live.update(summary_table(summary, workers), refresh=True)

                job = rig_acquisition(rig, sample, max_fields, out_dir)
                outcome = analyse(
                    current, [job], predictor=predictor, model_path=model_path, on_summary=show
                )
    except (KeyboardInterrupt, SystemExit) as exc:
        _where_the_run_stands(sample, out_dir, exc)
        raise
    _show_outcome(outcome)


def _where_the_run_stands(sample: str, out_dir: Path, exc: BaseException) -> None:
    """After Ctrl-C or SIGTERM: what was saved, and how to analyse it."""
    from leukoscope.errors import StorageError
    from leukoscope.instrument.storage import list_fields
    from leukoscope.pipeline.runner import stop_reason

    try:
        saved = len(list_fields(out_dir))
    except StorageError:
        saved = 0
    how = f"; analyse them with: leukoscope batch {out_dir}" if saved else ""
    _notice(f"{stop_reason(exc)}: {saved} field(s) of sample {sample} saved in {out_dir}{how}")


@app.command("batch")
def batch_command(
    paths: Annotated[list[Path], typer.Argument(help="Saved acquisition folders.")],
    cells: Annotated[
        int | None, typer.Option(help="Target white-cell count (0 = all fields).", min=0)
    ] = None,
    db: Annotated[Path | None, typer.Option(help="Results database (SQLite).")] = None,
) -> None:
    """Analyse saved acquisitions; one summary per sample."""
    from rich.progress import Progress

    from leukoscope.errors import StorageError
    from leukoscope.pipeline.service import analyse, load_predictor
    from leukoscope.pipeline.sources import SampleJob, saved_acquisition

    current = _pipeline_settings(cells, db)
    jobs: list[SampleJob] = []
    for path in paths:
        try:
            jobs.append(saved_acquisition(path))
        except StorageError as exc:
            err_console.print(f"skipped {path}: {exc}", markup=False, highlight=False)
    if not jobs:
        raise typer.Exit(1)
    predictor, model_path = load_predictor(current)
    with Progress(console=console, transient=True) as progress:
        tasks = {j.sample_id: progress.add_task(j.sample_id, total=j.fields_total) for j in jobs}

        def show(summary: SampleSummary, workers: Mapping[str, object]) -> None:
            done = summary.fields_done + summary.fields_failed
            progress.update(tasks[summary.sample_id], completed=done)

        outcome = analyse(
            current, jobs, predictor=predictor, model_path=model_path, on_summary=show
        )
    _show_outcome(outcome)
    if len(jobs) < len(paths):
        raise typer.Exit(1)


keys_app = typer.Typer(help="CurveZMQ keys for pipelines that span hosts.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
worker_app = typer.Typer(
    help="Run a pipeline worker against a `serve` process.", no_args_is_help=True
)
app.add_typer(worker_app, name="worker")

ConnectOption = Annotated[
    str, typer.Option("--connect", help="The serve process: tcp://HOST:PORT (its base port).")
]


@keys_app.command("generate")
def keys_generate(
    folder: Annotated[Path, typer.Argument(help="Where to write the key files.")],
    force: Annotated[
        bool, typer.Option(help="Replace existing keys (locks out workers holding the old ones).")
    ] = False,
) -> None:
    """Write a server and a client key pair (ZeroMQ certificate files)."""
    from leukoscope.pipeline.security import generate_keys

    server_secret, client_secret = generate_keys(folder, force=force)
    console.print(f"server secret key: {server_secret} (keep on the central host)")
    console.print(f"client secret key: {client_secret} (copy to worker hosts)")
    console.print(f"server public key: {server_secret.with_suffix('.key')} (copy to worker hosts)")
    console.print(
        "central host: pipeline.curve_server_key = the server secret key; "
        "worker hosts: pipeline.curve_server_key = the server public key and "
        "pipeline.curve_client_key = the client secret key",
        soft_wrap=True,
    )


@app.command("serve")
def serve_command(
    bind: Annotated[
        str, typer.Option("--bind", help="tcp://ADDR:PORT; five ports from PORT are used.")
    ] = "tcp://127.0.0.1:5550",
    cells: Annotated[
        int | None, typer.Option(help="Target white-cell count (0 = all fields).", min=0)
    ] = None,
    db: Annotated[Path | None, typer.Option(help="Results database (SQLite).")] = None,
    run: Annotated[
        str | None, typer.Option("--run", help="Run id to continue (restart after a crash).")
    ] = None,
) -> None:
    """Run the aggregator for workers and sources on other processes or hosts."""
    from leukoscope.pipeline.distributed import serve, stop_on_signals
    from leukoscope.pipeline.endpoints import Endpoints

    current = _pipeline_settings(cells, db)
    endpoints = Endpoints.parse(bind)
    host = bind.partition("://")[2].rpartition(":")[0].strip("[]")

    def show(summary: SampleSummary, workers: Mapping[str, object]) -> None:
        if summary.status.value != "running":
            _print_summary(summary)

    with stop_on_signals() as stop:
        err_console.print(f"serving on {bind} (results in {current.pipeline.results_db})")
        run_id = serve(
            current,
            endpoints,
            host,
            database=current.pipeline.results_db,
            run_id=run,
            on_summary=show,
            stop=stop,
        )
    err_console.print(f"run {run_id} stopped")


@worker_app.command("segment")
def worker_segment(connect: ConnectOption) -> None:
    """Find cells in framesets handed out by the serve process."""
    _run_worker("segment", connect)


@worker_app.command("classify")
def worker_classify(connect: ConnectOption) -> None:
    """Classify cell batches handed out by the serve process."""
    _run_worker("classify", connect)


def _run_worker(role: str, connect: str) -> None:
    from leukoscope.pipeline.distributed import run_worker, stop_on_signals
    from leukoscope.pipeline.endpoints import Endpoints

    endpoints = Endpoints.parse(connect)
    with stop_on_signals() as stop:
        run_worker(
            "segment" if role == "segment" else "classify",
            settings(),
            endpoints,
            stop=stop,
            notify=_notice,
        )


@app.command("send")
def send_command(
    paths: Annotated[list[Path], typer.Argument(help="Saved acquisition folders.")],
    connect: ConnectOption,
) -> None:
    """Stream saved acquisitions to a serve process and print each final summary."""
    from leukoscope.errors import StorageError
    from leukoscope.pipeline.distributed import send, stop_on_signals
    from leukoscope.pipeline.endpoints import Endpoints
    from leukoscope.pipeline.sources import SampleJob, saved_acquisition

    jobs: list[SampleJob] = []
    for path in paths:
        try:
            jobs.append(saved_acquisition(path))
        except StorageError as exc:
            err_console.print(f"skipped {path}: {exc}", markup=False, highlight=False)
    with stop_on_signals() as stop:
        finals = send(settings(), jobs, Endpoints.parse(connect), stop=stop, notify=_notice)
    for summary in finals.values():
        _print_summary(summary)
    if len(finals) < len(paths):
        raise typer.Exit(1)


def _notice(message: str) -> None:
    err_console.print(message, markup=False, highlight=False, soft_wrap=True)


def _print_summary(summary: SampleSummary) -> None:
    from leukoscope.report.table import summary_table

    console.print(summary_table(summary))
    if summary.status_reason:
        console.print(summary.status_reason, soft_wrap=True, markup=False, highlight=False)


# --- labelled acquisitions: training sets and validation (validation/) ---------------------------

dataset_app = typer.Typer(
    help="Training sets from labelled saved acquisitions.", no_args_is_help=True
)
app.add_typer(dataset_app, name="dataset")

_ACQUISITIONS = Annotated[list[Path], typer.Argument(help="Saved acquisition folders.")]
_LABELS = Annotated[
    Path, typer.Option("--labels", help="Labels CSV: sample, fov, x_px, y_px, class[, annotator].")
]
_RADIUS = Annotated[
    float, typer.Option("--radius-um", min=0.1, help="Label-to-detection match radius, um.")
]


class _LateProgress:
    """A transient progress display that appears with the first step, so that an error found
    before any work (a bad labels file, an existing folder) prints as one line and nothing else."""

    def __init__(self) -> None:
        self._bar: object | None = None
        self._tasks: dict[str, object] = {}

    def step(self, name: str, completed: int | None = None) -> None:
        from rich.progress import Progress

        if self._bar is None:
            self._bar = Progress(console=err_console, transient=True)
            self._bar.start()
        bar = self._bar
        assert isinstance(bar, Progress)
        if name not in self._tasks:
            self._tasks[name] = bar.add_task(name, total=None)
        task = self._tasks[name]
        if completed is None:
            bar.advance(task, 1)  # type: ignore[arg-type]
        else:
            bar.update(task, completed=completed)  # type: ignore[arg-type]

    def __enter__(self) -> _LateProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        from rich.progress import Progress

        if isinstance(self._bar, Progress):
            self._bar.stop()


@dataset_app.command("build")
def dataset_build(
    acquisitions: _ACQUISITIONS,
    out: Annotated[Path, typer.Option("--out", help="Dataset folder to create (must not exist).")],
    labels: Annotated[
        Path | None,
        typer.Option("--labels", help="Labels CSV: sample, fov, x_px, y_px, class[, annotator]."),
    ] = None,
    reviewed: Annotated[
        Path | None,
        typer.Option("--reviewed", help="Or: a results database; its released reviews are labels."),
    ] = None,
    radius_um: _RADIUS = 6.0,
) -> None:
    """Cut the labelled cells with the pipeline's segmentation: OUT/<modality>/<CLASS>/<id>.png."""
    from leukoscope.errors import ParameterError
    from leukoscope.pipeline.segmentation import SegmentationParams
    from leukoscope.validation.dataset_build import build_dataset

    source = labels if labels is not None else reviewed
    if source is None or (labels is not None and reviewed is not None):
        raise ParameterError("give either --labels FILE or --reviewed DATABASE")
    params = SegmentationParams.from_config(settings().pipeline.segmentation)
    with _LateProgress() as bar:
        report = build_dataset(
            acquisitions,
            source,
            out,
            params=params,
            radius_um=radius_um,
            progress=lambda n: bar.step("segmenting labelled fields"),
            reviewed=reviewed is not None,
        )
    counts = ", ".join(f"{name} {n}" for name, n in report.counts.items())
    console.print(
        f"wrote {report.cells} cells from {report.fields} labelled fields to {out}: {counts}",
        soft_wrap=True,
    )
    if report.other_matched:
        console.print(f"{report.other_matched} detection(s) labelled OTHER (not written)")
    console.print(
        f"{len(report.unmatched_labels)} label(s) with no detection within {radius_um:g} um, "
        f"{len(report.unmatched_detections)} detection(s) with no label (listed in "
        f"{out / 'build.json'})",
        soft_wrap=True,
        markup=False,
    )
    for label in report.unmatched_labels[:10]:
        console.print(
            f"  no detection: line {label.line} ({label.sample} field {label.fov}, "
            f"x {label.x_px:g}, y {label.y_px:g}, {label.cell_class})",
            markup=False,
            highlight=False,
        )


@app.command("validate")
def validate_command(
    acquisitions: _ACQUISITIONS,
    labels: _LABELS,
    model: Annotated[
        Path | None, typer.Option("--model", help="Checkpoint; default: the configured model.")
    ] = None,
    out: Annotated[
        Path, typer.Option("--out", help="Report folder to create (must not exist).")
    ] = Path("validation"),
    radius_um: _RADIUS = 6.0,
) -> None:
    """Compare the pipeline (as `batch` runs it) with labelled acquisitions; report in OUT."""
    from leukoscope.validation.run import validate

    current = settings()
    if model is not None:
        current.classifier.model_path = model
    with _LateProgress() as progress:

        def show(summary: SampleSummary, workers: Mapping[str, object]) -> None:
            progress.step(summary.sample_id, summary.fields_done + summary.fields_failed)

        result = validate(current, acquisitions, labels, out, radius_um=radius_um, on_summary=show)
    for line in result.summary():
        console.print(line, markup=False, highlight=False, soft_wrap=True)


@app.command("report")
def report_command(
    sample: Annotated[str, typer.Argument(help="Sample id.")],
    run: Annotated[
        str | None,
        typer.Option(help="Run id (or a unique prefix); default: the latest run with the sample."),
    ] = None,
    db: Annotated[Path | None, typer.Option(help="Results database (SQLite).")] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", help="File to write; '-' = stdout; default: report-<sample>-<run>."
        ),
    ] = None,
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            help="html, json or csv; hl7 (v2.5.1 ORU^R01) or fhir (R4 Bundle) for a released sample.",
        ),
    ] = "html",
) -> None:
    """Write a sample's report: differential, 95% CIs, flags, chart and cell gallery; or the
    released differential for a laboratory information system (--format hl7|fhir)."""
    from leukoscope.ids import check_sample_id
    from leukoscope.report.data import GALLERY_LIMIT, gather_report, open_results
    from leukoscope.report.render import check_format, default_output, render_report

    check_sample_id(sample)
    current = settings()
    html = check_format(fmt) == "html"  # json/csv: every counted cell, no images
    with open_results(db or current.pipeline.results_db) as store:
        limit = GALLERY_LIMIT if html else None
        data = gather_report(store, sample, run, current, gallery_limit=limit, with_thumbnails=html)
    text = render_report(data, fmt)
    if out is not None and str(out) == "-":
        typer.echo(text, nl=False)
        return
    target = out or default_output(data.sample_id, data.run_id, fmt)
    _write_text(target, text)
    err_console.print(f"wrote {target}", markup=False, highlight=False)


@app.command("review")
def review_command(
    db: Annotated[Path | None, typer.Option(help="Results database (SQLite).")] = None,
    host: Annotated[
        str, typer.Option(help="Address to listen on; off loopback a --token is required.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8765,
    token: Annotated[
        str | None,
        typer.Option(envvar="LEUKOSCOPE_REVIEW_TOKEN", help="Access token (16+ characters)."),
    ] = None,
) -> None:
    """Serve the review web page: reclassify cells, sign a sample off (docs/review.md)."""
    from leukoscope.report.data import open_results
    from leukoscope.review.server import check_bind, check_port, serve

    check_bind(host, port, token)
    current = settings()
    database = db or current.pipeline.results_db
    open_results(database).close()  # one clear line for a missing or foreign file
    check_port(host, port)
    err_console.print(f"review {database} at http://{host}:{port}/ (Ctrl-C to stop)", markup=False)
    serve(database, current, host=host, port=port, token=token)


def _write_text(path: Path, text: str) -> None:
    """Write a file the user named; one error line (StorageError) when it cannot be written."""
    from leukoscope.errors import StorageError

    if path.is_dir():
        raise StorageError(f"{path} is a folder: name a file to write")
    if not path.parent.is_dir():
        raise StorageError(f"cannot write {path}: folder {path.parent} does not exist")
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise StorageError(f"cannot write {path}: {exc.strerror or exc}") from None


def main() -> None:
    """Console-script entry point: our errors become one clear line and exit status 2."""
    try:
        app()
    except LeukoscopeError as exc:
        for line in str(exc).splitlines():
            typer.echo(f"error: {line}", err=True)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    except OSError as exc:  # the system refused (disk full, read-only, permissions): one line
        where = f"{exc.filename}: " if exc.filename else ""
        typer.echo(f"error: {where}{exc.strerror or exc}", err=True)
        raise SystemExit(2) from None
