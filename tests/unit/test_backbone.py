"""ShuffleNetV2 backbone: torchvision-identical structure, shapes, grouped stem equivalence."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from leukoscope.classifier.backbone import ShuffleNetV2, channel_shuffle
from leukoscope.classifier.complexity import count_params
from leukoscope.errors import ParameterError

torch.set_num_threads(1)

# torchvision.models.shufflenet_v2_x{0_5,1_0,1_5,2_0}().num_params (1000 classes, RGB input)
TORCHVISION_PARAMS = {0.5: 1_366_792, 1.0: 2_278_604, 1.5: 3_503_624, 2.0: 7_393_996}


@pytest.mark.parametrize("width", sorted(TORCHVISION_PARAMS))
def test_parameter_count_matches_torchvision(width: float) -> None:
    assert count_params(ShuffleNetV2(width)) == TORCHVISION_PARAMS[width]


def test_state_dict_uses_torchvision_names() -> None:
    keys = set(ShuffleNetV2().state_dict())
    for key in (
        "conv1.0.weight",
        "conv1.1.running_var",
        "stage2.0.branch1.0.weight",
        "stage2.0.branch1.2.weight",
        "stage2.3.branch2.5.weight",
        "stage3.7.branch2.6.running_mean",
        "stage4.0.branch1.3.bias",
        "conv5.0.weight",
        "fc.weight",
        "fc.bias",
    ):
        assert key in keys, key
    assert not any(k.startswith("stage2.1.branch1") for k in keys)  # stride-1 units have no branch1


@pytest.mark.parametrize("in_chans", [1, 3, 12])
def test_shapes_of_features_and_logits(in_chans: int) -> None:
    net = ShuffleNetV2(0.5, in_chans=in_chans, num_classes=7).eval()
    x = torch.randn(2, in_chans, 64, 64)
    with torch.no_grad():
        features = net.forward_features(x)
        logits = net(x)
    assert features.shape == (2, 1024, 2, 2)
    assert logits.shape == (2, 7)
    assert torch.allclose(net.forward_head(features), logits)
    assert torch.isfinite(logits).all()


def test_channel_shuffle_interleaves_groups() -> None:
    x = torch.arange(6.0).view(1, 6, 1, 1)
    assert channel_shuffle(x, 2).flatten().tolist() == [0, 3, 1, 4, 2, 5]
    assert channel_shuffle(x, 3).flatten().tolist() == [0, 2, 4, 1, 3, 5]


def test_grouped_stem_equals_separate_stems_concatenated() -> None:
    torch.manual_seed(0)
    fused = ShuffleNetV2(1.0, in_chans=4 * 3, num_classes=5, stem_groups=4).eval()
    conv, bn = fused.conv1[0], fused.conv1[1]
    assert isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d)
    assert conv.groups == 4 and conv.out_channels == 96
    with torch.no_grad():
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
        bn.weight.uniform_(0.5, 2)
        bn.bias.uniform_(-1, 1)
    x = torch.randn(2, 12, 32, 32)
    parts = []
    for k in range(4):
        stem = nn.Sequential(nn.Conv2d(3, 24, 3, 2, 1, bias=False), nn.BatchNorm2d(24), nn.ReLU())
        block = slice(24 * k, 24 * (k + 1))
        stem.load_state_dict(
            {
                "0.weight": conv.weight[block],
                "1.weight": bn.weight[block],
                "1.bias": bn.bias[block],
                "1.running_mean": bn.running_mean[block],
                "1.running_var": bn.running_var[block],
                "1.num_batches_tracked": bn.num_batches_tracked,
            }
        )
        parts.append(stem.eval()(x[:, 3 * k : 3 * (k + 1)]))
    with torch.no_grad():
        torch.testing.assert_close(fused.conv1(x), torch.cat(parts, dim=1))


def test_grouped_first_unit_branch1() -> None:
    net = ShuffleNetV2(1.0, in_chans=12, stem_groups=4, stage2_branch1_out=24)
    first = net.stage2[0].branch1[0]
    assert isinstance(first, nn.Conv2d)
    assert (first.in_channels, first.out_channels, first.groups) == (96, 24, 24)
    assert first.weight.shape == (24, 4, 3, 3)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"width": 0.75},
        {"in_chans": 0},
        {"in_chans": 5, "stem_groups": 2},
        {"in_chans": 12, "stem_groups": 4, "stage2_branch1_out": 25},
    ],
)
def test_invalid_shapes_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ParameterError):
        ShuffleNetV2(**kwargs)  # type: ignore[arg-type]
