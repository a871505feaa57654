"""Whole-model parity on the "triton" backend: hidden states, scores and every gradient."""

import pytest
import torch

import asrec

from ..helpers import item_batch, perturb
from ..triton_support import DEVICE

CONFIGS = [
    dict(n_items=40, max_seq_length=12, hidden_size=24, n_heads=2, inner_size=32, fsm_mix=0.4),
    dict(n_items=30, max_seq_length=7, hidden_size=8, n_heads=1, inner_size=8),
    dict(n_items=50, max_seq_length=16, hidden_size=64, n_heads=4, inner_size=64, filter_scope="sequence"),
]


def _loss_and_grads(model, backend, items, lengths, targets):
    model.zero_grad()
    with asrec.use_backend(backend):
        hidden = model.sequence_output(items)
        loss = model.loss(items, lengths, targets)
    loss.backward()
    return hidden, loss, {name: p.grad.clone() for name, p in model.named_parameters()}


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"N{c['max_seq_length']}H{c['hidden_size']}")
def test_model_hidden_states_loss_and_gradients_match_reference(config):
    model = asrec.ASRecModel(**config)
    perturb(model)
    model = model.to(DEVICE).eval()
    items, lengths, targets = (t.to(DEVICE) for t in item_batch(6, config["max_seq_length"], config["n_items"]))
    hidden, loss, grads = _loss_and_grads(model, "triton", items, lengths, targets)
    ref_hidden, ref_loss, ref_grads = _loss_and_grads(model, "reference", items, lengths, targets)
    torch.testing.assert_close(hidden, ref_hidden, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(loss, ref_loss, rtol=1e-5, atol=1e-6)
    for name, grad in grads.items():
        torch.testing.assert_close(grad, ref_grads[name], rtol=1e-4, atol=1e-5, msg=name)


def test_encoder_alone_matches_reference():
    encoder = asrec.ASRec(hidden_size=24, max_seq_length=12, n_heads=2, inner_size=32, fsm_mix=0.4)
    perturb(encoder)
    encoder = encoder.to(DEVICE).eval()
    x = torch.randn(4, 12, 24, device=DEVICE, requires_grad=True)
    valid = torch.arange(12, device=DEVICE)[None, :] < torch.tensor([[3], [12], [1], [7]], device=DEVICE)
    grad = torch.randn(4, 12, 24, device=DEVICE)
    results = []
    for backend in ("triton", "reference"):
        with asrec.use_backend(backend):
            out = encoder(x, valid)
        results.append((out, *torch.autograd.grad(out, [x, *encoder.parameters()], grad)))
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_model_trains_on_triton_with_dropout():
    """Training mode (dropout in the input stage and the filters): finite loss that falls."""
    config = CONFIGS[0]
    model = asrec.ASRecModel(**config, hidden_dropout_prob=0.2, attn_dropout_prob=0.2).to(DEVICE).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    items, lengths, targets = (t.to(DEVICE) for t in item_batch(4, 12, 40))
    losses = []
    with asrec.use_backend("triton"):  # few small steps: the interpreter runs each program in Python
        for _ in range(4):
            optimizer.zero_grad()
            loss = model.loss(items, lengths, targets)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < losses[0]
