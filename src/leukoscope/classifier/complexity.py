"""Parameter and MAC counts, in the convention of the paper's tables.

MACs are counted by fvcore's `FlopCountAnalysis` (one multiply-accumulate = one "flop"), on the model in
eval mode, which counts convolutions, linear layers and BatchNorm (one per element). The paper's
"FLOPs" are exactly this count. `torch.utils.flop_counter` leaves BatchNorm out and reads about 2.6%
lower (143.9M instead of 147.8M for `single`). ReLU, max-pooling and the global mean are not counted.
fvcore traces the model through TorchScript: 4-6 s per network at 224x224 on the busy 2-core
development CPU (the ensemble, four networks: 18 s), so `leukoscope models` shows a progress bar.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from leukoscope.classifier.models import build_model
from leukoscope.types import MODALITIES, Modality

MAC_COUNTER = "fvcore FlopCountAnalysis (eval mode; conv + linear + BatchNorm)"


@dataclass(frozen=True)
class PaperFigure:
    """A row of the paper's table: 5 classes, 4 modalities x 3 channels, 224x224, width 1.0."""

    params: int | None
    macs: int | None
    params_text: str
    macs_text: str


PAPER_FIGURES: dict[str, PaperFigure] = {
    "single": PaperFigure(1_259_000, 147_800_000, "1.259M", "147.8M"),
    "ensemble": PaperFigure(5_035_000, 591_200_000, "5.035M", "591.2M"),
    "mm_mimo": PaperFigure(1_276_000, 172_200_000, "1.276M", "172.2M"),
    "hs_mm_mimo": PaperFigure(1_281_000, 187_600_000, "1.281M", "187.6M"),
}
"""Figures as printed in the paper (rounded); relative differences are taken against these."""


def count_params(model: nn.Module) -> int:
    """Number of parameters (trainable or not; BatchNorm running statistics excluded)."""
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Multiply-accumulates of one forward pass on a zero tensor of `input_shape` (fvcore)."""
    was_training = model.training
    model.eval()
    try:
        with warnings.catch_warnings(), torch.no_grad():
            # fvcore scripts/traces with torch.jit, which newer torch marks deprecated.
            warnings.simplefilter("ignore")
            from fvcore.nn import FlopCountAnalysis

            analysis = FlopCountAnalysis(model, torch.zeros(input_shape))
            analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
            return int(analysis.total())
    finally:
        model.train(was_training)


@dataclass(frozen=True)
class ComplexityRow:
    """Measured size and cost of one configuration, with the paper's figure when there is one."""

    name: str
    params: int
    macs: int
    paper: PaperFigure | None

    @property
    def params_diff(self) -> float | None:
        """Relative difference to the paper's parameter count."""
        if self.paper is None or self.paper.params is None:
            return None
        return self.params / self.paper.params - 1.0

    @property
    def macs_diff(self) -> float | None:
        """Relative difference to the paper's MAC count."""
        if self.paper is None or self.paper.macs is None:
            return None
        return self.macs / self.paper.macs - 1.0


def measure(
    arch: str,
    modalities: tuple[Modality, ...] = MODALITIES,
    in_chans: int = 3,
    num_classes: int = 5,
    input_size: int = 224,
    width: float = 1.0,
    **options: str,
) -> tuple[int, int]:
    """(params, MACs) of a registered architecture at one input size."""
    if arch == "single":
        modalities = modalities[:1]
    model = build_model(arch, modalities, in_chans, num_classes, width, **options)
    shape = (1, len(modalities), in_chans, input_size, input_size)
    return count_params(model), count_macs(model, shape)


TABLE_ROWS: tuple[tuple[str, str, dict[str, str]], ...] = (
    ("single", "single", {}),
    ("ensemble", "ensemble", {}),
    ("mm_mimo", "mm_mimo", {}),
    ("hs_mm_mimo", "hs_mm_mimo", {}),
    ("hs_mm_mimo (literal)", "hs_mm_mimo", {"hs_variant": "literal"}),
)
"""(row name, architecture, options) of `complexity_table`, in order."""


def complexity_table(
    in_chans: int = 3,
    input_size: int = 224,
    width: float = 1.0,
    num_classes: int = 5,
    progress: Callable[[str], None] | None = None,
) -> list[ComplexityRow]:
    """Every registered model (and the literal HS-MM-MIMO reading) on the four modalities;
    `progress` is told each row's name before it is measured (seconds each on a CPU)."""
    paper_setting = in_chans == 3 and input_size == 224 and width == 1.0 and num_classes == 5
    rows = []
    for name, arch, options in TABLE_ROWS:
        if progress is not None:
            progress(name)
        params, macs = measure(
            arch, MODALITIES, in_chans, num_classes, input_size, width, **options
        )
        paper = PAPER_FIGURES.get(arch) if paper_setting else None
        rows.append(ComplexityRow(name, params, macs, paper))
    return rows
