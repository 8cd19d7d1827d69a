"""Inference form of a model and its ONNX export.

`inference_module` wraps a trained model so it returns `(probabilities, head_probabilities,
features)` and rewrites two parts of HS-MM-MIMO into equivalent forms that CPU kernels run faster (same function, up to
float rounding; see docs/performance.md, "Inference"):

- the grouped stem (groups=M, BatchNorm, ReLU) then max-pool becomes M dense stems with BatchNorm folded
  in, each pooled before concatenation: ONNX Runtime runs dense first-layer convolutions in its blocked
  (NCHWc) layout but a grouped one in plain NCHW with reorders, and the concatenation moves to the 4x
  smaller pooled maps;
- the paper-exact grouped 3x3 convolution of stage2's first unit (96 -> 24, groups=24) followed by
  BatchNorm and a 1x1 convolution becomes a depthwise 3x3 (96 channels) followed by one 1x1 convolution
  whose weights absorb the per-group sum and the BatchNorm (a grouped conv is a depthwise conv whose
  outputs are summed in groups, and both steps after it are linear).
"""

from __future__ import annotations

import copy
import io
import warnings
from pathlib import Path

import torch
from torch import Tensor, nn

from leukoscope.atomic import atomic_write_bytes
from leukoscope.classifier.backbone import InvertedResidual, ShuffleNetV2
from leukoscope.classifier.checkpoint import ModelMeta, file_digest, load_checkpoint
from leukoscope.classifier.contract import (
    DIGEST_KEY,
    INPUT_NAME,
    META_KEY,
    ONNX_OPSET,
    OUTPUT_NAMES,
    onnx_path_for,
)
from leukoscope.classifier.models import (
    EnsembleModel,
    HSMMMimoModel,
    MultimodalModel,
    SingleModel,
    predict_proba,
)


def fold_batchnorm(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """A convolution with bias equal to `bn(conv(x))` in eval mode."""
    assert bn.running_var is not None and bn.running_mean is not None
    scale = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
    bias = conv.bias.detach() if conv.bias is not None else torch.zeros(conv.out_channels)
    fused = copy.deepcopy(conv)
    with torch.no_grad():
        fused.weight.mul_(scale.view(-1, 1, 1, 1))
        fused.bias = nn.Parameter(bn.bias.detach() + (bias - bn.running_mean) * scale)
    return fused


class SplitStem(nn.Module):
    """M dense stems (conv with folded BN, ReLU, max-pool), concatenated after pooling."""

    def __init__(self, conv1: nn.Sequential, maxpool: nn.Module) -> None:
        super().__init__()
        conv, bn = conv1[0], conv1[1]
        assert isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d)
        fused = fold_batchnorm(conv, bn)
        groups = conv.groups
        self.in_per_stem = conv.in_channels // groups
        out = conv.out_channels // groups
        self.stems = nn.ModuleList()
        assert fused.bias is not None
        for k in range(groups):
            stem = nn.Conv2d(self.in_per_stem, out, 3, 2, 1, bias=True)
            block = slice(k * out, (k + 1) * out)
            stem.weight = nn.Parameter(fused.weight.detach()[block].clone())
            stem.bias = nn.Parameter(fused.bias.detach()[block].clone())
            self.stems.append(stem)
        self.pool = maxpool

    def forward(self, x: Tensor) -> Tensor:
        """Same as maxpool(relu(bn(grouped_conv(x))))."""
        return self.forward_parts(list(x.split(self.in_per_stem, dim=1)))  # type: ignore[no-untyped-call]

    def forward_parts(self, parts: list[Tensor]) -> Tensor:
        """The same from one (B, C, H, W) tensor per modality (no copy to split the input)."""
        pooled = [self.pool(torch.relu(stem(p))) for stem, p in zip(self.stems, parts, strict=True)]
        return torch.cat(pooled, dim=1)


def _depthwise_branch1(unit: InvertedResidual) -> None:
    """Rewrite [grouped 3x3, BN, 1x1, BN, ReLU] as [depthwise 3x3, 1x1 (+bias), BN, ReLU] in place."""
    grouped, bn, pointwise = unit.branch1[0], unit.branch1[1], unit.branch1[2]
    assert isinstance(grouped, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d)
    assert isinstance(pointwise, nn.Conv2d)
    per_group = grouped.in_channels // grouped.groups
    if per_group == 1:
        return  # already depthwise
    inp = grouped.in_channels
    depthwise = nn.Conv2d(inp, inp, 3, grouped.stride[0], 1, groups=inp, bias=False)
    assert bn.running_var is not None and bn.running_mean is not None
    scale = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
    shift = bn.bias.detach() - bn.running_mean * scale
    pw = pointwise.weight.detach()[:, :, 0, 0]  # (out, groups)
    merged = nn.Conv2d(inp, pointwise.out_channels, 1, bias=True)
    depthwise.weight = nn.Parameter(grouped.weight.detach().reshape(inp, 1, 3, 3).clone())
    # input channel c belongs to group c // per_group
    merged.weight = nn.Parameter((pw * scale).repeat_interleave(per_group, dim=1)[:, :, None, None])
    merged.bias = nn.Parameter(pw @ shift)
    unit.branch1 = nn.Sequential(depthwise, merged, *list(unit.branch1)[3:])


def _optimise_hs(net: ShuffleNetV2) -> None:
    net.conv1 = nn.Sequential(SplitStem(net.conv1, net.maxpool))
    net.maxpool = nn.Identity()  # type: ignore[assignment]
    first = net.stage2[0]
    assert isinstance(first, InvertedResidual)
    _depthwise_branch1(first)


class ProbabilityModule(nn.Module):
    """Normalised crops -> (probabilities (B, K), head probabilities (B, heads, K)).

    Takes one stacked tensor (B, M, C, H, W), or with `split_inputs` one (B, C, H, W) tensor per
    modality, which spares the ensemble and HS-MM-MIMO a copy of the whole input to separate the
    modalities again (their first layers are per modality).
    """

    def __init__(self, model: MultimodalModel, split_inputs: bool = False) -> None:
        super().__init__()
        self.model = model
        self.split_inputs = split_inputs

    def _split_logits(self, parts: list[Tensor]) -> tuple[Tensor, Tensor]:
        model = self.model
        if isinstance(model, EnsembleModel):
            nets = [member.net for member in model.members if isinstance(member, SingleModel)]
            pairs = [_pooled_pass(net, p) for net, p in zip(nets, parts, strict=True)]
            return torch.stack([lg for lg, _ in pairs], dim=1), torch.cat([f for _, f in pairs], 1)
        assert isinstance(model, HSMMMimoModel)
        net = model.net
        stem = net.conv1[0]
        assert isinstance(stem, SplitStem)
        features = net.conv5(net.stage4(net.stage3(net.stage2(stem.forward_parts(parts)))))
        pooled = features.mean((2, 3))
        return net.fc(pooled).view(parts[0].shape[0], model.num_heads, -1), pooled

    def _whole_logits(self, x: Tensor) -> tuple[Tensor, Tensor]:
        model = self.model
        if isinstance(model, EnsembleModel):
            nets = [member.net for member in model.members if isinstance(member, SingleModel)]
            pairs = [_pooled_pass(net, x[:, i]) for i, net in enumerate(nets)]
            return torch.stack([lg for lg, _ in pairs], dim=1), torch.cat([f for _, f in pairs], 1)
        net = getattr(model, "net", None)
        assert isinstance(net, ShuffleNetV2)
        logits, pooled = _pooled_pass(net, x.flatten(1, 2))
        return logits.view(x.shape[0], model.num_heads, -1), pooled

    def forward(self, *inputs: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Mean of per-head softmax, the per-head softmax, and the pooled features the heads read
        (the open-set score's input, `classifier/open_set.py`)."""
        split = self.split_inputs
        logits, pooled = (
            self._split_logits(list(inputs)) if split else self._whole_logits(inputs[0])
        )
        return predict_proba(logits), logits.softmax(dim=-1), pooled


def _pooled_pass(net: ShuffleNetV2, x: Tensor) -> tuple[Tensor, Tensor]:
    """(logits, globally pooled last feature map) of one backbone."""
    pooled = net.forward_features(x).mean((2, 3))
    return net.fc(pooled), pooled


def inference_module(model: MultimodalModel, optimise: bool = True) -> ProbabilityModule:
    """An eval-mode copy of `model` returning probabilities, in its fastest equivalent form
    (`optimise`: per-modality inputs for the ensemble and HS-MM-MIMO, and the rewrites above)."""
    model = copy.deepcopy(model).eval()
    if optimise and isinstance(model, HSMMMimoModel):
        _optimise_hs(model.net)
    for p in model.parameters():
        p.requires_grad_(False)
    split = optimise and isinstance(model, EnsembleModel | HSMMMimoModel)
    return ProbabilityModule(model, split_inputs=split).eval()


def input_names(module: ProbabilityModule) -> list[str]:
    """Graph input names: `crops`, or `crops_<modality>` per modality for split inputs."""
    if not module.split_inputs:
        return [INPUT_NAME]
    return [f"{INPUT_NAME}_{m.value}" for m in module.model.modalities]


def example_inputs(module: ProbabilityModule, size: int, batch: int = 2) -> tuple[Tensor, ...]:
    """Zero tensors in the layout `module` takes."""
    model = module.model
    if module.split_inputs:
        return tuple(
            torch.zeros(batch, model.in_chans, size, size) for _ in range(len(model.modalities))
        )
    return (torch.zeros(batch, len(model.modalities), model.in_chans, size, size),)


def onnx_bytes(
    model: MultimodalModel,
    input_size: int,
    meta: ModelMeta | None = None,
    digest: str = "",
    opset: int = ONNX_OPSET,
) -> bytes:
    """The ONNX graph (dynamic batch) of `inference_module(model)`, with metadata attached."""
    import onnx

    module = inference_module(model)
    names = input_names(module)
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        # The TorchScript-based exporter is deprecated in favour of the dynamo one, which needs
        # onnxscript (not a dependency); it is still the one that handles this model here.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            example_inputs(module, input_size),
            buffer,  # type: ignore[arg-type]
            dynamo=False,
            input_names=names,
            output_names=list(OUTPUT_NAMES),
            dynamic_axes={name: {0: "batch"} for name in (*names, *OUTPUT_NAMES)},
            opset_version=opset,
        )
    graph = onnx.load_from_string(buffer.getvalue())
    props = {DIGEST_KEY: digest}
    if meta is not None:
        props[META_KEY] = meta.model_dump_json()
    onnx.helper.set_model_props(graph, props)
    return bytes(graph.SerializeToString())


def export_checkpoint(checkpoint: Path, out: Path | None = None, opset: int = ONNX_OPSET) -> Path:
    """Export a checkpoint to ONNX (default: beside it), tied to the checkpoint by its SHA-256."""
    model, meta = load_checkpoint(checkpoint)
    data = onnx_bytes(model, meta.input_size, meta, file_digest(checkpoint), opset)
    target = Path(out) if out is not None else onnx_path_for(checkpoint)
    return atomic_write_bytes(target, data)
