"""SPEC section 7: initialisation statistics."""

import math
from operator import attrgetter

import torch

from asrec import ASRec, ASRecModel


def test_seasonal_branch_uniform_values_are_shared_by_all_layers():
    encoder = ASRec(hidden_size=64, max_seq_length=50, n_layers=3, n_heads=4)
    bound = 1 / math.sqrt(2 * 64 // 4)
    first = encoder.layers[0].seasonal
    for name in ("conv_small.weight", "conv_middle.bias", "conv_large.weight", "contrast_scale", "origin_scale",
                 "position_scale_small", "position_scale_middle", "position_scale_large", "gate_weight",
                 "gate_bias"):
        values = attrgetter(name)(first)  # position_scale_*: views of the stacked position_scales
        assert values.abs().max() <= bound, name
        for layer in encoder.layers[1:]:
            assert torch.equal(attrgetter(name)(layer.seasonal), values), name
    assert first.unused_head_weights.abs().max() <= bound
    conv = first.conv_large.weight
    assert abs(conv.mean().item()) < 0.01 and abs(conv.std().item() - bound / math.sqrt(3)) < 0.01


def test_linear_normal_biases_zero_norms_unit_and_differing_per_layer():
    encoder = ASRec(hidden_size=64, max_seq_length=20, n_layers=2, n_heads=2, initializer_range=0.05)
    for module in encoder.modules():
        if isinstance(module, torch.nn.Linear):
            assert abs(module.weight.std().item() - 0.05) < 0.005
            assert not module.bias.any()
        if isinstance(module, torch.nn.LayerNorm):
            assert torch.equal(module.weight, torch.ones_like(module.weight)) and not module.bias.any()
    assert not torch.equal(encoder.layers[0].seasonal.query.weight, encoder.layers[1].seasonal.query.weight)
    for layer in encoder.layers:
        assert layer.seasonal.frequency_filter.threshold.item() == torch.tensor(0.8).item()
        assert layer.branch_mix.item() == 0.5


def test_fsm_and_embeddings():
    model = ASRecModel(n_items=5000, max_seq_length=50, hidden_size=256)
    fsm = model.encoder.fsm
    assert fsm.smoothing_logit.shape == (1,)
    for v in (fsm.init_level, fsm.smoothed_scale):
        assert v.shape == (1, 1, 256) and abs(v.std().item() - 0.02) < 0.004
    weight = model.item_embedding.weight
    assert abs(weight.std().item() - 0.02) < 0.001
    assert weight[0].abs().sum() > 0  # the padding row is overwritten by the init, as published
    assert abs(model.position_embedding.weight.std().item() - 0.02) < 0.002


def test_fsm_logit_is_standard_normal():
    logits = torch.cat([ASRec(8, 4, n_layers=1).fsm.smoothing_logit.detach() for _ in range(400)])
    assert abs(logits.mean().item()) < 0.2 and abs(logits.std().item() - 1) < 0.15
