"""The four networks: shapes, gradients, head semantics, and the paper's parameter and MAC counts."""

from __future__ import annotations

import pytest
import torch

from leukoscope.classifier.complexity import (
    PAPER_FIGURES,
    TABLE_ROWS,
    ComplexityRow,
    complexity_table,
    count_params,
)
from leukoscope.classifier.models import MODELS, build_model, predict_proba
from leukoscope.errors import ParameterError
from leukoscope.types import MODALITIES, Modality

torch.set_num_threads(1)

ARCH_CASES = [
    ("single", (Modality.FLUORESCENCE,)),
    ("ensemble", MODALITIES),
    ("ensemble", (Modality.COLOR1, Modality.COLOR3)),
    ("mm_mimo", MODALITIES),
    ("mm_mimo", (Modality.COLOR2,)),
    ("hs_mm_mimo", MODALITIES),
    ("hs_mm_mimo", (Modality.COLOR1, Modality.FLUORESCENCE)),
]


@pytest.fixture(scope="module")
def paper_table() -> dict[str, ComplexityRow]:
    """Params and fvcore MACs at the paper's setting, computed once (about 2 s)."""
    PROGRESS.clear()
    return {row.name: row for row in complexity_table(progress=PROGRESS.append)}


PROGRESS: list[str] = []
"""The row names `complexity_table` announced while `paper_table` was measured."""


def test_each_row_is_announced_before_it_is_measured(
    paper_table: dict[str, ComplexityRow],
) -> None:
    assert PROGRESS == list(paper_table) == [name for name, _, _ in TABLE_ROWS]


def test_registry_holds_the_four_networks() -> None:
    assert list(MODELS) == ["single", "ensemble", "mm_mimo", "hs_mm_mimo"]


@pytest.mark.parametrize("in_chans", [1, 3])
@pytest.mark.parametrize(("arch", "modalities"), ARCH_CASES)
def test_output_shape_and_finite(
    arch: str, modalities: tuple[Modality, ...], in_chans: int
) -> None:
    model = build_model(arch, modalities, in_chans=in_chans, width=0.5).eval()
    x = torch.randn(3, len(modalities), in_chans, 32, 32)
    with torch.no_grad():
        logits = model(x)
    assert logits.shape == (3, len(modalities), 5)
    assert model.num_heads == len(modalities)
    assert torch.isfinite(logits).all()
    probs = predict_proba(logits)
    assert probs.shape == (3, 5)
    torch.testing.assert_close(probs.sum(dim=1), torch.ones(3))


@pytest.mark.parametrize("arch", list(MODELS))
def test_gradient_reaches_every_parameter(arch: str) -> None:
    torch.manual_seed(0)
    modalities = MODALITIES[:1] if arch == "single" else MODALITIES
    model = build_model(arch, modalities, in_chans=1, width=0.5).train()
    x = torch.randn(2, len(modalities), 1, 64, 64)
    loss = torch.nn.functional.cross_entropy(
        model(x).flatten(0, 1), torch.arange(2 * len(modalities)) % 5
    )
    loss.backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, name
        assert parameter.grad.abs().sum() > 0, name


def test_predict_proba_averages_softmax_not_logits() -> None:
    logits = torch.tensor([[[10.0, 0.0], [0.0, 1.0]]])
    expected = (logits[0, 0].softmax(0) + logits[0, 1].softmax(0)) / 2
    torch.testing.assert_close(predict_proba(logits)[0], expected)
    assert not torch.allclose(predict_proba(logits)[0], logits.mean(1)[0].softmax(0))


def test_ensemble_heads_are_its_members() -> None:
    model = build_model("ensemble", MODALITIES[:2], in_chans=1, width=0.5).eval()
    x = torch.randn(2, 2, 1, 32, 32)
    with torch.no_grad():
        logits = model(x)
        for i, member in enumerate(model.members):
            torch.testing.assert_close(logits[:, i], member(x[:, i : i + 1])[:, 0])


def test_hs_literal_and_paper_variants_differ_only_in_first_unit() -> None:
    paper = build_model("hs_mm_mimo", MODALITIES)
    literal = build_model("hs_mm_mimo", MODALITIES, hs_variant="literal")
    differing = {
        k for k, v in paper.state_dict().items() if literal.state_dict()[k].shape != v.shape
    }
    assert differing
    assert all(k.startswith("net.stage2.0.branch1.") for k in differing)
    assert count_params(literal) - count_params(paper) == 4_320


@pytest.mark.parametrize("arch", list(PAPER_FIGURES))
def test_counts_match_paper(arch: str, paper_table: dict[str, ComplexityRow]) -> None:
    row = paper_table[arch]
    assert row.params_diff is not None and row.macs_diff is not None
    assert abs(row.params_diff) < 0.005, row
    assert abs(row.macs_diff) < 0.005, row


def test_exact_counts(paper_table: dict[str, ComplexityRow]) -> None:
    exact = {
        "single": (1_258_729, 147_789_512),
        "ensemble": (5_034_916, 591_158_048),
        "mm_mimo": (1_276_048, 172_190_408),
        "hs_mm_mimo": (1_281_016, 187_600_712),
        "hs_mm_mimo (literal)": (1_285_336, 190_987_592),
    }
    assert {name: (r.params, r.macs) for name, r in paper_table.items()} == exact
    literal = paper_table["hs_mm_mimo (literal)"]
    assert literal.macs_diff is not None and 0.017 < literal.macs_diff < 0.019  # 1.8% over


@pytest.mark.parametrize(
    ("arch", "modalities", "options"),
    [
        ("single", MODALITIES[:2], {}),
        ("resnet", MODALITIES, {}),
        ("hs_mm_mimo", MODALITIES, {"hs_variant": "wide"}),
        ("mm_mimo", MODALITIES, {"dropout": 0.5}),
        ("mm_mimo", (), {}),
        ("mm_mimo", (Modality.COLOR2, Modality.COLOR1), {}),
        ("mm_mimo", (Modality.COLOR1, Modality.COLOR1), {}),
    ],
)
def test_invalid_builds_are_refused(
    arch: str, modalities: tuple[Modality, ...], options: dict[str, object]
) -> None:
    with pytest.raises(ParameterError):
        build_model(arch, modalities, **options)


def test_wrong_input_layout_is_refused() -> None:
    model = build_model("mm_mimo", MODALITIES, in_chans=1, width=0.5)
    with pytest.raises(ParameterError, match=r"\(B, 4, 1, H, W\)"):
        model(torch.randn(2, 4, 3, 32, 32))


def test_cli_models_table(
    paper_table: dict[str, ComplexityRow], monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from leukoscope.classifier import complexity
    from leukoscope.cli import app

    monkeypatch.setattr(complexity, "complexity_table", lambda *_, **__: list(paper_table.values()))
    result = CliRunner().invoke(app, ["models"], terminal_width=200)
    assert result.exit_code == 0, result.output
    for text in ("hs_mm_mimo (literal)", "1,281,016", "187.60M", "1.281M / 187.6M", "+1.81%"):
        assert text in result.output, text
    assert "fvcore" in result.output
