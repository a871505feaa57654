"""Attention, plain (``attention``) and with the seasonal gate (``gated_attention``), on
every backend: the reference against a per-head loop and the gate's formula (gradcheck), then
the Triton flash-style kernels against the reference."""

import pytest
import torch

import asrec
from asrec.ops import attention, gated_attention
from asrec.reference import (
    attention_context_ref,
    key_padding_bias,
    seasonal_gate_ref,
)

from ..oracle import attention_oracle, gate_oracle
from ..triton_support import DEVICE, assert_low_precision_close


def _valid(batch, seq_len):
    lengths = torch.randint(1, seq_len + 1, (batch,))
    lengths[0], lengths[-1] = 1, seq_len  # a length-1 and a full sequence in every batch
    return torch.arange(seq_len)[None, :] < lengths[:, None]


@pytest.mark.parametrize("batch,heads,seq_len,head_dim", [(3, 1, 1, 8), (3, 2, 7, 6), (4, 4, 50, 16), (2, 2, 2, 4)])
def test_attention_matches_per_head_loop(batch, heads, seq_len, head_dim):
    q, k, v = (torch.randn(batch, heads, seq_len, head_dim, dtype=torch.float64) for _ in range(3))
    valid = _valid(batch, seq_len)
    out = attention_context_ref(q, k, v, key_padding_bias(valid, torch.float64))
    torch.testing.assert_close(out, attention_oracle(q, k, v, valid))


def test_padded_keys_get_the_published_minus_10000_not_minus_infinity():
    q, k, v = (torch.randn(1, 1, 3, 4, dtype=torch.float64) for _ in range(3))
    valid = torch.zeros(1, 3, dtype=torch.bool)  # all padded: uniform attention, no NaN
    out = attention_context_ref(q, k, v, key_padding_bias(valid, torch.float64))
    torch.testing.assert_close(out, attention_oracle(q, k, v, valid))
    assert torch.isfinite(out).all()


def test_gate_matches_formula():
    c, v = torch.randn(2, 3, 5, 4, dtype=torch.float64), torch.randn(2, 3, 5, 4, dtype=torch.float64)
    w, b = torch.randn(8, 8, dtype=torch.float64), torch.randn(8, dtype=torch.float64)
    torch.testing.assert_close(seasonal_gate_ref(c, v, w, b), gate_oracle(c, v, w, b))


def test_gradchecks():
    d = torch.float64
    q, k, v = (torch.randn(2, 2, 5, 3, dtype=d, requires_grad=True) for _ in range(3))
    bias = key_padding_bias(_valid(2, 5), d)
    assert torch.autograd.gradcheck(lambda a, b, c: attention_context_ref(a, b, c, bias), (q, k, v))
    w, b = torch.randn(6, 6, dtype=d, requires_grad=True), torch.randn(6, dtype=d, requires_grad=True)
    assert torch.autograd.gradcheck(seasonal_gate_ref, (q, v, w, b))


# ---- the Triton backend against the reference ----


def _qkv(batch, heads, seq_len, head_dim, q_len=None, dtype=torch.float32):
    """q, k, v as the branches make them: head views of (batch, seq_len, hidden) projections."""
    def heads_view(rows):
        x = torch.randn(batch, rows, heads * head_dim, device=DEVICE).to(dtype)
        return x.view(batch, rows, heads, head_dim).transpose(1, 2).detach().requires_grad_()
    return heads_view(q_len or seq_len), heads_view(seq_len), heads_view(seq_len)


def _bias(batch, seq_len):
    lengths = torch.randint(1, seq_len + 1, (batch,), device=DEVICE)
    lengths[0] = 1
    return key_padding_bias(torch.arange(seq_len, device=DEVICE)[None, :] < lengths[:, None], torch.float32)


def _gate(head_dim):
    bound = (2 * head_dim) ** -0.5
    weight = torch.empty(2 * head_dim, 2 * head_dim, device=DEVICE).uniform_(-bound, bound).requires_grad_()
    return weight, torch.empty(2 * head_dim, device=DEVICE).uniform_(-bound, bound).requires_grad_()


def _run(backend, fn, leaves, args, grad):
    with asrec.use_backend(backend):
        out = fn(*args)
    return (out, *torch.autograd.grad(out, leaves, grad))


@pytest.mark.parametrize("heads", [1, 2, 4])
@pytest.mark.parametrize("seq_len,head_dim", [(1, 8), (7, 8), (12, 16), (50, 16), (37, 24)])
def test_gated_attention_matches_reference(heads, seq_len, head_dim):
    q, k, v = _qkv(3, heads, seq_len, head_dim)
    weight, bias = _gate(head_dim)
    key_bias = _bias(3, seq_len)
    leaves = [q, k, v, weight, bias]
    args = (q, k, v, key_bias, weight, bias)
    grad = torch.randn(q.shape, device=DEVICE)
    ours, expected = _run("triton", gated_attention, leaves, args, grad), _run("reference", gated_attention, leaves,
                                                                               args, grad)
    for name, a, b in zip(("out", "q", "k", "v", "gate_weight", "gate_bias"), ours, expected):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5, msg=name)


@pytest.mark.parametrize("batch,heads,seq_len,head_dim", [(16, 4, 50, 8), (1, 1, 7, 64), (2, 3, 20, 24)])
def test_gate_bias_gradient_sums_every_block(batch, heads, seq_len, head_dim):
    """The gate's db is summed in two stages (per preprocessing block, then 16-column slabs in the
    dk/dv launch): more partial rows than one 128-row block (16*4*4 = 256), more slabs than
    programs (2d = 128: 8 slabs, 1 program), a slab past 2d (2d = 48); twice, bit for bit."""
    q, k, v = _qkv(batch, heads, seq_len, head_dim)
    weight, bias = _gate(head_dim)
    key_bias = _bias(batch, seq_len)
    leaves = [q, k, v, weight, bias]
    args = (q, k, v, key_bias, weight, bias)
    grad = torch.randn(q.shape, device=DEVICE)
    ours = _run("triton", gated_attention, leaves, args, grad)
    again = _run("triton", gated_attention, leaves, args, grad)
    expected = _run("reference", gated_attention, leaves, args, grad)
    for name, a, b, c in zip(("out", "q", "k", "v", "gate_weight", "gate_bias"), ours, expected, again):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5, msg=name)
        assert torch.equal(a, c), f"{name} differs between two identical runs"


@pytest.mark.parametrize("q_len", [1, 12])
def test_plain_attention_matches_reference_with_fewer_queries(q_len):
    """The dynamic branch's last layer attends from one row per sequence."""
    q, k, v = _qkv(4, 2, 12, 16, q_len=q_len)
    key_bias = _bias(4, 12)
    grad = torch.randn(q.shape, device=DEVICE)
    args = (q, k, v, key_bias)
    ours, expected = _run("triton", attention, [q, k, v], args, grad), _run("reference", attention, [q, k, v], args,
                                                                           grad)
    for name, a, b in zip(("out", "q", "k", "v"), ours, expected):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5, msg=name)


def test_attention_dropout_forward_and_backward_use_one_mask(monkeypatch):
    """p > 0: equal to the math with the kernels' own mask over the (batch*head, query, key) index."""
    from asrec.reference import seasonal_gate_ref

    from ..triton_support import fix_dropout_rng, kernel_dropout_factors

    fix_dropout_rng(monkeypatch, 3)
    batch, heads, seq_len, head_dim = 2, 2, 12, 16
    q, k, v = _qkv(batch, heads, seq_len, head_dim)
    weight, bias = _gate(head_dim)
    key_bias = _bias(batch, seq_len)
    leaves = [q, k, v, weight, bias]
    grad = torch.randn(q.shape, device=DEVICE)
    ours = _run("triton", gated_attention, leaves, (q, k, v, key_bias, weight, bias, 0.3, True), grad)
    factors = kernel_dropout_factors(batch * heads * seq_len * seq_len, 3, 0.3, DEVICE).view(batch, heads, seq_len, seq_len)
    probabilities = torch.softmax(q @ k.transpose(-1, -2) / head_dim ** 0.5 + key_bias, dim=-1)
    out = seasonal_gate_ref((probabilities * factors) @ v, v, weight, bias)
    expected = (out, *torch.autograd.grad(out, leaves, grad))
    for name, a, b in zip(("out", "q", "k", "v", "gate_weight", "gate_bias"), ours, expected):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5, msg=name)


def test_gate_needs_one_query_per_key():
    q, k, v = _qkv(2, 1, 7, 8, q_len=1)
    with pytest.raises(ValueError, match="must match"):
        gated_attention(q, k, v, _bias(2, 7), *_gate(8))


@pytest.mark.gpu
@pytest.mark.parametrize("heads,seq_len,head_dim", [(4, 50, 64), (1, 200, 64)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_published_shapes_on_gpu(heads, seq_len, head_dim, dtype):
    q, k, v = _qkv(256, heads, seq_len, head_dim, dtype=dtype)
    weight, bias = _gate(head_dim)
    key_bias = _bias(256, seq_len)
    grad = torch.randn(q.shape, device=DEVICE)
    leaves = [q, k, v, weight, bias]
    ours = _run("triton", gated_attention, leaves, (q, k, v, key_bias, weight, bias), grad.to(dtype))
    low = _run("reference", gated_attention, leaves, (q, k, v, key_bias, weight, bias), grad.to(dtype))
    exact_leaves = [t.detach().double().requires_grad_() for t in leaves]
    exact = _run("reference", gated_attention, exact_leaves, (*exact_leaves[:3], key_bias.double(), *exact_leaves[3:]),
                 grad.double())
    for a, b, c in zip(ours, exact, low):
        assert_low_precision_close(a, b, c)
