"""`leukoscope train`, `evaluate`, `experiment paper` (classifier/train.py, evaluate.py, experiment.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from leukoscope.classifier.recipe import TrainConfig
from leukoscope.cli.core import app, console, err_console

experiment_app = typer.Typer(help="Reproduce the paper's experiments.", no_args_is_help=True)
app.add_typer(experiment_app, name="experiment")

_DATA = Annotated[Path, typer.Argument(help="Dataset root: <modality>/<CLASS>/<cell_id>.png.")]
_FOLDS = Annotated[int, typer.Option(help="Stratified cross-validation folds.")]
_EPOCHS = Annotated[int, typer.Option(help="Training epochs per model.")]
_SIZE = Annotated[
    int | None,
    typer.Option(
        help="Square input size the crops are resized to, px; default: the crops' own side "
        "(no resampling), within 32-224."
    ),
]
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
_DEVICE = Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:N or mps.")]
_THREADS = Annotated[int, typer.Option(help="CPU threads; 0 = torch's default.")]
_MODALITIES = Annotated[
    str | None, typer.Option(help="Comma-separated modalities; default: every folder.")
]
_RECIPE = TrainConfig()
"""The training recipe's defaults, which the options below show and pass on."""


@app.command("train")
def train_command(
    data: _DATA,
    model: Annotated[
        str, typer.Option(help="single, ensemble, mm_mimo or hs_mm_mimo.")
    ] = _RECIPE.arch,
    folds: _FOLDS = _RECIPE.folds,
    epochs: _EPOCHS = _RECIPE.epochs,
    input_size: _SIZE = None,
    seed: _SEED = _RECIPE.seed,
    out: Annotated[Path, typer.Option(help="Run folder (resumable).")] = Path("runs/train"),
    modalities: _MODALITIES = None,
    batch_size: Annotated[int, typer.Option(help="Examples per step.")] = _RECIPE.batch_size,
    lr: Annotated[float, typer.Option(help="Peak learning rate (AdamW, cosine).")] = _RECIPE.lr,
    rho: _RHO = _RECIPE.rho,
    batch_repetition: _REPEAT = _RECIPE.batch_repetition,
    balance: Annotated[
        float,
        typer.Option(
            help="Class balancing: draw weight count**-balance (1 = equal, 0.5 = square root, "
            "0 = none)."
        ),
    ] = _RECIPE.balance,
    width: Annotated[
        float, typer.Option(help="ShuffleNetV2 width: 0.5, 1.0, 1.5, 2.0.")
    ] = _RECIPE.width,
    weight_decay: _WEIGHT_DECAY = _RECIPE.weight_decay,
    warmup_epochs: _WARMUP = _RECIPE.warmup_epochs,
    augment: _AUGMENT = _RECIPE.augment,
    jitter: _JITTER = None,
    label_smoothing: _SMOOTHING = _RECIPE.label_smoothing,
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
    open_set_rate: Annotated[
        float,
        typer.Option(
            help="Share of normal cells the open-set flag sets apart as unidentified "
            "(docs/models.md); 0: no open-set fit."
        ),
    ] = _RECIPE.open_set_rate,
    open_set_holdout: Annotated[
        float,
        typer.Option(
            help="Share of the cells the final fit leaves out to fit the open-set score on."
        ),
    ] = _RECIPE.open_set_holdout,
    device: _DEVICE = "auto",
    threads: _THREADS = 0,
) -> None:
    """Cross-validate a network on a dataset, then fit the model to ship (OUT/model.pt)."""
    from leukoscope.classifier.data import native_input_size
    from leukoscope.classifier.evaluate import percent
    from leukoscope.classifier.recipe import jitter_options, make_config
    from leukoscope.classifier.train import run_training
    from leukoscope.types import parse_modalities

    config = make_config(
        model,
        modalities,
        folds=folds,
        epochs=epochs,
        input_size=input_size
        if input_size is not None
        else native_input_size(data, parse_modalities(modalities) if modalities else None),
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
        open_set_rate=open_set_rate,
        open_set_holdout=open_set_holdout,
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
        Path | None,
        typer.Option(
            help="Write metrics JSON/Markdown, the confusion PNG and per-cell predictions.csv here."
        ),
    ] = None,
    device: _DEVICE = "auto",
) -> None:
    """Evaluate a saved model on a labelled dataset: per-class precision, recall, F1, support."""
    from leukoscope.classifier.evaluate import evaluate_checkpoint, write_report
    from leukoscope.classifier.predictions import write_predictions
    from leukoscope.classifier.train import select_device
    from leukoscope.cli.evaluation_view import print_readings

    result = evaluate_checkpoint(model, data, select_device(device))
    names = result.modalities if len(result.modalities) > 1 else None
    readings = [("raw", "raw argmax", result.raw)]
    if result.corrected is not None:
        readings.append(("prior_corrected", "prior-corrected", result.corrected))
    print_readings(console, [(title, metrics) for _, title, metrics in readings], names)
    s = result.pipeline
    console.print(
        f"the pipeline uses the {result.pipeline_reading} reading: accuracy "
        f"{100 * s['accuracy']:.2f} %, macro-F1 {100 * s['macro_f1']:.2f} %"
    )
    if out is not None:
        for key, title, metrics in readings:
            write_report(
                out, f"evaluation_{key}", metrics, f"{model.name} on {data}, {title}", names
            )
        predictions = write_predictions(out / "predictions.csv", result)
        console.print(f"wrote {out / 'evaluation_raw.md'} and per-cell {predictions}", markup=False)


@experiment_app.command("paper")
def experiment_paper(
    data: _DATA,
    out: Annotated[Path, typer.Option(help="Experiment folder (resumable).")] = Path("runs/paper"),
    folds: _FOLDS = _RECIPE.folds,
    epochs: _EPOCHS = _RECIPE.epochs,
    input_size: _SIZE = None,
    seed: _SEED = _RECIPE.seed,
    rho: _RHO = _RECIPE.rho,
    batch_repetition: _REPEAT = _RECIPE.batch_repetition,
    weight_decay: _WEIGHT_DECAY = _RECIPE.weight_decay,
    warmup_epochs: _WARMUP = _RECIPE.warmup_epochs,
    augment: _AUGMENT = _RECIPE.augment,
    jitter: _JITTER = None,
    label_smoothing: _SMOOTHING = _RECIPE.label_smoothing,
    fold_limit: _FOLD_LIMIT = None,
    device: _DEVICE = "auto",
    threads: _THREADS = 0,
) -> None:
    """Table 1 (single per modality) and Table 2 (ensemble, mm_mimo, hs_mm_mimo) of the paper."""
    from leukoscope.classifier.data import native_input_size
    from leukoscope.classifier.experiment import run_paper
    from leukoscope.classifier.recipe import jitter_options, make_config

    config = make_config(
        "hs_mm_mimo",
        None,
        folds=folds,
        epochs=epochs,
        input_size=input_size if input_size is not None else native_input_size(data),
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
