"""The training loop: one network trained on a set of cells with the recipe (MIMO sampling, class
balance, augmentation, AdamW + cosine), resumable after an interruption, with its per-epoch history.

`train.py` runs it per fold and for the final fit; nothing here knows about folds or run folders.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from leukoscope.atomic import atomic_file
from leukoscope.classifier.batches import (
    BatchPreparer,
    balanced_batches,
    gather_mimo_batch,
    mimo_indices,
)
from leukoscope.classifier.data import MIMO_ARCHS, CellDataset, norm_stats
from leukoscope.classifier.evaluate import compute_metrics, predict
from leukoscope.classifier.history import (
    HISTORY_CSV,
    HISTORY_PNG,
    EpochRecord,
    append_epoch,
    plot_histories,
    read_history,
)
from leukoscope.classifier.progress import TrainProgress
from leukoscope.classifier.recipe import TrainConfig, augment_config
from leukoscope.errors import ParameterError

DEVICE_NAMES = "auto, cpu, cuda, cuda:N or mps"


def select_device(name: str = "auto") -> torch.device:
    """CUDA when present (or asked for), CPU otherwise; `name` checked before any work: auto, cpu,
    cuda, cuda:N or mps, and only when this machine has it (ParameterError, one line)."""
    name = name.strip().lower()
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if not re.fullmatch(r"cpu|cuda(:\d{1,3})?|mps", name):
        raise ParameterError(f"--device {name!r} is not one of {DEVICE_NAMES}")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ParameterError("CUDA was asked for but is not available")
        index = int(name.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise ParameterError(
                f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s)"
            )
    if name == "mps" and not torch.backends.mps.is_available():
        raise ParameterError("MPS (Apple GPU) was asked for but is not available")
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


def build_for(config: TrainConfig, dataset: CellDataset) -> torch.nn.Module:
    """The network `config` describes, for `dataset`'s modalities and channels."""
    from leukoscope.classifier.models import build_model

    return build_model(
        config.arch,
        dataset.modalities,
        in_chans=dataset.in_chans,
        num_classes=len(dataset.classes),
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
            loss.backward()  # type: ignore[no-untyped-call]
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
        with atomic_file(state_path) as handle:
            torch.save(
                {
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "epoch": epoch + 1,
                },
                handle,
            )


Validator = Callable[[torch.nn.Module], tuple[float, float]]
"""Validation accuracy and macro-F1 of a model (raw argmax), for the per-epoch history."""


def validator(dataset: CellDataset, val_index: np.ndarray, preparer: BatchPreparer) -> Validator:
    """A Validator on `dataset`'s cells `val_index`; leaves the model in training mode."""
    images, labels = dataset.images[val_index], dataset.labels[val_index]
    names = [c.value for c in dataset.classes]

    def score(model: torch.nn.Module) -> tuple[float, float]:
        metrics = compute_metrics(labels, predict(model, images, preparer), names)
        model.train()
        return float(metrics["accuracy"]), float(metrics["macro_f1"])

    return score


def fit_model(
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
