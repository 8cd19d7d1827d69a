"""`leukoscope dataset build` and `validate`: labelled saved acquisitions (validation/)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

import typer

from leukoscope.cli.core import app, console, err_console, settings
from leukoscope.cli.help import MODEL_PATH, RESULTS_DB
from leukoscope.types import SampleSummary

dataset_app = typer.Typer(
    help="Training sets from labelled saved acquisitions.", no_args_is_help=True
)
app.add_typer(dataset_app, name="dataset")

_ACQUISITIONS = Annotated[list[Path], typer.Argument(help="Saved acquisition folders.")]
_LABELS = Annotated[
    Path, typer.Option("--labels", help="Labels CSV: sample, fov, x_px, y_px, class[, annotator].")
]
VALIDATION_FAILED_EXIT = 3
"""`validate`: the model failed the acceptance criteria (`[validation]`)."""

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
        Path | None,
        typer.Option(
            "--model", help="Checkpoint; default: the configured model.", show_default=MODEL_PATH
        ),
    ] = None,
    out: Annotated[
        Path, typer.Option("--out", help="Report folder to create (must not exist).")
    ] = Path("validation"),
    radius_um: _RADIUS = 6.0,
    db: Annotated[
        Path | None,
        typer.Option("--db", help="Results database the record goes to.", show_default=RESULTS_DB),
    ] = None,
    by: Annotated[
        str | None, typer.Option("--by", help="Who validates; default: the OS login.")
    ] = None,
) -> None:
    """Compare the pipeline (as `batch` runs it) with labelled acquisitions; report in OUT, verdict
    recorded in the results database. Exit status 3 when the model FAILs the criteria."""
    from leukoscope.validation.run import validate

    current = settings()
    if model is not None:
        current.classifier.model_path = model
    with _LateProgress() as progress:

        def show(summary: SampleSummary, workers: Mapping[str, object]) -> None:
            progress.step(summary.sample_id, summary.fields_done + summary.fields_failed)

        result = validate(
            current,
            acquisitions,
            labels,
            out,
            radius_um=radius_um,
            on_summary=show,
            database=db,
            validated_by=by,
        )
    for line in result.summary():
        console.print(line, markup=False, highlight=False, soft_wrap=True)
    if result.verdict != "PASS":
        raise typer.Exit(VALIDATION_FAILED_EXIT)
