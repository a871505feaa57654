"""Fourier smoothing on every backend: the reference against the EMA loop and scipy's
next_fast_len (forward, gradcheck), then the Triton kernels against the reference (forward and
every gradient)."""

import pytest
import scipy.fftpack
import torch

import asrec
from asrec.ops import fourier_smoothing
from asrec.reference import fourier_smoothing_ref, next_fast_len

from ..oracle import fsm_oracle
from ..triton_support import DEVICE, assert_low_precision_close

SHAPES = [(3, 1, 8), (3, 2, 12), (4, 7, 8), (2, 50, 64), (2, 200, 12)]


@pytest.mark.parametrize("target", [1, 2, 3, 7, 13, 97, 99, 121, 399, 1000, 4097])
def test_next_fast_len_matches_scipy(target):
    assert next_fast_len(target) == scipy.fftpack.next_fast_len(target)


def _params(hidden, dtype=torch.float32):
    return (torch.randn(1, dtype=dtype), 0.5 * torch.randn(1, 1, hidden, dtype=dtype),
            0.5 * torch.randn(1, 1, hidden, dtype=dtype))


@pytest.mark.parametrize("batch,seq_len,hidden", SHAPES)
@pytest.mark.parametrize("mix", [1.0, 0.4, 0.0])
def test_matches_ema_loop(batch, seq_len, hidden, mix):
    x = torch.randn(batch, seq_len, hidden)
    logit, v0, v1 = _params(hidden)
    out = fourier_smoothing(x, logit, v0, v1, mix)
    assert out.dtype == torch.float32 and out.shape == x.shape
    torch.testing.assert_close(out.double(), fsm_oracle(x, logit, v0, v1, mix), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("logit", [-8.0, 0.0, 6.0])
def test_extreme_smoothing_factors_stay_finite_and_exact(logit):
    x = torch.randn(2, 50, 8, dtype=torch.float64)
    _, v0, v1 = _params(8, torch.float64)
    w = torch.tensor([logit], dtype=torch.float64)
    torch.testing.assert_close(fourier_smoothing_ref(x, w, v0, v1, 1.0), fsm_oracle(x, w, v0, v1, 1.0))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_input_computes_in_float32(dtype):
    x = torch.randn(2, 7, 8).to(dtype)
    logit, v0, v1 = _params(8)
    out = fourier_smoothing_ref(x, logit, v0, v1, 0.5)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out.double(), fsm_oracle(x.float(), logit, v0, v1, 0.5), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("batch,seq_len,hidden", [(2, 1, 3), (2, 7, 4), (1, 12, 3)])
def test_gradcheck(batch, seq_len, hidden):
    x = torch.randn(batch, seq_len, hidden, dtype=torch.float64, requires_grad=True)
    params = [p.requires_grad_() for p in _params(hidden, torch.float64)]
    assert torch.autograd.gradcheck(lambda *a: fourier_smoothing_ref(*a, 0.7), (x, *params))


def test_gradients_match_the_loop():
    x = torch.randn(3, 9, 5, dtype=torch.float64, requires_grad=True)
    params = [p.requires_grad_() for p in _params(5, torch.float64)]
    grads = torch.autograd.grad(fourier_smoothing_ref(x, *params, 0.3).square().sum(), (x, *params))
    expected = torch.autograd.grad(fsm_oracle(x, *params, 0.3).square().sum(), (x, *params))
    for g, e in zip(grads, expected):
        torch.testing.assert_close(g, e)


# ---- the Triton backend against the reference ----


def _triton_params(hidden, dtype=torch.float32, logit=0.3):
    return [torch.tensor([logit], dtype=dtype, device=DEVICE, requires_grad=True),
            (0.5 * torch.randn(1, 1, hidden, dtype=dtype, device=DEVICE)).requires_grad_(),
            (1.0 + 0.5 * torch.randn(1, 1, hidden, dtype=dtype, device=DEVICE)).requires_grad_()]


def _run(backend, x, params, mix, grad):
    with asrec.use_backend(backend):
        out = fourier_smoothing(x, *params, mix)
    return (out, *torch.autograd.grad(out, (x, *params), grad))


@pytest.mark.parametrize("seq_len", [1, 7, 12, 50])
@pytest.mark.parametrize("hidden", [8, 24, 64])
@pytest.mark.parametrize("mix", [1.0, 0.4])
def test_forward_and_gradients_match_reference(seq_len, hidden, mix):
    x = torch.randn(3, seq_len, hidden, device=DEVICE, requires_grad=True)
    params = _triton_params(hidden)
    grad = torch.randn(3, seq_len, hidden, device=DEVICE)
    ours = _run("triton", x, params, mix, grad)
    expected = _run("reference", x, params, mix, grad)
    for name, a, b in zip(("out", "x", "logit", "init_level", "smoothed_scale"), ours, expected):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5, msg=name)


@pytest.mark.parametrize("seq_len", [17, 50])
def test_scans_carry_across_row_blocks(monkeypatch, seq_len):
    """Sequences longer than one block of rows (16 here): the forward and reverse scans carry
    from block to block, the last block partly past the end."""
    from asrec.kernels import fourier_smoothing as kernels

    monkeypatch.setattr(kernels, "ROW_TILE", 256)
    assert kernels.smoothing_blocks(seq_len, 24)[0] == 16
    x = torch.randn(3, seq_len, 24, device=DEVICE, requires_grad=True)
    params = _triton_params(24)
    grad = torch.randn(3, seq_len, 24, device=DEVICE)
    ours = _run("triton", x, params, 0.4, grad)
    expected = _run("reference", x, params, 0.4, grad)
    for name, a, b in zip(("out", "x", "logit", "init_level", "smoothed_scale"), ours, expected):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5, msg=name)


@pytest.mark.parametrize("logit", [-6.0, 4.0])
def test_extreme_smoothing_factors(logit):
    """alpha near 0 and near 1: the level decay and the long memory stay exact."""
    x = torch.randn(2, 50, 8, device=DEVICE, requires_grad=True)
    params = _triton_params(8, logit=logit)
    grad = torch.randn(2, 50, 8, device=DEVICE)
    for a, b in zip(_run("triton", x, params, 1.0, grad), _run("reference", x, params, 1.0, grad)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_triton_backend_rejects_float64_with_a_reason():
    x = torch.randn(2, 7, 8, dtype=torch.float64, device=DEVICE)
    with asrec.use_backend("triton"), pytest.raises(ValueError, match="float64"):
        fourier_smoothing(x, *_triton_params(8, torch.float64), 1.0)


@pytest.mark.gpu
@pytest.mark.parametrize("seq_len,hidden", [(50, 256), (200, 64)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_published_shapes_and_low_precision_on_gpu(seq_len, hidden, dtype):
    x64 = torch.randn(256, seq_len, hidden, device=DEVICE, dtype=torch.float64)
    x = x64.to(dtype).requires_grad_()
    params = _triton_params(hidden)
    grad = torch.randn(256, seq_len, hidden, device=DEVICE)
    ours = _run("triton", x, params, 0.4, grad.to(torch.float32))
    low = _run("reference", x, params, 0.4, grad)
    exact = _run("reference", x.detach().double().requires_grad_(), [p.detach().double().requires_grad_()
                                                                       for p in params], 0.4, grad.double())
    for a, b, c in zip(ours, exact, low):
        assert_low_precision_close(a, b, c)


@pytest.mark.parametrize("batch,hidden", [(1, 8), (37, 200)])
def test_finish_kernel_matches_torch_and_is_deterministic(batch, hidden):
    """The finish launch against the torch ops it replaces (sums over the batch, the logit's
    chain rule); a batch over one 32-row block, hidden over one 128-column block. Two runs
    agree bit for bit."""
    from asrec.kernels.fourier_smoothing import _fourier_smoothing_finish
    from asrec.ops.input_stage import smoothing_logit_grad

    parts = torch.randn(3, batch, hidden, device=DEVICE)
    logit = torch.tensor([-0.4], device=DEVICE)
    dlogit, sums = _fourier_smoothing_finish(parts, logit)
    torch.testing.assert_close(dlogit, smoothing_logit_grad(parts[0], logit), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(sums, parts[1:].sum(1), rtol=1e-5, atol=1e-5)
    again = _fourier_smoothing_finish(parts, logit)
    assert torch.equal(dlogit, again[0]) and torch.equal(sums, again[1])


def test_batches_span_finish_blocks():
    x = torch.randn(37, 9, 24, device=DEVICE, requires_grad=True)
    params = _triton_params(24)
    grad = torch.randn(37, 9, 24, device=DEVICE)
    for a, b in zip(_run("triton", x, params, 0.4, grad), _run("reference", x, params, 0.4, grad)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
