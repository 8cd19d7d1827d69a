"""The four networks of Yang, Mehta & Ge (MIDL 2022), behind one explicit registry.

Every model takes a batch `(B, M, C, H, W)` (M modalities in canonical order, C channels each) and
returns per-head logits `(B, heads, classes)`. The prediction is `predict_proba`: the mean over heads of
the per-head softmax, never the softmax of averaged logits.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, cast

import torch
from torch import Tensor, nn

from leukoscope.classifier.backbone import ShuffleNetV2, stage_channels
from leukoscope.errors import ParameterError
from leukoscope.types import MODALITIES, Modality

HsVariant = Literal["paper", "literal"]
HS_VARIANTS: tuple[str, ...] = ("paper", "literal")


def predict_proba(logits: Tensor) -> Tensor:
    """Class probabilities (B, classes): mean over heads of each head's softmax."""
    return logits.softmax(dim=-1).mean(dim=1)


class MultimodalModel(nn.Module):
    """Base: validates the (B, M, C, H, W) input; subclasses produce (B, heads, classes)."""

    num_heads: int

    def __init__(self, modalities: tuple[Modality, ...], in_chans: int, num_classes: int) -> None:
        super().__init__()
        self.modalities = modalities
        self.in_chans = in_chans
        self.num_classes = num_classes

    def _check(self, x: Tensor) -> None:
        expected = (len(self.modalities), self.in_chans)
        if x.dim() != 5 or tuple(x.shape[1:3]) != expected:
            raise ParameterError(
                f"expected input (B, {expected[0]}, {expected[1]}, H, W), got {tuple(x.shape)}"
            )


class _FusedInput(MultimodalModel):
    """One backbone over the modalities stacked on the channel axis, one head per modality."""

    def __init__(
        self,
        modalities: tuple[Modality, ...],
        in_chans: int,
        num_classes: int,
        net: ShuffleNetV2,
    ) -> None:
        super().__init__(modalities, in_chans, num_classes)
        self.num_heads = len(modalities)
        self.net = net

    def forward(self, x: Tensor) -> Tensor:
        """Per-head logits (B, M, classes)."""
        self._check(x)
        logits = self.net(x.flatten(1, 2))
        return cast(torch.Tensor, logits.view(x.shape[0], self.num_heads, self.num_classes))


class SingleModel(_FusedInput):
    """The paper's baseline: one ShuffleNetV2 on one modality (one head)."""

    def __init__(
        self, modalities: tuple[Modality, ...], in_chans: int, num_classes: int, width: float
    ) -> None:
        if len(modalities) != 1:
            raise ParameterError(f"'single' takes exactly one modality, got {len(modalities)}")
        super().__init__(
            modalities, in_chans, num_classes, ShuffleNetV2(width, in_chans, num_classes)
        )


class MMMimoModel(_FusedInput):
    """MM-MIMO: modalities concatenated into conv1; one linear layer with M x classes outputs."""

    def __init__(
        self, modalities: tuple[Modality, ...], in_chans: int, num_classes: int, width: float
    ) -> None:
        m = len(modalities)
        net = ShuffleNetV2(width, m * in_chans, m * num_classes)
        super().__init__(modalities, in_chans, num_classes, net)


class HSMMMimoModel(_FusedInput):
    """HS-MM-MIMO: a stem per modality, concatenated; a shared trunk; a linear head per modality.

    The M stems are one grouped convolution (groups=M), which is the same function as M separate
    stems plus a concatenation. The M linear heads are one Linear with M x classes outputs, split.
    `hs_variant="paper"` (default) reproduces the paper's figures; "literal" widens the whole first
    unit of stage2 to the concatenated width (docs/models.md).
    """

    def __init__(
        self,
        modalities: tuple[Modality, ...],
        in_chans: int,
        num_classes: int,
        width: float,
        hs_variant: str = "paper",
    ) -> None:
        if hs_variant not in HS_VARIANTS:
            raise ParameterError(f"hs_variant must be one of {HS_VARIANTS}, got {hs_variant!r}")
        m = len(modalities)
        branch1_out = stage_channels(width)[0] if hs_variant == "paper" else None
        net = ShuffleNetV2(
            width,
            m * in_chans,
            m * num_classes,
            stem_groups=m,
            stage2_branch1_out=branch1_out,
        )
        super().__init__(modalities, in_chans, num_classes, net)
        self.hs_variant = hs_variant


class EnsembleModel(MultimodalModel):
    """One independent `single` network per modality; each member is one head."""

    def __init__(
        self, modalities: tuple[Modality, ...], in_chans: int, num_classes: int, width: float
    ) -> None:
        super().__init__(modalities, in_chans, num_classes)
        self.num_heads = len(modalities)
        self.members = nn.ModuleList(
            SingleModel((m,), in_chans, num_classes, width) for m in modalities
        )

    def forward(self, x: Tensor) -> Tensor:
        """Per-member logits (B, M, classes)."""
        self._check(x)
        outs = [member(x[:, i : i + 1]) for i, member in enumerate(self.members)]
        return torch.cat(outs, dim=1)


MODELS: dict[str, Callable[..., MultimodalModel]] = {
    "single": SingleModel,
    "ensemble": EnsembleModel,
    "mm_mimo": MMMimoModel,
    "hs_mm_mimo": HSMMMimoModel,
}


def build_model(
    arch: str,
    modalities: tuple[Modality, ...],
    in_chans: int = 3,
    num_classes: int = 5,
    width: float = 1.0,
    **options: Any,
) -> MultimodalModel:
    """Build a registered network. `options` are architecture-specific (hs_mm_mimo: hs_variant)."""
    if arch not in MODELS:
        raise ParameterError(f"unknown architecture {arch!r}; registered: {', '.join(MODELS)}")
    mods = tuple(Modality(m) for m in modalities)
    if not mods or len(set(mods)) != len(mods):
        raise ParameterError(f"need a non-empty set of distinct modalities, got {modalities}")
    if mods != tuple(m for m in MODALITIES if m in mods):
        raise ParameterError(
            "modalities must be in canonical order: " + ", ".join(m.value for m in MODALITIES)
        )
    if in_chans < 1 or num_classes < 2:
        raise ParameterError(
            f"need in_chans >= 1 and num_classes >= 2, got {in_chans}, {num_classes}"
        )
    try:
        return MODELS[arch](mods, in_chans, num_classes, width, **options)
    except TypeError as exc:
        raise ParameterError(f"bad options for {arch!r}: {exc}") from None
