"""Triton dropout + residual + LayerNorm against the reference: forward and every gradient."""


import pytest
import torch

import asrec
from asrec.ops import residual_norm

from ..triton_support import DEVICE, assert_low_precision_close

EPS = 1e-12


def _inputs(shape, dtype=torch.float32, residual_dtype=torch.float32):
    hidden = shape[-1]
    x = torch.randn(shape, device=DEVICE).to(dtype).requires_grad_()
    residual = torch.randn(shape, device=DEVICE).to(residual_dtype).requires_grad_()
    weight = (1 + 0.1 * torch.randn(hidden, device=DEVICE)).requires_grad_()
    bias = (0.1 * torch.randn(hidden, device=DEVICE)).requires_grad_()
    return x, residual, weight, bias


def _run(backend, inputs, grad, dropout_p=0.0, training=False):
    with asrec.use_backend(backend):
        out = residual_norm(*inputs, EPS, dropout_p, training)
    return (out, *torch.autograd.grad(out, inputs, grad))


@pytest.mark.parametrize("shape", [(3, 7, 8), (2, 12, 24), (4, 1, 64), (2, 5, 100), (1, 50, 256)])
def test_forward_and_gradients_match_reference(shape):
    inputs = _inputs(shape)
    grad = torch.randn(shape, device=DEVICE)
    ours, expected = _run("triton", inputs, grad), _run("reference", inputs, grad)
    for name, a, b in zip(("out", "x", "residual", "weight", "bias"), ours, expected):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5, msg=name)


def test_dropout_forward_and_backward_use_one_mask(monkeypatch):
    from ..triton_support import fix_dropout_rng, kernel_dropout_factors

    fix_dropout_rng(monkeypatch, 99)
    shape = (3, 12, 24)
    inputs = _inputs(shape)
    grad = torch.randn(shape, device=DEVICE)
    ours = _run("triton", inputs, grad, dropout_p=0.4, training=True)
    factors = kernel_dropout_factors(3 * 12 * 24, 99, 0.4, DEVICE).view(shape)
    x, residual, weight, bias = inputs
    out = torch.nn.functional.layer_norm(x * factors + residual, (24,), weight, bias, EPS)
    expected = (out, *torch.autograd.grad(out, inputs, grad))
    for name, a, b in zip(("out", "x", "residual", "weight", "bias"), ours, expected):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5, msg=name)


@pytest.mark.parametrize("shape", [(3, 7, 8), (2, 5, 100), (4, 1, 64)])
@pytest.mark.parametrize("mix_value", [0.2, 0.5, 0.9])
@pytest.mark.parametrize("training", [False, True])
def test_branch_norms_and_mix_match_lerp_of_two_reference_norms(shape, mix_value, training, monkeypatch):
    """``mix=(other, other_weight, other_bias, w)``: ``lerp(LN_o(drop(other) + residual), LN(drop(x) +
    residual), w)``, forward and all nine gradients (the shared residual's is both norms' sum),
    with and without dropout: the other norm's mask is the kernels' stream at counters numel + i."""
    from ..triton_support import fix_dropout_rng, kernel_dropout_factors

    fix_dropout_rng(monkeypatch, 7)
    inputs = _inputs(shape)
    hidden = shape[-1]
    other = torch.randn(shape, device=DEVICE, requires_grad=True)
    other_weight = (1 + 0.1 * torch.randn(hidden, device=DEVICE)).requires_grad_()
    other_bias = (0.1 * torch.randn(hidden, device=DEVICE)).requires_grad_()
    mix = torch.tensor(mix_value, device=DEVICE, requires_grad=True)
    leaves = (*inputs, other, other_weight, other_bias, mix)
    grad = torch.randn(shape, device=DEVICE)
    with asrec.use_backend("triton"):
        out = residual_norm(*inputs, EPS, 0.3, training, mix=(other, other_weight, other_bias, mix))
    ours = (out, *torch.autograd.grad(out, leaves, grad))
    x, residual, weight, bias = inputs
    numel = x.numel()
    factors = kernel_dropout_factors(2 * numel, 7, 0.3, DEVICE) if training else torch.ones(2 * numel, device=DEVICE)
    this = torch.nn.functional.layer_norm(x * factors[:numel].view(shape) + residual, (hidden,), weight, bias, EPS)
    that = torch.nn.functional.layer_norm(other * factors[numel:].view(shape) + residual, (hidden,), other_weight,
                                          other_bias, EPS)
    expected_out = torch.lerp(that, this, mix)
    expected = (expected_out, *torch.autograd.grad(expected_out, leaves, grad))
    names = ("out", "x", "residual", "weight", "bias", "other", "other_weight", "other_bias", "mix")
    for name, a, b in zip(names, ours, expected):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5, msg=name)


def test_branch_mix_on_the_reference_backend_is_lerp_of_two_norms():
    inputs = _inputs((2, 3, 8))
    x, residual, weight, bias = inputs
    other, mix = torch.randn(2, 3, 8, device=DEVICE), torch.tensor(0.4, device=DEVICE)
    other_norm = (torch.rand(8, device=DEVICE), torch.randn(8, device=DEVICE))
    with asrec.use_backend("reference"):
        plain = residual_norm(*inputs, EPS)
        seasonal = residual_norm(other, residual, *other_norm, EPS)
        mixed = residual_norm(*inputs, EPS, mix=(other, *other_norm, mix))
    assert torch.equal(mixed, torch.lerp(seasonal, plain, mix))


@pytest.mark.parametrize("mix,error,match", [
    ((torch.zeros(2, 3, 8), torch.tensor(0.5)), TypeError, "mix must be .*got tuple of length 2"),
    ((torch.zeros(2, 1, 8), torch.ones(8), torch.zeros(8), torch.tensor(0.5)), ValueError,
     r"mix's other \(2, 1, 8\) must match"),
    ((torch.zeros(2, 3, 8), torch.ones(7), torch.zeros(8), torch.tensor(0.5)), ValueError,
     r"mix_other_norm_weight must be \(8,\), got \(7,\)"),
    ((torch.zeros(2, 3, 8), torch.ones(8), torch.zeros(8), torch.zeros(2)), ValueError,
     "mix's weight must have one element"),
])
def test_bad_mix_is_refused(mix, error, match):
    x, residual, weight, bias = (t.detach().cpu() for t in _inputs((2, 3, 8)))
    with pytest.raises(error, match=match):
        residual_norm(x, residual, weight, bias, EPS, mix=mix)


def test_mismatched_shapes_are_refused():
    x, residual, weight, bias = _inputs((2, 3, 8))
    with pytest.raises(ValueError, match=r"x \(2, 3, 8\) and residual \(2, 1, 8\) must match"):
        residual_norm(x, residual[:, :1], weight, bias, EPS)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_projection_output_on_gpu(dtype):
    """The autocast case: a low-precision dense output plus a float32 residual."""
    shape = (256, 200, 64)
    inputs = _inputs(shape, dtype=dtype)
    grad = torch.randn(shape, device=DEVICE)
    ours = _run("triton", inputs, grad)
    low = _run("reference", inputs, grad)
    exact = _run("reference", [t.detach().double().requires_grad_() for t in inputs], grad.double())
    for a, b, c in zip(ours, exact, low):
        assert_low_precision_close(a, b, c)
