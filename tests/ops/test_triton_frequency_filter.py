"""Triton adaptive frequency filter against float64 math on the kernels' own keep-mask,
and the mask itself against the reference (DESIGN.md: hard thresholds)."""


import pytest
import torch

import asrec
from asrec.ops import frequency_filter
from asrec.reference import frequency_keep_mask

from ..oracle import filter_f64_and_grads
from ..triton_support import DEVICE, assert_low_precision_close, kernel_keep

EPS = 1e-12


def _norm(hidden):
    weight = (1 + 0.1 * torch.randn(hidden, device=DEVICE)).requires_grad_()
    return weight, (0.1 * torch.randn(hidden, device=DEVICE)).requires_grad_()


def _triton(y, q, weight, bias, grad, scope="batch", dropout_p=0.5, training=False):
    with asrec.use_backend("triton"):
        out = frequency_filter(y, torch.tensor(q, device=DEVICE), weight, bias, EPS, dropout_p, training, scope)
    return (out, *torch.autograd.grad(out, (y, weight, bias), grad))


def _oracle(y, keep, weight, bias, grad, factors=None):
    return filter_f64_and_grads(y, keep, weight, bias, grad, EPS, factors)


def _assert_matches(ours, expected, names=("out", "dy", "dweight", "dbias")):
    for name, a, b in zip(names, ours, expected):
        torch.testing.assert_close(a.double(), b, rtol=2e-5, atol=2e-5, msg=name)


@pytest.mark.parametrize("seq_len", [1, 7, 12, 50])
@pytest.mark.parametrize("hidden", [8, 24, 64])
def test_three_groups_forward_and_gradients(seq_len, hidden):
    y = torch.randn(3, 3, seq_len, hidden, device=DEVICE, requires_grad=True)
    weight, bias = _norm(hidden)
    grad = torch.randn_like(y)
    keep = kernel_keep(y.detach(), 0.8)
    _assert_matches(_triton(y, 0.8, weight, bias, grad), _oracle(y, keep, weight, bias, grad))


@pytest.mark.parametrize("scope", ["batch", "sequence"])
@pytest.mark.parametrize("q", [0.0, 0.5, 0.8, 1.0])
def test_single_group_and_quantile_levels(scope, q):
    y = torch.randn(4, 12, 24, device=DEVICE, requires_grad=True)
    weight, bias = _norm(24)
    grad = torch.randn_like(y)
    keep = kernel_keep(y.detach()[:, None], q, scope)[:, 0]
    ours = _triton(y, q, weight, bias, grad, scope)
    _assert_matches(ours, _oracle(y, keep, weight, bias, grad))


@pytest.mark.parametrize("seq_len,hidden", [(7, 8), (12, 24), (50, 64)])
def test_kernel_mask_equals_reference_mask_away_from_the_threshold(seq_len, hidden):
    """Energies from the kernel and from a float64 rfft give the same mask except for bins
    whose normalised energy lies within float32 rounding of the batch threshold."""
    y = torch.randn(8, 3, seq_len, hidden, device=DEVICE)
    ours = kernel_keep(y, 0.8).bool()
    energy64 = torch.fft.rfft(y.double(), dim=-2).abs().square().sum(-1)
    exact = frequency_keep_mask(energy64, seq_len, torch.tensor(0.8, dtype=torch.float64, device=DEVICE))
    to_full = torch.minimum(torch.arange(seq_len), seq_len - torch.arange(seq_len)).to(DEVICE)
    normalised = energy64 / (energy64[..., to_full].sort(-1).values[..., (seq_len - 1) // 2][..., None] + 1e-6)
    cutoff = torch.quantile(normalised[..., to_full].transpose(0, 1).flatten(1), 0.8, dim=1)[None, :, None]
    near = (normalised - cutoff).abs() <= 1e-5 * cutoff.abs()
    assert bool(((ours == exact) | near).all())
    assert bool((ours == exact).float().mean() > 0.99)


def test_dropout_forward_and_backward_use_one_mask(monkeypatch):
    """With p > 0 the output and every gradient equal the float64 math with the kernels' mask."""
    from ..triton_support import fix_dropout_rng, kernel_dropout_factors

    fix_dropout_rng(monkeypatch, 1234)
    y = torch.randn(3, 3, 12, 24, device=DEVICE, requires_grad=True)
    weight, bias = _norm(24)
    grad = torch.randn_like(y)
    factors = kernel_dropout_factors(y.numel(), 1234, 0.5, DEVICE).view(y.shape)
    keep = kernel_keep(y.detach(), 0.8)
    ours = _triton(y, 0.8, weight, bias, grad, training=True)
    _assert_matches(ours, _oracle(y, keep, weight, bias, grad, factors))


def test_dropout_zero_in_training_is_exact():
    y = torch.randn(2, 3, 12, 8, device=DEVICE, requires_grad=True)
    weight, bias = _norm(8)
    grad = torch.randn_like(y)
    keep = kernel_keep(y.detach(), 0.8)
    _assert_matches(_triton(y, 0.8, weight, bias, grad, dropout_p=0.0, training=True),
                    _oracle(y, keep, weight, bias, grad))


def test_threshold_gets_no_gradient():
    y = torch.randn(2, 7, 8, device=DEVICE, requires_grad=True)
    threshold = torch.tensor(0.8, device=DEVICE, requires_grad=True)
    weight, bias = _norm(8)
    with asrec.use_backend("triton"):
        out = frequency_filter(y, threshold, weight, bias, EPS)
    out.sum().backward()
    assert threshold.grad is None


def test_shapes_beyond_the_register_tile_are_refused_on_triton_and_run_on_auto():
    y = torch.randn(1, 200, 256, device=DEVICE)
    weight, bias = _norm(256)
    with asrec.use_backend("triton"), pytest.raises(ValueError, match="seq_len=200, hidden=256"):
        frequency_filter(y, torch.tensor(0.8, device=DEVICE), weight, bias, EPS)


@pytest.mark.gpu
@pytest.mark.parametrize("seq_len,hidden", [(50, 256), (200, 64)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_published_shapes_and_low_precision_on_gpu(seq_len, hidden, dtype):
    y = torch.randn(256, 3, seq_len, hidden, device=DEVICE).to(dtype).requires_grad_()
    weight, bias = _norm(hidden)
    grad = torch.randn(y.shape, device=DEVICE).to(dtype)
    keep = kernel_keep(y.detach().float(), 0.8)
    ours = _triton(y, 0.8, weight, bias, grad)
    exact = _oracle(y, keep, weight, bias, grad)
    low = [t for t in exact]
    low[0] = exact[0].to(dtype)  # the answer rounded once to the dtype: the error a dtype output must carry
    low[1] = exact[1].to(dtype)
    low[2], low[3] = exact[2].float(), exact[3].float()
    if dtype == torch.float32:
        _assert_matches(ours, exact)
    else:
        for a, b, c in zip(ours, exact, low):
            assert_low_precision_close(a, b, c)


@pytest.mark.parametrize("scope", ["batch", "sequence"])
def test_a_stacked_groups_tensor_equals_the_list_of_groups(scope):
    """frequency_filter_groups on one (G, B, N, H) tensor (the convolutions' output, no copy) gives
    the list form's outputs and gradients, on the Triton and reference backends."""
    from asrec.ops import frequency_filter_groups

    stacked = torch.randn(3, 5, 12, 24, device=DEVICE, requires_grad=True)
    weight, bias = _norm(24)
    grad = torch.randn_like(stacked)
    threshold = torch.tensor(0.7, device=DEVICE)
    for backend in ("triton", "reference"):
        with asrec.use_backend(backend):
            out = frequency_filter_groups(stacked, threshold, weight, bias, EPS, 0.0, True, scope)
            listed = torch.stack(frequency_filter_groups(list(stacked.unbind(0)), threshold, weight, bias, EPS, 0.0,
                                                         True, scope))
        assert torch.is_tensor(out) and out.shape == stacked.shape
        torch.testing.assert_close(out, listed, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(torch.autograd.grad(out, (stacked, weight, bias), grad),
                                   torch.autograd.grad(listed, (stacked, weight, bias), grad), rtol=1e-5, atol=1e-5)


def _with_input(stacked, q, weight, bias, dropout_p=0.5, training=False, with_input=True):
    from asrec.ops import frequency_filter_groups

    with asrec.use_backend("triton"):
        return frequency_filter_groups(stacked, torch.tensor(q, device=DEVICE), weight, bias, EPS, dropout_p,
                                       training, "batch", with_input=with_input)


@pytest.mark.parametrize("training", [False, True])
def test_with_input_adds_the_passthrough_gradient_in_the_kernel(monkeypatch, training):
    """frequency_filter_groups(..., with_input=True) on a (G, B, N, H) tensor: the passthrough is
    the input itself (an alias made by the filter's Function), and y's gradient is the filter's
    plus the passthrough's, as float64 math on the kernels' own keep-mask (and dropout mask)."""
    from ..triton_support import fix_dropout_rng, kernel_dropout_factors

    fix_dropout_rng(monkeypatch, 4321)
    stacked = torch.randn(3, 4, 12, 24, device=DEVICE, requires_grad=True)
    weight, bias = _norm(24)
    grad, grad_input = torch.randn_like(stacked), torch.randn_like(stacked)
    out, passthrough = _with_input(stacked, 0.8, weight, bias, training=training)
    assert passthrough.data_ptr() == stacked.data_ptr() and passthrough.shape == stacked.shape
    assert type(passthrough.grad_fn) is type(out.grad_fn)  # an output of the filter's Function: no copy
    ours = (out, *torch.autograd.grad((out, passthrough), (stacked, weight, bias), (grad, grad_input)))
    # the oracle takes (B, G, N, H); the kernels' dropout counters follow the stacked memory order
    by_batch = stacked.detach().transpose(0, 1)
    factors = (kernel_dropout_factors(stacked.numel(), 4321, 0.5, DEVICE).view(stacked.shape).transpose(0, 1)
               if training else None)
    out64, dy64, dweight64, dbias64 = _oracle(by_batch, kernel_keep(by_batch, 0.8), weight, bias,
                                              grad.transpose(0, 1), factors)
    expected = (out64.transpose(0, 1), dy64.transpose(0, 1) + grad_input.double(), dweight64, dbias64)
    _assert_matches(ours, expected)


def test_with_input_equals_the_autograd_add_and_either_output_alone(monkeypatch):
    """The kernel's add is the one autograd makes without the option (bit for bit: one float32 add
    of the same two values); with one output unused, y's gradient is the other's alone."""
    from ..triton_support import fix_dropout_rng

    fix_dropout_rng(monkeypatch, 99)
    stacked = torch.randn(3, 2, 7, 8, device=DEVICE, requires_grad=True)
    weight, bias = _norm(8)
    grad, grad_input = torch.randn_like(stacked), torch.randn_like(stacked)
    out, passthrough = _with_input(stacked, 0.7, weight, bias, training=True)
    fused = torch.autograd.grad((out, passthrough.square()), (stacked, weight, bias), (grad, grad_input))
    plain_out = _with_input(stacked, 0.7, weight, bias, training=True, with_input=False)
    plain = torch.autograd.grad((plain_out, stacked.square()), (stacked, weight, bias), (grad, grad_input))
    for name, a, b in zip(("dy", "dweight", "dbias"), fused, plain):
        assert torch.equal(a, b), name
    out, passthrough = _with_input(stacked, 0.7, weight, bias, training=True)
    alone = torch.autograd.grad(passthrough, (stacked, weight, bias), grad_input, allow_unused=True)
    assert torch.equal(alone[0], grad_input) and alone[1] is None and alone[2] is None
    out, passthrough = _with_input(stacked, 0.7, weight, bias, training=True)
    only_filter = torch.autograd.grad(out, (stacked, weight, bias), grad)
    plain_out = _with_input(stacked, 0.7, weight, bias, training=True, with_input=False)
    for a, b in zip(only_filter, torch.autograd.grad(plain_out, (stacked, weight, bias), grad)):
        assert torch.equal(a, b)
