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
    final/model.pt              the final fit (all cells but the open-set share, same recipe), its
                                open-set score fitted on the cells it left out
    final/open_set_index.npy    those cells' indices
    model.pt                    the model to ship: the final fit (or the best fold's model with
                                --no-final), the CV summary in its metadata

Pieces of a run (`parts`: a fold or "final") can run in separate processes on the same folder.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console

from leukoscope.atomic import atomic_file
from leukoscope.classifier.batches import BatchPreparer
from leukoscope.classifier.data import CellDataset, load_dataset
from leukoscope.classifier.evaluate import (
    compute_metrics,
    predict,
    summarize,
    write_json,
    write_report,
)
from leukoscope.classifier.fit import configure_torch, fit_model, select_device
from leukoscope.classifier.folds import fold_splits
from leukoscope.classifier.history import HISTORY_CSV, HISTORY_PNG, plot_histories, read_history
from leukoscope.classifier.open_set_fit import fit_checkpoint_on, held_out_split
from leukoscope.classifier.prior import PriorCorrection, fit_prior_correction
from leukoscope.classifier.progress import TrainProgress
from leukoscope.classifier.recipe import OPEN_SET_KEYS, TrainConfig, recipe_summary
from leukoscope.classifier.run_checkpoints import provenance_of, save_model, ship_model
from leukoscope.errors import ParameterError

MIN_OPEN_SET_CELLS = 20
"""Fewer held-out cells than this: the shipped model has no open-set fit (it flags nothing)."""

__all__ = [
    "FoldResult",
    "RunResult",
    "TrainingRun",
    "configure_torch",
    "load_fold",
    "run_training",
    "select_device",
]


@dataclass(frozen=True)
class FoldResult:
    """Validation outcome of one fold."""

    fold: int
    val_index: np.ndarray
    val_probs: np.ndarray
    metrics: dict[str, Any]
    checkpoint: Path

    @property
    def accuracy(self) -> float:
        """Raw-argmax accuracy on the fold's held-out cells, 0-1."""
        return float(self.metrics["accuracy"])

    @property
    def macro_f1(self) -> float:
        """Macro-F1 on the fold's held-out cells, 0-1."""
        return float(self.metrics["macro_f1"])

    @property
    def train_s(self) -> float:
        """Wall time of the fold's training, s (0 when not recorded)."""
        return float(self.metrics.get("train_s", 0.0))


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


def _check_run_config(out_dir: Path, config: TrainConfig) -> None:
    path = out_dir / "run.json"
    wanted = config.model_dump(mode="json")
    if path.exists():
        stored = json.loads(path.read_text("utf-8"))
        stored = {**{k: wanted[k] for k in OPEN_SET_KEYS}, **stored}  # runs from before them
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


@dataclass
class TrainingRun:
    """One run folder: the dataset, the recipe, the device and the progress display that every
    piece of the run (folds, prior correction, final fit, shipping) shares."""

    dataset: CellDataset
    config: TrainConfig
    out_dir: Path
    device: torch.device
    progress: TrainProgress
    label: str = field(default="")

    def __post_init__(self) -> None:
        self.label = self.label or self.config.arch
        self.out_dir.mkdir(parents=True, exist_ok=True)
        _check_run_config(self.out_dir, self.config)

    @cached_property
    def splits(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """The stratified folds (train, validation) of this run's seed."""
        dataset = self.dataset
        return fold_splits(dataset.labels, self.config.folds, self.config.seed, dataset.classes)

    def fold(self, k: int) -> FoldResult:
        """Train and validate fold `k` (or load it when it is already done)."""
        dataset, config = self.dataset, self.config
        fold_dir = self.out_dir / f"fold_{k}"
        done = load_fold(k, fold_dir)
        if done is not None:
            self.progress.log(f"{self.label} fold {k}: done earlier, reusing {fold_dir}")
            return done
        train_index, val_index = self.splits[k]
        state = fold_dir / "train_state.pt"
        began = time.perf_counter()
        label = f"{self.label} fold {k}"
        model, mean, std = fit_model(
            dataset,
            config,
            train_index,
            (config.seed, k),
            state,
            self.device,
            self.progress,
            label,
            val_index,
        )
        preparer = BatchPreparer(mean, std, dataset.max_value, self.device)
        probs = predict(model, dataset.images[val_index], preparer)
        names = [c.value for c in dataset.classes]
        metrics = compute_metrics(dataset.labels[val_index], probs, names)
        metrics["train_s"] = round(time.perf_counter() - began, 1)
        provenance = provenance_of(config, dataset, len(train_index), fold=k, folds=config.folds)
        save_model(fold_dir / "model.pt", model, config, dataset, mean, std, metrics, provenance)
        for name, array in (("val_index.npy", val_index), ("val_probs.npy", probs)):
            with atomic_file(fold_dir / name) as handle:
                np.save(handle, array, allow_pickle=False)
        heads = self._heads(metrics)
        write_report(fold_dir, "metrics", metrics, label, heads)
        state.unlink(missing_ok=True)
        self.progress.log(
            f"{label}: accuracy {100 * metrics['accuracy']:.2f} %, "
            f"macro-F1 {100 * metrics['macro_f1']:.2f} % ({metrics['train_s']:.0f} s)"
        )
        return load_fold(k, fold_dir) or FoldResult(k, val_index, probs, metrics, fold_dir)

    def cross_validate(
        self, fold_limit: int | None = None
    ) -> tuple[list[FoldResult], dict[str, Any]]:
        """Every fold (the first `fold_limit` only, when given), then their summary and plots."""
        chosen = range(min(fold_limit or len(self.splits), len(self.splits)))
        results = [self.fold(k) for k in chosen]
        summary = summarize([r.metrics for r in results])
        summary["train_s_total"] = round(sum(r.train_s for r in results), 1)
        title = f"{self.label}: {len(results)} of {self.config.folds} folds (mean ± std)"
        write_report(self.out_dir, "cv", summary, title, self._heads(summary))
        histories = {
            f"fold {r.fold}": read_history(self.out_dir / f"fold_{r.fold}" / HISTORY_CSV)
            for r in results
        }
        plot_histories(histories, self.out_dir / HISTORY_PNG, title)
        return results, summary

    def correct_priors(self, folds: list[FoldResult]) -> PriorCorrection | None:
        """Fit the shipped model's prior correction on the folds; report the corrected figures."""
        dataset, config = self.dataset, self.config
        if config.balance == 0:
            return None
        correction = fit_prior_correction(
            folds,
            dataset.labels,
            dataset.class_counts(),
            config.balance,
            [c.value for c in dataset.classes],
        )
        title = (
            f"{config.arch}: {len(folds)} of {config.folds} folds, prior-corrected "
            f"(power {correction.power:g} of balance {config.balance:g}; mean ± std)"
        )
        heads = self._heads(correction.summary)
        write_report(self.out_dir, "cv_prior_corrected", correction.summary, title, heads)
        write_json(self.out_dir / "prior_correction.json", correction.metadata())
        self.progress.log(
            f"prior correction: power {correction.power:g} (balance {config.balance:g}), class "
            f"totals within {100 * correction.summary['count_bias']:.1f} %, accuracy "
            f"{100 * correction.summary['accuracy']['mean']:.2f} %, macro-F1 "
            f"{100 * correction.summary['macro_f1']['mean']:.2f} %"
        )
        return correction

    def final_fit(self) -> Path:
        """Train on every cell but the open-set share with the same recipe, then fit the open-set
        score on that share: `final/model.pt` (reused when present)."""
        dataset, config = self.dataset, self.config
        path = self.out_dir / "final" / "model.pt"
        held_path = path.parent / "open_set_index.npy"
        if path.exists():
            self.progress.log(f"{config.arch} final fit: done earlier, reusing {path}")
        else:
            began = time.perf_counter()
            share = config.open_set_holdout if config.open_set_rate > 0 else 0.0
            kept, held = held_out_split(dataset.labels, share, config.seed)
            state = path.parent / "train_state.pt"
            model, mean, std = fit_model(
                dataset,
                config,
                kept,
                (config.seed, 1_000_000),
                state,
                self.device,
                self.progress,
                f"{config.arch} final",
            )
            train_s = round(time.perf_counter() - began, 1)
            provenance = provenance_of(
                config,
                dataset,
                len(kept),
                final_fit=True,
                train_s=train_s,
                open_set_cells=len(held),
            )
            if len(held):
                with atomic_file(held_path) as handle:
                    np.save(handle, held, allow_pickle=False)
            save_model(path, model, config, dataset, mean, std, {}, provenance)
            state.unlink(missing_ok=True)
        if held_path.exists():
            self.fit_open_set(path, np.load(held_path, allow_pickle=False), "the final fit")
        return path

    def fit_open_set(self, checkpoint: Path, held: np.ndarray, left_out_by: str) -> None:
        """Fit `checkpoint`'s open-set score on the cells `held` (indices) it was not trained on, at
        the recipe's flag rate (nothing when that is 0 or the checkpoint has its fit already)."""
        from leukoscope.classifier.checkpoint import read_checkpoint

        config = self.config
        if config.open_set_rate <= 0 or read_checkpoint(checkpoint)[1].open_set is not None:
            return
        if len(held) < MIN_OPEN_SET_CELLS:
            self.progress.log(
                f"no open-set fit: {len(held)} held-out cells, fewer than {MIN_OPEN_SET_CELLS}"
            )
            return
        fit = fit_checkpoint_on(
            checkpoint,
            self.dataset.images[held],
            self.dataset.labels[held],
            target_flag_rate=config.open_set_rate,
            source=f"{len(held)} cells of {self.dataset.root} left out by {left_out_by}",
            threads=torch.get_num_threads(),
        )
        self.progress.log(
            f"open-set score fitted on {fit.cells} held-out cells: threshold {fit.threshold:.1f} "
            f"flags {100 * fit.flag_rate:.1f} % of them (target {100 * config.open_set_rate:g} %)"
        )

    def parts(self, parts: list[str]) -> list[FoldResult]:
        """Only the named pieces ("0", "1", ..., "final"), e.g. one per process."""
        folds = []
        for part in parts:
            if part == "final":
                self.final_fit()
            elif part.isdigit() and int(part) < len(self.splits):
                folds.append(self.fold(int(part)))
            else:
                last = len(self.splits) - 1
                raise ParameterError(f"unknown part {part!r}: a fold 0-{last} or 'final'")
        return folds

    def _heads(self, metrics: dict[str, Any]) -> list[str] | None:
        return [m.value for m in self.dataset.modalities] if "head_accuracy" in metrics else None


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
    run = TrainingRun(dataset, config, out_dir, chosen_device, progress)
    with progress.active():
        if parts:
            folds = run.parts(parts)
            summary = summarize([f.metrics for f in folds]) if folds else {}
            return RunResult(out_dir, folds, summary, None, time.perf_counter() - began)
        folds, summary = run.cross_validate(fold_limit)
        correction = run.correct_priors(folds)
        if final:
            source, chosen = run.final_fit(), dict[str, Any](final_fit=True)
        else:
            best = best_fold(folds)
            source, chosen = best.checkpoint, {"final_fit": False, "selected_fold": best.fold}
        model_path = ship_model(source, out_dir, summary, correction, **chosen)
        if not final:  # the best fold's own validation cells are held out from it
            run.fit_open_set(model_path, best.val_index, f"fold {best.fold}")
    corrected = correction.summary if correction is not None and correction.weights else None
    return RunResult(out_dir, folds, summary, model_path, time.perf_counter() - began, corrected)
