"""The three position-channel convolutions on every backend: the reference against three
separate convolutions (float64, gradcheck), then the Triton op, forward and every gradient,
against float64 math."""

import pytest
import torch

import asrec
from asrec.ops import multiscale_conv
from asrec.reference import multiscale_conv_ref

from ..oracle import conv_oracle
from ..triton_support import DEVICE, assert_low_precision_close


@pytest.mark.parametrize("batch,seq_len,hidden", [(2, 1, 8), (3, 7, 12), (2, 50, 64)])
def test_stacked_convs_equal_three_separate_calls(batch, seq_len, hidden):
    c = torch.randn(batch, seq_len, hidden, dtype=torch.float64)
    weights = tuple(torch.randn(seq_len, seq_len, k, dtype=torch.float64) for k in (3, 5, 7))
    biases = tuple(torch.randn(seq_len, dtype=torch.float64) for _ in range(3))
    out = multiscale_conv_ref(c, weights, biases)
    assert [o.shape for o in out] == [(batch, seq_len, hidden)] * 3
    for got, expected in zip(out, conv_oracle(c, weights, biases)):
        torch.testing.assert_close(got, expected)


def test_reference_gradcheck():
    d = torch.float64
    c = torch.randn(2, 5, 6, dtype=d, requires_grad=True)
    weights = tuple(torch.randn(5, 5, k, dtype=d, requires_grad=True) for k in (3, 5, 7))
    biases = tuple(torch.randn(5, dtype=d, requires_grad=True) for _ in range(3))
    assert torch.autograd.gradcheck(lambda x, *p: tuple(multiscale_conv_ref(x, p[:3], p[3:])),
                                    (c, *weights, *biases))


# ---- the Triton backend against float64 math ----


def _inputs(batch, seq_len, hidden, dtype=torch.float64):
    x = torch.randn(batch, seq_len, hidden, device=DEVICE, dtype=dtype)
    weights = [torch.randn(seq_len, seq_len, k, device=DEVICE, dtype=dtype) / (seq_len * k) ** 0.5 for k in (3, 5, 7)]
    biases = [torch.randn(seq_len, device=DEVICE, dtype=dtype) for _ in range(3)]
    return [t.requires_grad_() for t in (x, *weights, *biases)]


def _run(backend, leaves, grads):
    with asrec.use_backend(backend):
        out = multiscale_conv(leaves[0], leaves[1:4], leaves[4:])
    return (*out, *torch.autograd.grad(out, leaves, grads))


NAMES = ("small", "middle", "large", "x", "w_small", "w_middle", "w_large", "b_small", "b_middle", "b_large")


# (9, 7, 10): the weight gradient's batch slices are 5 + 4 sequences (a short last slice);
# (2, 37, 70): channels and hidden cross the 32 / 64 tile edges; (2, 1, 5): one position;
# (17, 40, 12): three slices (6 + 6 + 5) and two output-channel blocks, each block's bias
# gradient partials written by its own program and summed over the slices by the second stage
@pytest.mark.parametrize("batch,seq_len,hidden", [(2, 1, 5), (3, 7, 10), (9, 7, 10), (2, 37, 70), (17, 40, 12)])
def test_forward_and_gradients_match_float64(batch, seq_len, hidden):
    exact_leaves = _inputs(batch, seq_len, hidden)
    grads = [torch.randn(batch, seq_len, hidden, device=DEVICE, dtype=torch.float64) for _ in range(3)]
    exact = _run("reference", exact_leaves, grads)
    leaves = [t.detach().float().requires_grad_() for t in exact_leaves]
    ours = _run("triton", leaves, [g.float() for g in grads])
    plain = [t.detach() for t in exact_leaves]
    for got, expected in zip(ours[:3], conv_oracle(plain[0], plain[1:4], plain[4:])):
        torch.testing.assert_close(got.double(), expected, rtol=1e-5, atol=1e-5)
    for name, got, expected in zip(NAMES, ours, exact):
        assert got.dtype == torch.float32, name
        torch.testing.assert_close(got.double(), expected, rtol=1e-5, atol=1e-5 * expected.abs().max().item(),
                                   msg=name)


def test_backward_is_deterministic():
    leaves = [t.detach().float().requires_grad_() for t in _inputs(9, 7, 10)]
    grads = [torch.randn(9, 7, 10, device=DEVICE) for _ in range(3)]
    first, second = _run("triton", leaves, grads), _run("triton", leaves, grads)
    for name, a, b in zip(NAMES, first, second):
        assert torch.equal(a, b), name


def test_outputs_are_views_of_one_stacked_tensor():
    leaves = [t.detach().float() for t in _inputs(2, 7, 10)]
    with asrec.use_backend("triton"):
        small, middle, large = multiscale_conv(leaves[0], leaves[1:4], leaves[4:])
    assert small.untyped_storage().data_ptr() == large.untyped_storage().data_ptr()
    assert small.is_contiguous() and large.is_contiguous()


@pytest.mark.parametrize("bad,match", [(lambda w: w[:, :, :2], r"conv_weights\[0\] must be \(7, 7, 3\)"),
                                       (lambda w: w[:5], r"conv_weights\[0\] must be \(7, 7, 3\)")])
def test_weight_shapes_are_checked(bad, match):
    x, *weights_and_biases = [t.detach().float() for t in _inputs(2, 7, 10)]
    weights, biases = weights_and_biases[:3], weights_and_biases[3:]
    weights[0] = bad(weights[0])
    with pytest.raises(ValueError, match=match):
        multiscale_conv(x, weights, biases)


@pytest.mark.gpu
@pytest.mark.parametrize("seq_len,hidden", [(50, 256), (200, 64)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_published_shapes_on_gpu(seq_len, hidden, dtype):
    exact_leaves = _inputs(256, seq_len, hidden)
    grads = [torch.randn(256, seq_len, hidden, device=DEVICE, dtype=torch.float64) for _ in range(3)]
    exact = _run("reference", exact_leaves, grads)
    low_leaves = [t.detach().to(dtype).requires_grad_() for t in exact_leaves]
    low_grads = [g.to(dtype) for g in grads]
    ours = _run("triton", low_leaves, low_grads)
    reference_low = _run("reference", low_leaves, low_grads)
    for a, b, c in zip(ours, exact, reference_low):
        assert_low_precision_close(a, b, c)
