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


def _bias(hidden):
    return (0.5 * torch.randn(hidden, device=DEVICE)).requires_grad_()


@pytest.mark.parametrize("shape", [(3, 7, 8), (2, 5, 100), (4, 1, 64)])
@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("mixing,biased", [(False, "x"), (True, "x"), (True, "other"), (True, "both")])
def test_projection_biases_match_reference(shape, training, mixing, biased, monkeypatch):
    """``x_bias`` / ``other_bias`` (the dense projections' biases) are added before the dropout:
    ``LN(drop(x + x_bias) + residual)`` (with mix ``lerp(LN_o(drop(other + other_bias) +
    residual), ...)``), forward and every gradient, the biases' (column sums of d(x + x_bias),
    reduced in the norm's second-stage launch) included; with and without dropout."""
    from ..triton_support import fix_dropout_rng, kernel_dropout_factors

    fix_dropout_rng(monkeypatch, 11)
    inputs = _inputs(shape)
    hidden = shape[-1]
    x_bias = _bias(hidden) if biased in ("x", "both") else None
    other_bias = _bias(hidden) if biased in ("other", "both") else None
    mix = None
    if mixing:
        mix = (torch.randn(shape, device=DEVICE, requires_grad=True),
               (1 + 0.1 * torch.randn(hidden, device=DEVICE)).requires_grad_(),
               (0.1 * torch.randn(hidden, device=DEVICE)).requires_grad_(),
               torch.tensor(0.3, device=DEVICE, requires_grad=True))
    leaves = [t for t in (*inputs, *(mix or ()), x_bias, other_bias) if t is not None]
    grad = torch.randn(shape, device=DEVICE)
    with asrec.use_backend("triton"):
        out = residual_norm(*inputs, EPS, 0.3, training, mix, x_bias=x_bias, other_bias=other_bias)
    ours = (out, *torch.autograd.grad(out, leaves, grad))

    x, residual, weight, bias = inputs
    numel = x.numel()
    factors = kernel_dropout_factors(2 * numel, 11, 0.3, DEVICE) if training else torch.ones(2 * numel, device=DEVICE)
    biased_x = x + x_bias if x_bias is not None else x
    expected_out = torch.nn.functional.layer_norm(biased_x * factors[:numel].view(shape) + residual, (hidden,), weight,
                                                  bias, EPS)
    if mixing:
        other = mix[0] + other_bias if other_bias is not None else mix[0]
        that = torch.nn.functional.layer_norm(other * factors[numel:].view(shape) + residual, (hidden,), mix[1], mix[2],
                                              EPS)
        expected_out = torch.lerp(that, expected_out, mix[3])
    expected = (expected_out, *torch.autograd.grad(expected_out, leaves, grad))
    assert len(ours) == len(expected) == len(leaves) + 1
    for i, (a, b) in enumerate(zip(ours, expected)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5, msg=f"output {i}")


@pytest.mark.parametrize("mixing", [False, True])
def test_projection_biases_match_the_reference_op_and_an_addmm(mixing):
    """Without dropout the Triton op equals ``residual_norm_ref`` with the biases, and both equal
    the norm of ``F.linear(a, W, b)`` (the bias added by the projection instead)."""
    shape, hidden = (2, 6, 24), 24
    inputs = _inputs(shape)
    a, dense = torch.randn(2, 6, 16, device=DEVICE), (0.2 * torch.randn(hidden, 16, device=DEVICE)).requires_grad_()
    x_bias, other_bias = _bias(hidden), _bias(hidden)
    other_in = torch.randn(2, 6, 16, device=DEVICE)
    mix_norm = (1 + 0.1 * torch.randn(hidden, device=DEVICE), 0.1 * torch.randn(hidden, device=DEVICE),
                torch.tensor(0.6, device=DEVICE))
    leaves = (*inputs[1:], dense, x_bias, other_bias) if mixing else (*inputs[1:], dense, x_bias)
    grad = torch.randn(shape, device=DEVICE)
    results = []
    for backend, biased in (("triton", False), ("reference", False), ("reference", True)):
        def project(t, b, biased=biased):
            return torch.nn.functional.linear(t, dense, b if biased else None)
        mix = (project(other_in, other_bias), *mix_norm) if mixing else None
        biases = {} if biased else dict(x_bias=x_bias, other_bias=other_bias if mixing else None)
        with asrec.use_backend(backend):
            out = residual_norm(project(a, x_bias), *inputs[1:], EPS, 0.3, False, mix, **biases)
        results.append((out, *torch.autograd.grad(out, leaves, grad)))
    for other in results[1:]:
        for i, (x, y) in enumerate(zip(results[0], other)):
            torch.testing.assert_close(x, y, rtol=1e-5, atol=1e-5, msg=f"output {i}")


@pytest.mark.parametrize("biases,match", [
    (dict(x_bias=torch.zeros(7)), r"x_bias must be \(8,\), got \(7,\)"),
    (dict(x_bias=[0.0] * 8), "x_bias must be a torch.Tensor, got list"),
    (dict(other_bias=torch.zeros(8)), "other_bias is the bias of mix's other: it needs mix"),
])
def test_bad_biases_are_refused(biases, match):
    x, residual, weight, bias = (t.detach().cpu() for t in _inputs((2, 3, 8)))
    with pytest.raises((ValueError, TypeError), match=match):
        residual_norm(x, residual, weight, bias, EPS, **biases)


@pytest.mark.parametrize("dropping", [False, True])
def test_opcheck_with_biases(dropping):
    from asrec.ops.residual_norm import residual_norm_bwd, residual_norm_fwd

    from ..triton_support import rng_state

    x, residual = torch.randn(3, 7, 24, device=DEVICE), torch.randn(3, 7, 24, device=DEVICE)
    norm = (1 + 0.1 * torch.randn(24, device=DEVICE), 0.1 * torch.randn(24, device=DEVICE))
    biases = (torch.randn(24, device=DEVICE), torch.randn(24, device=DEVICE))
    mix = (torch.randn_like(x), *norm, torch.tensor(0.3, device=DEVICE))
    rng = rng_state(5)
    for mixed, x_bias, other_x_bias in (((None,) * 4, biases[0], None), (mix, None, biases[1]), (mix, *biases)):
        torch.library.opcheck(residual_norm_fwd.op,
                              (x, residual, *norm, rng, 1e-12, 0.3, dropping, torch.float32, *mixed, x_bias,
                               other_x_bias))
        torch.library.opcheck(residual_norm_bwd.op,
                              (x, residual, *norm, torch.randn_like(x), rng, 1e-12, 0.3, dropping, *mixed, x_bias,
                               other_x_bias))


@pytest.mark.parametrize("mix,error,match", [
    ((torch.zeros(2, 3, 8), torch.tensor(0.5)), TypeError, "mix must be .*got tuple of length 2"),
    ((torch.zeros(2, 1, 8), torch.ones(8), torch.zeros(8), torch.tensor(0.5)), ValueError,
     r"mix's other \(2, 1, 8\) must match"),
    ((torch.zeros(2, 3, 8), torch.ones(7), torch.zeros(8), torch.tensor(0.5)), ValueError,
     r"mix_other_norm_weight must be \(8,\), got \(7,\)"),
    ((torch.zeros(2, 3, 8), torch.ones(8), torch.zeros(8), torch.zeros(2)), ValueError,
     r"mix's weight must be a scalar of shape \(\) or \(1,\), got \(2,\)"),
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
