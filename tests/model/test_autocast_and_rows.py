"""The model under autocast on both backends (the last layer takes the rows of a low-precision
attention context and a float32 residual together; the loss is float32), and the encoder's
read-out positions in int32 as in int64."""

import pytest
import torch

import asrec
from asrec import ASRecModel

from ..triton_support import DEVICE


def _model_and_batch():
    torch.manual_seed(0)
    model = ASRecModel(n_items=30, max_seq_length=7, hidden_size=16, n_layers=2, n_heads=2, inner_size=24,
                       device=DEVICE)
    items = torch.randint(1, 30, (3, 7), device=DEVICE)
    lengths = torch.tensor([7, 1, 4], device=DEVICE)
    items = items * (torch.arange(7, device=DEVICE) < lengths[:, None])
    return model, items, lengths, torch.tensor([3, 9, 28], device=DEVICE)


@pytest.mark.parametrize("backend", ["reference", "triton"])
def test_a_training_step_under_bf16_autocast(backend):
    model, items, lengths, targets = _model_and_batch()
    model.eval()  # no dropout: both backends compute the same function
    with asrec.use_backend(backend), torch.autocast(DEVICE, dtype=torch.bfloat16):
        loss = model.loss(items, lengths, targets)
    loss.backward()
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    with torch.no_grad():
        exact = model.loss(items, lengths, targets)  # float32, reference-free check of the level
    assert abs(loss.item() - exact.item()) < 0.05 * abs(exact.item())


@pytest.mark.parametrize("backend", ["reference", "triton"])
def test_the_encoder_takes_int32_read_out_positions(backend):
    model, items, lengths, _ = _model_and_batch()
    model.eval()
    hidden = torch.randn(3, 7, 16, device=DEVICE)
    valid = items != 0
    rows = lengths - 1
    with asrec.use_backend(backend), torch.no_grad():
        expected = model.encoder.encode(hidden, valid, rows)
        got = model.encoder.encode(hidden, valid, rows.int())
    assert torch.equal(got, expected)
