"""The reference's inference path (autograd off) against the same model with autograd on, and
against the published code: the seasonal branch keeps its three convolution outputs unstacked
there (asrec.ops.seasonal_branch.seasonal_tail), which must change no value."""

import pytest
import torch

from ..helpers import item_batch, twin_models

CONFIGS = [
    # N below and above the filter's FFT crossover (DFT GEMMs at 50, rfft at 120), several heads and one
    dict(n_items=60, max_seq_length=50, hidden_size=32, n_heads=4, inner_size=32),
    dict(n_items=60, max_seq_length=120, hidden_size=16, n_heads=1, inner_size=16, fsm_mix=0.4),
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"N{c['max_seq_length']}")
def test_scores_without_autograd_equal_scores_with_it_bit_for_bit(config, dtype):
    model, _ = twin_models(dtype, **config)
    items, lengths, _ = item_batch(8, config["max_seq_length"], config["n_items"])
    with_grad = model.full_sort_scores(items, lengths)
    assert with_grad.requires_grad  # the autograd path ran
    with torch.no_grad():
        without = model.full_sort_scores(items, lengths)
        hidden = model.sequence_output(items)
    assert torch.equal(without, with_grad.detach())
    assert torch.equal(hidden, model.sequence_output(items).detach())


@pytest.mark.usefixtures("symmetric_published_filter")
@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"N{c['max_seq_length']}")
def test_scores_without_autograd_match_the_published_code_float64(config):
    model, published = twin_models(torch.float64, **config)
    items, lengths, _ = item_batch(6, config["max_seq_length"], config["n_items"])
    with torch.no_grad():
        torch.testing.assert_close(model.full_sort_scores(items, lengths), published.full_sort_scores(items, lengths))
