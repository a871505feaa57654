"""The reference on a CUDA device agrees with the CPU (runs wherever a GPU is present)."""

import pytest
import torch

import asrec
from asrec import ASRecModel

from .helpers import item_batch, perturb

pytestmark = pytest.mark.gpu


@pytest.mark.parametrize("config", [
    dict(n_items=200, max_seq_length=50, hidden_size=256, n_heads=4, inner_size=256),
    dict(n_items=300, max_seq_length=200, hidden_size=64, n_heads=1, inner_size=64, fsm_mix=0.4),
])
def test_cuda_reference_matches_cpu_in_float64(config):
    model = ASRecModel(**config)
    perturb(model)
    model = model.double().eval()
    items, lengths, targets = item_batch(32, config["max_seq_length"], config["n_items"])
    cpu_loss = model.loss(items, lengths, targets)
    cpu_loss.backward()
    cpu_grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    cuda_model = model.cuda()
    loss = cuda_model.loss(items.cuda(), lengths.cuda(), targets.cuda())
    loss.backward()
    torch.testing.assert_close(loss.cpu(), cpu_loss)
    for name, parameter in cuda_model.named_parameters():
        torch.testing.assert_close(parameter.grad.cpu(), cpu_grads[name], msg=name)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_cuda_autocast_on_triton_is_as_close_as_the_reference(dtype):
    """Under autocast the hard frequency threshold may flip bins (the error against float32 is
    the dtype's, not the backend's): the Triton backend's error stays within twice the
    reference backend's under the same autocast."""
    config = dict(n_items=200, max_seq_length=50, hidden_size=64, n_heads=2, inner_size=64)
    model = ASRecModel(**config).cuda().eval()
    items, lengths, _ = item_batch(64, 50, 200)
    items, lengths = items.cuda(), lengths.cuda()
    with asrec.use_backend("reference"):
        exact = model.full_sort_scores(items, lengths)
    errors = {}
    for backend in ("reference", "triton"):
        with asrec.use_backend(backend), torch.autocast("cuda", dtype=dtype):
            low = model.full_sort_scores(items, lengths).float()
        assert torch.isfinite(low).all()
        errors[backend] = (low - exact).abs().max().item()
    assert errors["triton"] <= 2 * errors["reference"] + 1e-3 * exact.abs().max().item(), errors
