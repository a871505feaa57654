"""ASRecModel against the published-code-equivalent eager model on the same weights."""

import pytest
import torch

from asrec.checkpoint import name_map

from ..helpers import item_batch, twin_models

CONFIGS = [
    dict(n_items=30, max_seq_length=1, hidden_size=8, n_heads=2, inner_size=16),
    dict(n_items=30, max_seq_length=2, hidden_size=12, n_heads=1, inner_size=8, fsm_mix=0.4),
    dict(n_items=40, max_seq_length=7, hidden_size=8, n_heads=4, inner_size=16, hidden_act="relu"),
    dict(n_items=50, max_seq_length=50, hidden_size=64, n_heads=4, inner_size=32, n_layers=2),
    dict(n_items=50, max_seq_length=12, hidden_size=12, n_heads=2, inner_size=16, n_layers=3, fsm_mix=0.0,
         hidden_act="swish"),
]


def _gradients_by_state_dict_name(model) -> dict:
    """Every parameter's gradient under its state_dict name(s): a stacked parameter's gradient
    (a layer's q/k/v projections, the position scales) split as state_dict() splits the parameter."""
    parameters = list(model.parameters())
    values = [p.data for p in parameters]
    try:
        for p in parameters:
            p.data = p.grad if p.grad is not None else torch.full_like(p, float("nan"))
        gradients = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    finally:
        for p, value in zip(parameters, values):
            p.data = value
    return {name: grad for name, grad in gradients.items() if name not in dict(model.named_buffers())}


@pytest.mark.usefixtures("symmetric_published_filter")
@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"N{c['max_seq_length']}H{c['hidden_size']}h{c['n_heads']}")
def test_outputs_and_every_gradient_match_float64(config):
    model, published = twin_models(torch.float64, **config)
    items, lengths, targets = item_batch(6, config["max_seq_length"], config["n_items"])
    torch.testing.assert_close(model.sequence_output(items), published.sequence_output(items))
    torch.testing.assert_close(model(items, lengths), published(items, lengths))
    torch.testing.assert_close(model.full_sort_scores(items, lengths), published.full_sort_scores(items, lengths))
    loss, published_loss = model.loss(items, lengths, targets), published.loss(items, lengths, targets)
    torch.testing.assert_close(loss, published_loss)
    loss.backward()
    published_loss.backward()
    ours = _gradients_by_state_dict_name(model)
    theirs = dict(published.named_parameters())
    for original, name in name_map(config.get("n_layers", 2)):
        if name in ours:
            torch.testing.assert_close(ours[name], theirs[original].grad, msg=lambda m, n=name: f"{n}: {m}")
        else:  # buffers here: the published tensor gets no gradient (unused or thresholded)
            grad = theirs[original].grad
            assert grad is None or not grad.any(), original


@pytest.mark.usefixtures("symmetric_published_filter")
def test_float32_error_is_within_twice_the_published_float32_error():
    config = dict(n_items=60, max_seq_length=50, hidden_size=64, n_heads=4, inner_size=64)
    model64, published64 = twin_models(torch.float64, **config)
    items, lengths, _ = item_batch(16, 50, 60)
    truth = model64.full_sort_scores(items, lengths)
    torch.testing.assert_close(truth, published64.full_sort_scores(items, lengths))
    ours = model64.float().full_sort_scores(items, lengths).double()
    theirs = published64.float().full_sort_scores(items, lengths).double()
    our_error, their_error = (ours - truth).abs().max(), (theirs - truth).abs().max()
    assert our_error <= 2 * their_error + 1e-6, (our_error, their_error)

