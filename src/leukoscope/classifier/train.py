"""Training with the paper's protocol: stratified k-fold cross-validation, MIMO sampling, final fit.

Output folder of one run (resumable: finished folds are kept, an interrupted fold restarts from its
last finished epoch):

    run.json                    the training configuration (a resumed run must match it)
    fold_<k>/model.pt           checkpoint trained on the other folds
    fold_<k>/metrics.json|.md   validation metrics, confusion matrix PNG
    fold_<k>/val_index.npy      validation cell indices and their per-head probabilities
    fold_<k>/val_probs.npy
    cv.json, cv.md              mean +/- std over folds (raw softmax)
    cv_prior_corrected.json|.md the same folds as the shipped model classifies (prior correction)
    final/model.pt              the final fit (all cells, same recipe)
    model.pt                    the model to ship: the final fit (or the best fold's model with
                                --no-final), the CV summary in its metadata

Pieces of a run (`parts`: a fold or "final") can run in separate processes on the same folder.
"""

from __future__ import annotations

import json
import math
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from rich.console import Console

from leukoscope import __version__
from leukoscope.classifier.data import (
    MIMO_ARCHS,
    BatchPreparer,
    CellDataset,
    balanced_batches,
    gather_mimo_batch,
    load_dataset,
    mimo_indices,
    norm_stats,
)
from leukoscope.classifier.evaluate import (
    compute_metrics,
    predict,
    summarize,
    write_json,
    write_report,
)
from leukoscope.classifier.history import (
    HISTORY_CSV,
    HISTORY_PNG,
    EpochRecord,
    append_epoch,
    plot_histories,
    read_history,
)
from leukoscope.classifier.prior import PriorCorrection, fit_prior_correction, prior_correction
from leukoscope.classifier.progress import TrainProgress
from leukoscope.classifier.recipe import TrainConfig, augment_config, recipe_summary
from leukoscope.errors import DatasetError, ParameterError
from leukoscope.types import CELL_CLASSES


@dataclass(frozen=True)
class FoldResult:
    """Validation outcome of one fold."""

    fold: int
    val_index: np.ndarray
    val_probs: np.ndarray
    metrics: dict[str, Any]
    checkpoint: Path


@dataclass(frozen=True)
class RunResult:
    """Outcome of a cross-validated training run."""

    out_dir: Path
    folds: list[FoldResult]
    summary: dict[str, Any]
    model_path: Path | None
    wall_s: float
    corrected: dict[str, Any] | None = None
    """The prior-corrected CV summary (what the pipeline's predictions score); None when no
    correction was fitted (balance 0, or power 0 chosen): then the pipeline reads the raw argmax."""


def select_device(name: str = "auto") -> torch.device:
    """CUDA when present (or asked for), CPU otherwise."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ParameterError("CUDA was asked for but is not available")
    return torch.device(name)


def configure_torch(threads: int, seed: int) -> None:
    """Threads (0 = leave torch's default) and deterministic settings."""
    if threads > 0:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True


def _seed(*parts: int) -> int:
    return int(np.random.SeedSequence([abs(p) for p in parts]).generate_state(1)[0])


def _generator(*parts: int) -> torch.Generator:
    return torch.Generator().manual_seed(_seed(*parts))


def fold_splits(labels: np.ndarray, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified k-fold splits (train, validation) of the cell indices, shuffled by `seed`."""
    from sklearn.model_selection import StratifiedKFold

    counts = np.bincount(labels, minlength=len(CELL_CLASSES))
    present = np.flatnonzero(counts)  # a class with no cells at all is not split
    rare = present[counts[present].argmin()]
    if counts[rare] < folds:
        raise DatasetError(
            f"class {CELL_CLASSES[rare].value} has {counts[rare]} cells, fewer than the {folds} "
            "folds asked for"
        )
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    placeholder = np.zeros(len(labels))
    return [(train, val) for train, val in splitter.split(placeholder, labels)]


def build_for(config: TrainConfig, dataset: CellDataset) -> torch.nn.Module:
    """The network `config` describes, for `dataset`'s modalities and channels."""
    from leukoscope.classifier.models import build_model

    return build_model(
        config.arch,
        dataset.modalities,
        in_chans=dataset.in_chans,
        num_classes=len(CELL_CLASSES),
        width=config.width,
        **config.options,
    )


def _lr_at(config: TrainConfig, step: int, total: int, steps_per_epoch: int) -> float:
    warmup = int(config.warmup_epochs * steps_per_epoch)
    if step < warmup:
        return config.lr * (step + 1) / warmup
    progress = (step - warmup) / max(total - warmup, 1)
    return config.lr * 0.5 * (1.0 + math.cos(math.pi * progress))


def _training_batch(
    dataset: CellDataset,
    loaded: torch.Tensor,
    config: TrainConfig,
    heads: int,
    generator: torch.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Images (B, M, C, H, W) and per-head labels (B, heads) for one step."""
    if config.arch in MIMO_ARCHS:
        per_head = mimo_indices(loaded, heads, config.rho, config.batch_repetition, generator)
        return gather_mimo_batch(dataset, per_head)
    index = loaded.repeat(config.batch_repetition).numpy()
    labels = np.repeat(dataset.labels[index][:, None], heads, axis=1)
    return dataset.images[index], labels


def train_model(
    model: torch.nn.Module,
    dataset: CellDataset,
    train_index: np.ndarray,
    preparer: BatchPreparer,
    config: TrainConfig,
    seed_parts: tuple[int, ...],
    state_path: Path,
    progress: TrainProgress,
    label: str,
    validate: Validator | None = None,
) -> None:
    """Train `model` in place on `train_index`; resumes from `state_path` after an interruption.

    Each epoch's sampling and augmentation come from a generator seeded by (seed, fold, epoch), so
    a resumed run draws exactly what an uninterrupted one would have. Every epoch adds a row to
    `history.csv` beside `state_path` (with `validate`'s accuracy and macro-F1 when given).
    """
    heads = int(getattr(model, "num_heads", 1))
    loaded_batch = max(1, config.batch_size // config.batch_repetition)
    steps = max(1, len(train_index) // loaded_batch)
    total = steps * config.epochs
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    start = 0
    if state_path.exists():
        state = torch.load(state_path, map_location=preparer.device, weights_only=True)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start = int(state["epoch"])
        progress.log(f"{label}: resuming after epoch {start}")
    for epoch in range(start, config.epochs):
        model.train()
        generator = _generator(*seed_parts, epoch)
        batches = balanced_batches(
            train_index, dataset.labels, loaded_batch, steps, generator, config.balance
        )
        task = progress.task(f"{label} epoch {epoch + 1}/{config.epochs}", steps)
        running, began = 0.0, time.perf_counter()
        for step, loaded in enumerate(batches):
            images, labels = _training_batch(dataset, loaded, config, heads, generator)
            x = preparer(images, generator)
            y = torch.from_numpy(labels).to(preparer.device)
            for group in optimizer.param_groups:
                group["lr"] = _lr_at(config, epoch * steps + step, total, steps)
            logits = model(x)
            loss = F.cross_entropy(
                logits.flatten(0, 1),
                y.flatten(),
                reduction="sum",
                label_smoothing=config.label_smoothing,
            ) / len(y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            running += float(loss.detach())
            progress.advance(task, f"loss {running / (step + 1):.3f}")
        scores = validate(model) if validate is not None else None
        record = EpochRecord(
            epoch=epoch + 1,
            lr=float(optimizer.param_groups[0]["lr"]),
            loss=running / steps,
            val_accuracy=scores[0] if scores else None,
            val_macro_f1=scores[1] if scores else None,
            seconds=round(time.perf_counter() - began, 2),
        )
        shown = (
            f", validation accuracy {100 * scores[0]:.2f} %, macro-F1 {100 * scores[1]:.2f} %"
            if scores
            else ""
        )
        progress.log(
            f"{label} epoch {epoch + 1}: loss {record.loss:.4f}{shown} ({record.seconds} s)"
        )
        append_epoch(state_path.parent / HISTORY_CSV, record)
        state_path.parent.mkdir(parents=True, exist_ok=True)
        temp = state_path.with_suffix(".tmp")
        torch.save(
            {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch + 1},
            temp,
        )
        temp.replace(state_path)


Validator = Callable[[torch.nn.Module], tuple[float, float]]
"""Validation accuracy and macro-F1 of a model (raw argmax), for the per-epoch history."""


def validator(dataset: CellDataset, val_index: np.ndarray, preparer: BatchPreparer) -> Validator:
    """A Validator on `dataset`'s cells `val_index`; leaves the model in training mode."""
    images, labels = dataset.images[val_index], dataset.labels[val_index]

    def score(model: torch.nn.Module) -> tuple[float, float]:
        metrics = compute_metrics(labels, predict(model, images, preparer))
        model.train()
        return float(metrics["accuracy"]), float(metrics["macro_f1"])

    return score


def _command() -> str:
    return " ".join(["leukoscope", *sys.argv[1:]]) if sys.argv else ""


def _provenance(
    config: TrainConfig, dataset: CellDataset, cells: int, **extra: Any
) -> dict[str, Any]:
    return {
        "command": _command(),
        "dataset": str(dataset.root),
        "dataset_cells": len(dataset.labels),
        "dataset_class_counts": dataset.class_counts(),
        "trained_on_cells": cells,
        "train_config": config.model_dump(mode="json"),
        "leukoscope_version": __version__,
        "torch_version": torch.__version__,
        "machine": platform.platform(),
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **extra,
    }


def save_model(
    path: Path,
    model: torch.nn.Module,
    config: TrainConfig,
    dataset: CellDataset,
    mean: np.ndarray,
    std: np.ndarray,
    metrics: dict[str, Any],
    provenance: dict[str, Any],
) -> None:
    """Write a checkpoint in the networks' format (weights + JSON metadata)."""
    from leukoscope.classifier.checkpoint import ModelMeta, save_checkpoint

    meta = ModelMeta(
        arch=config.arch,
        options={"width": config.width, **config.options},
        modalities=list(dataset.modalities),
        in_chans=dataset.in_chans,
        classes=list(CELL_CLASSES),
        input_size=config.input_size,
        norm_mean=mean.tolist(),
        norm_std=std.tolist(),
        provenance=provenance,
        metrics=metrics,
        class_weights=prior_correction(dataset.class_counts(), config.balance),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(path, model.cpu(), meta)


def load_fold(fold: int, fold_dir: Path) -> FoldResult | None:
    """A finished fold read back from its folder (None while it is not finished)."""
    metrics_path = fold_dir / "metrics.json"
    if not metrics_path.exists():
        return None
    return FoldResult(
        fold=fold,
        val_index=np.load(fold_dir / "val_index.npy", allow_pickle=False),
        val_probs=np.load(fold_dir / "val_probs.npy", allow_pickle=False),
        metrics=json.loads(metrics_path.read_text("utf-8")),
        checkpoint=fold_dir / "model.pt",
    )


def _fit(
    dataset: CellDataset,
    config: TrainConfig,
    train_index: np.ndarray,
    seed_parts: tuple[int, ...],
    state_path: Path,
    device: torch.device,
    progress: TrainProgress,
    label: str,
    val_index: np.ndarray | None = None,
) -> tuple[torch.nn.Module, np.ndarray, np.ndarray]:
    """A model trained on `train_index`, with the normalisation computed on those cells (and its
    per-epoch history scored on `val_index` when given)."""
    mean, std = norm_stats(dataset, train_index)
    torch.manual_seed(_seed(*seed_parts))
    model = build_for(config, dataset).to(device)
    augment = augment_config(config)
    preparer = BatchPreparer(mean, std, dataset.max_value, device, augment)
    plain = BatchPreparer(mean, std, dataset.max_value, device)
    score = validator(dataset, val_index, plain) if val_index is not None else None
    train_model(
        model,
        dataset,
        train_index,
        preparer,
        config,
        seed_parts,
        state_path,
        progress,
        label,
        score,
    )
    plot_histories(
        {label: read_history(state_path.parent / HISTORY_CSV)},
        state_path.parent / HISTORY_PNG,
        label,
    )
    return model, mean, std


def run_fold(
    dataset: CellDataset,
    config: TrainConfig,
    fold: int,
    split: tuple[np.ndarray, np.ndarray],
    out_dir: Path,
    device: torch.device,
    progress: TrainProgress,
    label: str,
) -> FoldResult:
    """Train and validate one fold (or load it when it is already done)."""
    fold_dir = out_dir / f"fold_{fold}"
    done = load_fold(fold, fold_dir)
    if done is not None:
        progress.log(f"{label} fold {fold}: done earlier, reusing {fold_dir}")
        return done
    train_index, val_index = split
    state = fold_dir / "train_state.pt"
    began = time.perf_counter()
    model, mean, std = _fit(
        dataset,
        config,
        train_index,
        (config.seed, fold),
        state,
        device,
        progress,
        f"{label} fold {fold}",
        val_index,
    )
    preparer = BatchPreparer(mean, std, dataset.max_value, device)
    probs = predict(model, dataset.images[val_index], preparer)
    metrics = compute_metrics(dataset.labels[val_index], probs)
    metrics["train_s"] = round(time.perf_counter() - began, 1)
    provenance = _provenance(config, dataset, len(train_index), fold=fold, folds=config.folds)
    save_model(fold_dir / "model.pt", model, config, dataset, mean, std, metrics, provenance)
    np.save(fold_dir / "val_index.npy", val_index, allow_pickle=False)
    np.save(fold_dir / "val_probs.npy", probs, allow_pickle=False)
    heads = [m.value for m in dataset.modalities] if "head_accuracy" in metrics else None
    write_report(fold_dir, "metrics", metrics, f"{label} fold {fold}", heads)
    state.unlink(missing_ok=True)
    progress.log(
        f"{label} fold {fold}: accuracy {100 * metrics['accuracy']:.2f} %, "
        f"macro-F1 {100 * metrics['macro_f1']:.2f} % ({metrics['train_s']:.0f} s)"
    )
    return load_fold(fold, fold_dir) or FoldResult(fold, val_index, probs, metrics, fold_dir)


def _check_run_config(out_dir: Path, config: TrainConfig) -> None:
    path = out_dir / "run.json"
    wanted = config.model_dump(mode="json")
    if path.exists():
        stored = json.loads(path.read_text("utf-8"))
        if stored != wanted:
            changed = sorted(
                k for k in wanted.keys() | stored.keys() if stored.get(k) != wanted.get(k)
            )
            details = ", ".join(f"{k}: {stored.get(k)!r} -> {wanted.get(k)!r}" for k in changed)
            raise ParameterError(
                f"{out_dir} holds a run with another configuration ({details}); "
                "use another --out folder"
            )
        return
    write_json(path, wanted)


def cross_validate(
    dataset: CellDataset,
    config: TrainConfig,
    out_dir: Path,
    device: torch.device,
    progress: TrainProgress,
    fold_limit: int | None = None,
    label: str | None = None,
) -> tuple[list[FoldResult], dict[str, Any]]:
    """Stratified k-fold CV; the folds run (the first `fold_limit` only, when given) and summary."""
    _check_run_config(out_dir, config)
    label = label or config.arch
    splits = fold_splits(dataset.labels, config.folds, config.seed)
    chosen = splits[: fold_limit or len(splits)]
    results = [
        run_fold(dataset, config, k, split, out_dir, device, progress, label)
        for k, split in enumerate(chosen)
    ]
    summary = summarize([r.metrics for r in results])
    summary["train_s_total"] = round(sum(r.metrics.get("train_s", 0.0) for r in results), 1)
    title = f"{label}: {len(results)} of {config.folds} folds (mean ± std)"
    heads = [m.value for m in dataset.modalities] if "head_accuracy" in summary else None
    write_report(out_dir, "cv", summary, title, heads)
    histories = {
        f"fold {r.fold}": read_history(out_dir / f"fold_{r.fold}" / HISTORY_CSV) for r in results
    }
    plot_histories(histories, out_dir / HISTORY_PNG, title)
    return results, summary


def correct_priors(
    dataset: CellDataset,
    config: TrainConfig,
    folds: list[FoldResult],
    out_dir: Path,
    progress: TrainProgress,
) -> PriorCorrection | None:
    """Fit the shipped model's prior correction on the folds and report the corrected CV figures."""
    if config.balance == 0:
        return None
    correction = fit_prior_correction(folds, dataset.labels, dataset.class_counts(), config.balance)
    heads = [m.value for m in dataset.modalities] if "head_accuracy" in correction.summary else None
    title = (
        f"{config.arch}: {len(folds)} of {config.folds} folds, prior-corrected "
        f"(power {correction.power:g} of balance {config.balance:g}; mean ± std)"
    )
    write_report(out_dir, "cv_prior_corrected", correction.summary, title, heads)
    write_json(out_dir / "prior_correction.json", correction.metadata())
    progress.log(
        f"prior correction: power {correction.power:g} (balance {config.balance:g}), class totals "
        f"within {100 * correction.summary['count_bias']:.1f} %, accuracy "
        f"{100 * correction.summary['accuracy']['mean']:.2f} %, macro-F1 "
        f"{100 * correction.summary['macro_f1']['mean']:.2f} %"
    )
    return correction


def final_fit(
    dataset: CellDataset,
    config: TrainConfig,
    out_dir: Path,
    device: torch.device,
    progress: TrainProgress,
) -> Path:
    """Train on every cell with the same recipe: `out_dir/final/model.pt` (reused when present)."""
    final_dir = out_dir / "final"
    path = final_dir / "model.pt"
    if path.exists():
        progress.log(f"{config.arch} final fit: done earlier, reusing {path}")
        return path
    began = time.perf_counter()
    everything = np.arange(len(dataset.labels))
    state = final_dir / "train_state.pt"
    seed_parts = (config.seed, 1_000_000)
    label = f"{config.arch} final"
    model, mean, std = _fit(dataset, config, everything, seed_parts, state, device, progress, label)
    train_s = round(time.perf_counter() - began, 1)
    provenance = _provenance(config, dataset, len(everything), final_fit=True, train_s=train_s)
    save_model(path, model, config, dataset, mean, std, {}, provenance)
    state.unlink(missing_ok=True)
    return path


def ship_model(
    source: Path,
    out_dir: Path,
    summary: dict[str, Any],
    correction: PriorCorrection | None,
    **provenance: Any,
) -> Path:
    """`out_dir/model.pt`: the checkpoint `source` with the CV summary and the fitted prior
    correction (None: no balancing, so no correction) in its metadata."""
    from leukoscope.classifier.checkpoint import load_checkpoint, save_checkpoint

    model, meta = load_checkpoint(source)
    metrics: dict[str, Any] = {"cross_validation": summary}
    if correction is not None:
        metrics["cross_validation_prior_corrected"] = correction.summary
        metrics["prior_correction"] = correction.metadata()
    if meta.metrics:
        metrics["selected_fold"] = meta.metrics
    merged = {**meta.provenance, "command": _command(), **provenance}
    weights = correction.weights if correction is not None else None
    update = {"metrics": metrics, "provenance": merged, "class_weights": weights}
    path = out_dir / "model.pt"
    save_checkpoint(path, model, meta.model_copy(update=update))
    return path


def best_fold(folds: list[FoldResult]) -> FoldResult:
    """The fold whose model has the best validation macro-F1."""
    return max(folds, key=lambda r: r.metrics["macro_f1"])


def run_training(
    data_root: Path,
    config: TrainConfig,
    out_dir: Path,
    *,
    final: bool = True,
    fold_limit: int | None = None,
    parts: list[str] | None = None,
    device: str = "auto",
    threads: int = 0,
    console: Console | None = None,
    quiet: bool = False,
) -> RunResult:
    """Load the dataset, cross-validate, then ship the final fit (or the best fold's model).

    `parts` ("0", "1", ..., "final") runs only those pieces of the run, e.g. one per process; a
    later run without `parts` reuses them and writes the summary and `model.pt`.
    """
    began = time.perf_counter()
    configure_torch(threads, config.seed)
    chosen_device = select_device(device)
    progress = TrainProgress(console, quiet)
    dataset = load_dataset(data_root, config.input_size, config.modalities)
    progress.log(
        f"{len(dataset.labels)} cells, modalities {', '.join(m.value for m in dataset.modalities)}, "
        f"{dataset.in_chans} channel(s), {dataset.class_counts()}; device {chosen_device}; "
        f"{config.arch}, {config.epochs} epochs at {config.input_size} px, {recipe_summary(config)}"
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    with progress.active():
        if parts:
            return _run_parts(dataset, config, out_dir, parts, chosen_device, progress, began)
        folds, summary = cross_validate(
            dataset, config, out_dir, chosen_device, progress, fold_limit
        )
        correction = correct_priors(dataset, config, folds, out_dir, progress)
        if final:
            source = final_fit(dataset, config, out_dir, chosen_device, progress)
            model_path = ship_model(source, out_dir, summary, correction, final_fit=True)
        else:
            best = best_fold(folds)
            model_path = ship_model(
                best.checkpoint,
                out_dir,
                summary,
                correction,
                final_fit=False,
                selected_fold=best.fold,
            )
    corrected = correction.summary if correction is not None and correction.weights else None
    return RunResult(out_dir, folds, summary, model_path, time.perf_counter() - began, corrected)


def _run_parts(
    dataset: CellDataset,
    config: TrainConfig,
    out_dir: Path,
    parts: list[str],
    device: torch.device,
    progress: TrainProgress,
    began: float,
) -> RunResult:
    _check_run_config(out_dir, config)
    splits = fold_splits(dataset.labels, config.folds, config.seed)
    folds = []
    for part in parts:
        if part == "final":
            final_fit(dataset, config, out_dir, device, progress)
        elif part.isdigit() and int(part) < len(splits):
            k = int(part)
            folds.append(
                run_fold(dataset, config, k, splits[k], out_dir, device, progress, config.arch)
            )
        else:
            raise ParameterError(f"unknown part {part!r}: a fold 0-{len(splits) - 1} or 'final'")
    summary = summarize([f.metrics for f in folds]) if folds else {}
    return RunResult(out_dir, folds, summary, None, time.perf_counter() - began)
