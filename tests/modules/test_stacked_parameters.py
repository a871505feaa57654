"""Stacked parameters (a layer's six q/k/v projections, a branch's three position scales):
same initial values, same state_dict keys, order and values as when each was its own
parameter, loading under those names (strict or not, assign=True), views that follow the
module through conversions and copies."""

import copy

import pytest
import torch

import asrec
from asrec.modules import DynamicAttention, HybridLayer, SeasonalAttention

from ..helpers import perturb

SEASONAL_KEYS = [
    "contrast_scale", "origin_scale", "position_scale_small", "position_scale_large", "position_scale_middle",
    "gate_weight", "gate_bias", "unused_head_weights",
    *[f"{m}.{p}" for m in ("query", "key", "value", "dense", "norm", "conv_small", "conv_middle", "conv_large")
      for p in ("weight", "bias")],
    "frequency_filter.threshold", "frequency_filter.norm.weight", "frequency_filter.norm.bias",
]
DYNAMIC_KEYS = [f"{m}.{p}" for m in ("query", "key", "value", "dense", "norm") for p in ("weight", "bias")]
LAYER_KEYS = ["branch_mix", "unused_norm_weight", "unused_norm_bias", *[f"seasonal.{k}" for k in SEASONAL_KEYS],
              *[f"dynamic.{k}" for k in DYNAMIC_KEYS],
              *[f"feed_forward.{m}.{p}" for m in ("dense_in", "dense_out", "norm") for p in ("weight", "bias")]]


def _checksum(module) -> float:
    """Position-weighted sum of every state_dict value, in state_dict order."""
    total = torch.zeros((), dtype=torch.float64)
    for index, tensor in enumerate(module.state_dict().values(), start=1):
        flat = tensor.detach().double().flatten()
        total += index * (flat * torch.arange(1, flat.numel() + 1, dtype=torch.float64)).sum()
    return total.item()


@pytest.mark.parametrize("build,expected", [
    (lambda: asrec.ASRecModel(n_items=20, max_seq_length=5, hidden_size=8, n_heads=2, inner_size=8),
     18512.41552257706),
    (lambda: SeasonalAttention(8, 2, 5), -2237.7792453008005),
    (lambda: DynamicAttention(8, 2), -475.7752071383875),
])
def test_initial_values_are_those_of_separate_parameters(build, expected):
    """The checksums of the code before the stacking (commit a8ff9ff): same draws, same order."""
    torch.manual_seed(0)
    assert _checksum(build()) == pytest.approx(expected, rel=1e-12)


def test_state_dict_keys_shapes_and_order_are_unchanged():
    layer = HybridLayer(8, 2, 5, 12)
    state = layer.state_dict()
    assert list(state) == LAYER_KEYS
    for name in ("query", "key", "value"):
        assert state[f"seasonal.{name}.weight"].shape == (8, 8) and state[f"dynamic.{name}.bias"].shape == (8,)
    for name in ("small", "middle", "large"):
        assert state[f"seasonal.position_scale_{name}"].shape == (1, 5, 1)
    assert list(SeasonalAttention(8, 2, 5).state_dict()) == SEASONAL_KEYS
    assert list(DynamicAttention(8, 2).state_dict()) == DYNAMIC_KEYS


def test_saved_entries_are_views_of_the_stacks_in_their_rows():
    layer = HybridLayer(8, 2, 5, 12)
    perturb(layer)
    state = layer.state_dict()
    rows = [state[f"{branch}.{name}.{part}"] for part in ("weight", "bias") for branch in ("seasonal", "dynamic")
            for name in ("query", "key", "value")]
    torch.testing.assert_close(torch.cat(rows[:6]), layer.projections.weight, rtol=0, atol=0)
    torch.testing.assert_close(torch.cat(rows[6:]), layer.projections.bias, rtol=0, atol=0)
    scales = [state[f"seasonal.position_scale_{name}"] for name in ("small", "middle", "large")]
    torch.testing.assert_close(torch.cat(scales), layer.seasonal.position_scales, rtol=0, atol=0)
    # like any state_dict entry, they share storage with the parameters
    assert state["seasonal.key.weight"].data_ptr() == layer.seasonal.key.weight.data_ptr()
    assert layer.seasonal.key.weight.data_ptr() == layer.projections.weight[8:].data_ptr()


def test_separately_stored_tensors_load_and_round_trip():
    source, target = HybridLayer(8, 2, 5, 12), HybridLayer(8, 2, 5, 12)
    perturb(source)
    separate = {name: tensor.clone() for name, tensor in source.state_dict().items()}  # as saved before
    assert str(target.load_state_dict(separate)) == "<All keys matched successfully>"
    for name, tensor in target.state_dict().items():
        assert torch.equal(tensor, separate[name]), name
    x, bias = torch.randn(3, 5, 8), torch.zeros(3, 1, 1, 5)
    source.eval(), target.eval()
    assert torch.equal(target(x, bias), source(x, bias))
    assert torch.equal(target.seasonal(x, bias), source.seasonal(x, bias))


@pytest.mark.parametrize("build", [lambda: SeasonalAttention(8, 2, 5), lambda: DynamicAttention(8, 2)])
def test_standalone_branches_load_their_own_stack(build):
    source, target = build(), build()
    perturb(source)
    target.load_state_dict({name: tensor.clone() for name, tensor in source.state_dict().items()})
    for (name, a), b in zip(source.state_dict().items(), target.state_dict().values()):
        assert torch.equal(a, b), name


def test_missing_parts_are_reported_by_name_and_keep_their_values():
    source, target = HybridLayer(8, 2, 5, 12), HybridLayer(8, 2, 5, 12)
    perturb(source)
    state = source.state_dict()
    del state["seasonal.key.weight"], state["dynamic.value.bias"], state["seasonal.position_scale_large"]
    kept = (target.seasonal.key.weight.clone(), target.dynamic.value.bias.clone(),
            target.seasonal.position_scale_large.clone())
    with pytest.raises(RuntimeError, match=r"Missing key\(s\) in state_dict: \"seasonal.key.weight\""):
        HybridLayer(8, 2, 5, 12).load_state_dict(state)
    result = target.load_state_dict(state, strict=False)
    assert sorted(result.missing_keys) == ["dynamic.value.bias", "seasonal.key.weight",
                                           "seasonal.position_scale_large"]
    assert result.unexpected_keys == []
    assert torch.equal(target.seasonal.key.weight, kept[0]) and torch.equal(target.dynamic.value.bias, kept[1])
    assert torch.equal(target.seasonal.position_scale_large, kept[2])
    assert torch.equal(target.seasonal.query.weight, source.seasonal.query.weight)
    assert torch.equal(target.dynamic.value.weight, source.dynamic.value.weight)
    assert torch.equal(target.seasonal.position_scale_middle, source.seasonal.position_scale_middle)


def test_wrong_shapes_and_the_stacked_names_are_reported():
    state = HybridLayer(8, 2, 5, 12).state_dict()
    state["dynamic.query.weight"] = torch.zeros(8, 4)
    with pytest.raises(RuntimeError, match=r"size mismatch for dynamic.query.weight: copying a param with shape "
                                           r"torch.Size\(\[8, 4\]\)"):
        HybridLayer(8, 2, 5, 12).load_state_dict(state)
    state = HybridLayer(8, 2, 5, 12).state_dict()
    state["seasonal.position_scale_small"] = torch.zeros(1, 6, 1)
    with pytest.raises(RuntimeError, match=r"size mismatch for seasonal.position_scale_small"):
        HybridLayer(8, 2, 5, 12).load_state_dict(state)
    state = HybridLayer(8, 2, 5, 12).state_dict()
    state["projections.weight"] = torch.zeros(48, 8)  # never saved: the stack is saved by its parts
    with pytest.raises(RuntimeError, match=r"Unexpected key\(s\) in state_dict: \"projections.weight\""):
        HybridLayer(8, 2, 5, 12).load_state_dict(state)


def test_a_branch_inside_a_layer_cannot_load_its_rows_alone():
    layer = HybridLayer(8, 2, 5, 12)
    with pytest.raises(RuntimeError, match=r"query.weight, query.bias: rows of a stacked projection"):
        layer.seasonal.load_state_dict(SeasonalAttention(8, 2, 5).state_dict())


def test_assign_loads_into_a_meta_model():
    source = asrec.ASRecModel(n_items=20, max_seq_length=5, hidden_size=8, n_heads=2, inner_size=8)
    perturb(source)
    with torch.device("meta"):
        target = asrec.ASRecModel(n_items=20, max_seq_length=5, hidden_size=8, n_heads=2, inner_size=8)
    target.load_state_dict(source.state_dict(), assign=True)
    assert all(p.device.type == "cpu" for p in target.parameters())
    for (name, a), b in zip(source.state_dict().items(), target.state_dict().values()):
        assert torch.equal(a, b), name


def test_views_follow_conversions_and_copies():
    layer = HybridLayer(8, 2, 5, 12)
    double = layer.double()
    assert double.seasonal.query.weight.dtype == torch.float64
    assert double.dynamic.key.weight.data_ptr() == double.projections.weight[32:].data_ptr()
    twin = copy.deepcopy(layer)
    assert twin.seasonal.query.stack is twin.projections and twin.dynamic.value.stack is twin.projections
    with torch.no_grad():
        twin.projections.weight.zero_()
    assert layer.seasonal.query.weight.any() and not twin.seasonal.query.weight.any()
    encoder = asrec.ASRec(hidden_size=8, max_seq_length=5, n_layers=3, n_heads=2, inner_size=8)
    for layer in encoder.layers:  # the deep copies each own their stack
        assert layer.seasonal.key.stack is layer.projections and layer.dynamic.key.stack is layer.projections


def test_the_layer_hands_both_branches_one_stack():
    layer = HybridLayer(8, 2, 5, 12)
    weights = layer.weights()
    for bundle in (weights.seasonal, weights.dynamic):
        assert bundle.stacked_projections.weight is layer.projections.weight
        assert bundle.stacked_projections.bias is layer.projections.bias
    assert weights.seasonal.position_scales is layer.seasonal.position_scales
    torch.testing.assert_close(weights.dynamic.value.weight, layer.projections.weight[40:], rtol=0, atol=0)
