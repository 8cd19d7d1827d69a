"""`leukoscope simulate dataset|acquisition` (instrument/simulator/)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from leukoscope.cli.core import app, console, err_console, settings
from leukoscope.cli.options import REPLACE, new_sample_folder
from leukoscope.limits import DEFAULT_CROP_UM
from leukoscope.types import CellClass

simulate_app = typer.Typer(
    help="Synthetic blood: training sets and saved acquisitions with ground truth.",
    no_args_is_help=True,
)
app.add_typer(simulate_app, name="simulate")

COMPOSITION = Annotated[
    str | None,
    typer.Option(
        help="Percent per class, e.g. NEU=62.2,LYM=30.3,MO=1.2,EOS=5.6,BAS=0.6 (paper's)."
    ),
]
SEED_OPTION = Annotated[int, typer.Option(help="Random seed (same seed, same bytes).")]


@simulate_app.command("dataset")
def simulate_dataset(
    out: Annotated[Path, typer.Argument(help="Dataset root to write.")],
    cells: Annotated[int, typer.Option(help="Cells in all (6697 = the paper's counts).")] = 6697,
    composition: COMPOSITION = None,
    seed: SEED_OPTION = 0,
    crop_um: Annotated[
        float, typer.Option(help="Crop side in the sample plane, um.")
    ] = DEFAULT_CROP_UM,
    bit_depth: Annotated[int, typer.Option(help="PNG bit depth, 8 or 16.")] = 8,
    out_px: Annotated[
        int | None, typer.Option(help="Resize crops to this side, px (default: native).")
    ] = None,
    lookalikes: Annotated[
        float | None,
        typer.Option(
            help="Share of white cells drawn partway toward another class's look (0-0.5); "
            "default: the simulator's."
        ),
    ] = None,
    extra: Annotated[
        str | None,
        typer.Option(
            help="Cells of classes outside the five to add, e.g. IG=300,NRBC=300,BLAST=300,RL=300 "
            "(a lab's extra labels)."
        ),
    ] = None,
) -> None:
    """Write four-modality cell crops in the training layout: OUT/<modality>/<CLASS>/<id>.png."""
    from rich.progress import Progress

    from leukoscope.imaging import crop_side_px
    from leukoscope.instrument.simulator.composition import parse_composition
    from leukoscope.instrument.simulator.dataset import generate_dataset
    from leukoscope.instrument.simulator.params import SampleParams
    from leukoscope.instrument.simulator.request import check_dataset_request

    pixel_size_um = settings().rig.camera.pixel_size_um
    check_dataset_request(cells, crop_side_px(pixel_size_um, crop_um), out_px, bit_depth)
    shares = parse_composition(composition)
    extras = parse_extra(extra)
    if lookalikes is None:
        lookalikes = SampleParams.lookalike_fraction
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
            pixel_size_um=pixel_size_um,
            progress=lambda _: bar.advance(task),
            lookalike_fraction=lookalikes,
            extra=extras,
        )
    summary = ", ".join(f"{c.value} {n}" for c, n in counts.items())
    console.print(f"wrote {sum(counts.values())} cells to {out}: {summary}")


@simulate_app.command("acquisition")
def simulate_acquisition(
    out: Annotated[Path, typer.Argument(help="Acquisition folder to write.")],
    sample: Annotated[str, typer.Option("--sample", help="Sample id.")],
    fields: Annotated[int, typer.Option(help="Fields of view.")] = 10,
    composition: COMPOSITION = None,
    cells_per_field: Annotated[float, typer.Option(help="Mean white cells per field.")] = 10.0,
    seed: SEED_OPTION = 0,
    frame_size: Annotated[int, typer.Option(help="Square frame side, px.")] = 2048,
    bit_depth: Annotated[int, typer.Option(help="Camera bit depth, 8 or 12.")] = 12,
    raw: Annotated[
        bool, typer.Option(help="Keep the modalities' raw misregistration (no registration).")
    ] = False,
    replace: REPLACE = False,
    atypical: Annotated[
        float,
        typer.Option(
            help="Share of white cells drawn outside the five (IG, NRBC, BLAST, RL), 0-1; "
            "recorded in ground_truth.json."
        ),
    ] = 0.0,
) -> None:
    """Write a simulated saved acquisition with its ground truth (ground_truth.json).

    The fields are fov_NNNN.ome.tif, or .ome.zarr as rig.acquisition.format says, beside
    acquisition.json."""
    from rich.progress import Progress

    from leukoscope.errors import ParameterError
    from leukoscope.instrument.simulator.acquisition import generate_acquisition
    from leukoscope.instrument.simulator.composition import parse_composition
    from leukoscope.instrument.simulator.frames import CaptureSettings
    from leukoscope.instrument.simulator.request import check_acquisition_request

    if bit_depth not in (8, 12):
        raise ParameterError(f"--bit-depth must be 8 or 12, got {bit_depth}")
    check_acquisition_request(fields, (frame_size, frame_size))
    new_sample_folder(sample, out, replace)
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
            field_format=rig.acquisition.format,
            atypical_fraction=atypical,
        )
    console.print(f"wrote {fields} fields of sample {sample} to {out} (+ ground_truth.json)")


def parse_extra(text: str | None) -> dict[CellClass, int]:
    """`IG=300,NRBC=200` -> counts of extra-class cells; one error line for a bad item."""
    from leukoscope.errors import ParameterError
    from leukoscope.types import EXTRA_CLASSES

    counts: dict[CellClass, int] = {}
    allowed = ", ".join(c.value for c in EXTRA_CLASSES)
    for item in (text or "").split(","):
        if not item.strip():
            continue
        name, _, number = item.partition("=")
        try:
            cell_class = CellClass(name.strip().upper())
            count = int(number)
        except ValueError:
            raise ParameterError(f"--extra item {item.strip()!r} is not CLASS=COUNT") from None
        if cell_class not in EXTRA_CLASSES or count < 0:
            raise ParameterError(
                f"--extra: classes are {allowed}, counts >= 0; got {item.strip()!r}"
            )
        counts[cell_class] = count
    return counts


@simulate_app.command("labels")
def simulate_labels(
    acquisitions: Annotated[
        list[Path], typer.Argument(help="Simulated acquisition folders (with ground_truth.json).")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Labels file (CSV) to write.")],
) -> None:
    """Write the labels file of simulated acquisitions, for `validate` and `dataset build`.

    Every whole white cell of the simulator's ground truth, at its true centre, with its true
    class."""
    from leukoscope.atomic import atomic_write_bytes
    from leukoscope.instrument.simulator.truth_labels import labels_csv

    text = labels_csv(list(acquisitions))
    atomic_write_bytes(out, text.encode("utf-8"))
    rows = text.count("\n") - 1
    typer.echo(f"wrote {out}: {rows} labelled white cells", err=True)
