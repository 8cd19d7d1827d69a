"""ShuffleNetV2 (Ma et al., ECCV 2018), structurally identical to torchvision's implementation.

Module and parameter names follow torchvision (`conv1`, `maxpool`, `stage2`..`stage4`, `conv5`, `fc`), so
`ShuffleNetV2(1.0)` has exactly torchvision's 2,278,604 parameters at 1000 classes and 3 input channels.
Two generalisations, both off by default, serve the multimodal models:

- `stem_groups`: `conv1` becomes one grouped convolution holding `stem_groups` independent stems (each
  `in_chans / stem_groups` -> 24 channels). This is mathematically four separate stems followed by a
  concatenation, but writes one tensor instead of four plus a copy.
- `stage2_branch1_out`: the output width of the first 3x3 convolution of branch1 in stage2's first unit
  (default: its input width, i.e. the usual depthwise convolution). A smaller value makes it a grouped
  convolution with `groups = stage2_branch1_out` (see docs/models.md, HS-MM-MIMO paper-exact reading).
"""

from __future__ import annotations

from typing import cast

import torch
from torch import Tensor, nn

from leukoscope.errors import ParameterError

STAGE_REPEATS: tuple[int, int, int] = (4, 8, 4)
STAGE_OUT_CHANNELS: dict[float, tuple[int, int, int, int, int]] = {
    0.5: (24, 48, 96, 192, 1024),
    1.0: (24, 116, 232, 464, 1024),
    1.5: (24, 176, 352, 704, 1024),
    2.0: (24, 244, 488, 976, 2048),
}


def stage_channels(width: float) -> tuple[int, int, int, int, int]:
    """Output channels of conv1, stage2, stage3, stage4 and conv5 for a width multiplier."""
    try:
        return STAGE_OUT_CHANNELS[float(width)]
    except KeyError:
        allowed = ", ".join(str(w) for w in STAGE_OUT_CHANNELS)
        raise ParameterError(
            f"ShuffleNetV2 width {width} not supported; allowed: {allowed}"
        ) from None


def channel_shuffle(x: Tensor, groups: int) -> Tensor:
    """Interleave the channels of `groups` equal groups."""
    batch, channels, height, width = x.shape
    x = x.view(batch, groups, channels // groups, height, width)
    return x.transpose(1, 2).reshape(batch, channels, height, width)


def _conv_bn(
    inp: int, out: int, kernel: int, stride: int = 1, groups: int = 1, relu: bool = True
) -> list[nn.Module]:
    layers: list[nn.Module] = [
        nn.Conv2d(inp, out, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(out),
    ]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return layers


class InvertedResidual(nn.Module):
    """ShuffleNetV2 unit: split (stride 1) or two-branch downsampling (stride 2), then shuffle."""

    def __init__(self, inp: int, oup: int, stride: int, branch1_out: int | None = None) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ParameterError(f"stride must be 1 or 2, got {stride}")
        branch = oup // 2
        if stride == 1 and inp != 2 * branch:
            raise ParameterError(f"a stride-1 unit needs inp == oup, got {inp} -> {oup}")
        self.stride = stride
        if stride > 1:
            mid = inp if branch1_out is None else branch1_out
            if inp % mid:
                raise ParameterError(f"branch1 width {mid} must divide the unit's input {inp}")
            # Depthwise when mid == inp (torchvision); a grouped conv inp -> mid otherwise.
            self.branch1: nn.Sequential = nn.Sequential(
                *_conv_bn(inp, mid, 3, stride, groups=mid, relu=False),
                *_conv_bn(mid, branch, 1),
            )
        else:
            self.branch1 = nn.Sequential()
        self.branch2 = nn.Sequential(
            *_conv_bn(inp if stride > 1 else branch, branch, 1),
            *_conv_bn(branch, branch, 3, stride, groups=branch, relu=False),
            *_conv_bn(branch, branch, 1),
        )

    def forward(self, x: Tensor) -> Tensor:
        """Apply the unit."""
        if self.stride == 1:
            x1, x2 = x.chunk(2, dim=1)
            out = torch.cat((x1, self.branch2(x2)), dim=1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
        return channel_shuffle(out, 2)


class ShuffleNetV2(nn.Module):
    """ShuffleNetV2 with configurable input channels, classes, width and (grouped) stem."""

    def __init__(
        self,
        width: float = 1.0,
        in_chans: int = 3,
        num_classes: int = 1000,
        *,
        stem_groups: int = 1,
        stage2_branch1_out: int | None = None,
    ) -> None:
        super().__init__()
        channels = stage_channels(width)
        if in_chans < 1 or num_classes < 1 or stem_groups < 1 or in_chans % stem_groups:
            raise ParameterError(
                f"invalid ShuffleNetV2 shape: in_chans={in_chans}, num_classes={num_classes}, "
                f"stem_groups={stem_groups}"
            )
        stem = channels[0] * stem_groups
        self.conv1 = nn.Sequential(*_conv_bn(in_chans, stem, 3, 2, groups=stem_groups))
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        inp = stem
        stages: list[nn.Sequential] = []
        for index, (repeats, out) in enumerate(zip(STAGE_REPEATS, channels[1:4], strict=True)):
            first = InvertedResidual(inp, out, 2, stage2_branch1_out if index == 0 else None)
            rest = [InvertedResidual(out, out, 1) for _ in range(repeats - 1)]
            stages.append(nn.Sequential(first, *rest))
            inp = out
        self.stage2, self.stage3, self.stage4 = stages
        self.conv5 = nn.Sequential(*_conv_bn(inp, channels[4], 1))
        self.fc = nn.Linear(channels[4], num_classes)
        self.num_features = channels[4]

    def forward_features(self, x: Tensor) -> Tensor:
        """Feature map before global pooling: (B, num_features, H/32, W/32)."""
        x = self.maxpool(self.conv1(x))
        x = self.stage4(self.stage3(self.stage2(x)))
        return cast(torch.Tensor, self.conv5(x))

    def forward_head(self, features: Tensor) -> Tensor:
        """Global average pooling and the linear classifier."""
        return cast(torch.Tensor, self.fc(features.mean((2, 3))))

    def forward(self, x: Tensor) -> Tensor:
        """Logits (B, num_classes)."""
        return self.forward_head(self.forward_features(x))
