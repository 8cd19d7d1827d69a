"""Training batches: class-balanced draws, MIMO sampling (which cell each head sees), augmentation
and the normalisation of a batch, all in torch on whole batches."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from leukoscope.classifier.data import CellDataset
from leukoscope.types import CELL_CLASSES


@dataclass(frozen=True)
class AugmentConfig:
    """Training augmentation. The default is the one that holds on real cells (docs/results.md,
    "Training recipe"): one of the 8 flips/90-degree rotations per cell, nothing else. Scale, shift,
    contrast and gain jitter are options (0 = off); on real cells they cost accuracy."""

    scale: float = 0.0
    shift: float = 0.0
    contrast: float = 0.0
    gain: float = 0.0

    @property
    def resamples(self) -> bool:
        """Whether the geometric part interpolates (scale or shift), not only permutes pixels."""
        return self.scale > 0 or self.shift > 0

    @property
    def photometric(self) -> bool:
        """Whether intensities are changed at all."""
        return self.contrast > 0 or self.gain > 0


def _uniform(n: int, spread: float, generator: torch.Generator) -> torch.Tensor:
    return 1.0 + (torch.rand(n, generator=generator) * 2.0 - 1.0) * spread


def dihedral_augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One of the 8 flips/90-degree rotations per example, the same for all its modalities.

    Exact (a permutation of pixels, no interpolation); `x` is (B, M, C, H, W) with H == W.
    """
    batch = x.shape[0]
    quarter = torch.randint(0, 4, (batch,), generator=generator)
    flip = torch.rand(batch, generator=generator) < 0.5
    out = torch.empty_like(x)
    for k in range(4):
        for flipped in (False, True):
            chosen = ((quarter == k) & (flip == flipped)).nonzero().flatten().to(x.device)
            if chosen.numel() == 0:
                continue
            part = x.index_select(0, chosen)
            if flipped:
                part = part.flip(-1)
            out.index_copy_(0, chosen, part.rot90(k, dims=(-2, -1)))
    return out


def geometric_augment(
    x: torch.Tensor, config: AugmentConfig, generator: torch.Generator
) -> torch.Tensor:
    """One random flip/rotation (and, when configured, scale/shift) per example, the same for all
    its modalities. Without scale and shift it is exact (`dihedral_augment`); with them, one
    grid_sample (bilinear, reflection at the borders) does it all.
    """
    if not config.resamples:
        return dihedral_augment(x, generator)
    batch, modalities, channels, height, width = x.shape
    quarter = torch.randint(0, 4, (batch,), generator=generator).float() * (torch.pi / 2)
    flip = torch.where(torch.rand(batch, generator=generator) < 0.5, -1.0, 1.0)
    scale = _uniform(batch, config.scale, generator)
    cos, sin = torch.cos(quarter).round(), torch.sin(quarter).round()
    theta = torch.zeros(batch, 2, 3)
    theta[:, 0, 0] = cos * flip / scale
    theta[:, 0, 1] = -sin / scale
    theta[:, 1, 0] = sin * flip / scale
    theta[:, 1, 1] = cos / scale
    theta[:, :, 2] = (torch.rand(batch, 2, generator=generator) * 2 - 1) * config.shift * 2
    theta = theta.to(x.device)
    flat = x.reshape(batch, modalities * channels, height, width)
    grid = F.affine_grid(theta, list(flat.shape), align_corners=False)
    out = F.grid_sample(flat, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    return out.reshape(x.shape)


def photometric_augment(
    x: torch.Tensor, config: AugmentConfig, generator: torch.Generator
) -> torch.Tensor:
    """Contrast about the image mean and a brightness gain, drawn per example and modality."""
    batch, modalities = x.shape[:2]
    shape = (batch, modalities, 1, 1, 1)
    contrast = _uniform(batch * modalities, config.contrast, generator).reshape(shape)
    gain = _uniform(batch * modalities, config.gain, generator).reshape(shape)
    mean = x.mean(dim=(2, 3, 4), keepdim=True)
    out = ((x - mean) * contrast.to(x.device) + mean) * gain.to(x.device)
    return out.clamp_(0.0, 1.0)


class BatchPreparer:
    """Turns integer image batches into normalised float tensors (with augmentation in training)."""

    def __init__(
        self,
        mean: np.ndarray,
        std: np.ndarray,
        max_value: float,
        device: torch.device,
        augment: AugmentConfig | None = None,
    ) -> None:
        self.mean = torch.as_tensor(mean, dtype=torch.float32, device=device)[
            None, :, :, None, None
        ]
        self.std = torch.as_tensor(std, dtype=torch.float32, device=device)[None, :, :, None, None]
        self.max_value = max_value
        self.device = device
        self.augment = augment

    def __call__(
        self, images: np.ndarray, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """(B, M, C, H, W) integers -> normalised float32 on the device."""
        x = torch.from_numpy(images.astype(np.float32)).to(self.device) / self.max_value
        if self.augment is not None:
            if generator is None:
                raise ValueError("augmentation needs a generator")
            x = geometric_augment(x, self.augment, generator)
            if self.augment.photometric:
                x = photometric_augment(x, self.augment, generator)
        return (x - self.mean) / self.std


def class_weights(labels: np.ndarray, power: float = 1.0) -> np.ndarray:
    """Sampling weight per example: class count ** -power (1 = fully class-balanced, 0 = none)."""
    counts = np.bincount(labels, minlength=len(CELL_CLASSES)).astype(np.float64)
    per_class = np.where(counts > 0, np.maximum(counts, 1.0) ** -power, 0.0)
    weights = per_class[labels]
    return np.asarray(weights / weights.sum())


def balanced_batches(
    indices: np.ndarray,
    labels: np.ndarray,
    loaded_batch: int,
    steps: int,
    generator: torch.Generator,
    power: float = 1.0,
) -> torch.Tensor:
    """`steps` batches of `loaded_batch` dataset indices drawn with class-balancing weights."""
    weights = torch.as_tensor(class_weights(labels[indices], power))
    draws = torch.multinomial(weights, steps * loaded_batch, replacement=True, generator=generator)
    return torch.as_tensor(indices)[draws].reshape(steps, loaded_batch)


def mimo_indices(
    loaded: torch.Tensor,
    heads: int,
    rho: float,
    repetitions: int,
    generator: torch.Generator,
) -> torch.Tensor:
    """Per-head example indices for one MIMO step, as in Havasi et al. 2020 (edward2's MIMO).

    The loaded batch is tiled `repetitions` times and shuffled; the first (1 - rho) of it is
    shuffled again independently for every head (independent examples per head), the remaining
    rho fraction is the same for all heads (input repetition). Returns (heads, len(loaded) * R).
    """
    if not 0.0 <= rho <= 1.0:
        raise ValueError(f"rho must lie in [0, 1], got {rho}")
    if repetitions < 1:
        raise ValueError(f"batch repetition must be >= 1, got {repetitions}")
    tiled = loaded.repeat(repetitions)
    main = tiled[torch.randperm(tiled.numel(), generator=generator)]
    independent = int(main.numel() * (1.0 - rho))
    rows = []
    for _ in range(heads):
        row = main.clone()
        row[:independent] = main[:independent][torch.randperm(independent, generator=generator)]
        rows.append(row)
    return torch.stack(rows)


def gather_mimo_batch(
    dataset: CellDataset, per_head: torch.Tensor
) -> tuple[np.ndarray, np.ndarray]:
    """Images (B, M, C, H, W) where modality m comes from cell per_head[m], and labels (B, M)."""
    index = per_head.numpy()
    heads = index.shape[0]
    if heads != len(dataset.modalities):
        raise ValueError(f"{heads} heads for {len(dataset.modalities)} modalities")
    images = np.stack([dataset.images[index[m], m] for m in range(heads)], axis=1)
    labels = np.stack([dataset.labels[index[m]] for m in range(heads)], axis=1)
    return images, labels
