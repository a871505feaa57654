"""Both branches' attention in one Triton launch from one stacked projection, against the
reference (two branches, six projections), forward and every gradient."""


import pytest
import torch

import asrec
from asrec.ops import hybrid_attention
from asrec.reference import key_padding_bias, seasonal_gate_ref
from asrec.reference._heads import merge_heads, split_heads
from asrec.reference.weights import DynamicWeights, LinearWeights, SeasonalWeights

from ..triton_support import DEVICE, assert_low_precision_close


def _linear(rows, cols, dtype):
    weight = torch.randn(rows, cols, device=DEVICE, dtype=dtype) / cols ** 0.5
    return LinearWeights(weight.requires_grad_(), (0.1 * torch.randn(rows, device=DEVICE, dtype=dtype)).requires_grad_())


def _weights(hidden, heads, dtype=torch.float32):
    """(seasonal, dynamic) bundles with the attention's fields filled (the tails' are not read here)."""
    d = hidden // heads
    projections = [_linear(hidden, hidden, dtype) for _ in range(6)]
    gate = _linear(2 * d, 2 * d, dtype)
    seasonal = SeasonalWeights(*projections[:3], gate, *([None] * 8))
    dynamic = DynamicWeights(*projections[3:], None, None)
    return seasonal, dynamic


def _leaves(seasonal, dynamic):
    return [t for linear in (*seasonal[:4], *dynamic[:3]) for t in linear]


def _rebuild(leaves):
    linears = [LinearWeights(*leaves[i:i + 2]) for i in range(0, 14, 2)]
    return SeasonalWeights(*linears[:3], linears[3], *([None] * 8)), DynamicWeights(*linears[4:7], None, None)


def _bias(batch, seq_len, dtype=torch.float32):
    lengths = torch.randint(1, seq_len + 1, (batch,), device=DEVICE)
    lengths[0] = 1
    valid = torch.arange(seq_len, device=DEVICE)[None, :] < lengths[:, None]
    return key_padding_bias(valid, dtype), lengths


def _run(backend, x, key_bias, leaves, heads, grads, *options):
    seasonal, dynamic = _rebuild(leaves)
    with asrec.use_backend(backend):
        out = hybrid_attention(x, key_bias, seasonal, dynamic, heads, *options)
    return (*out, *torch.autograd.grad(out, [x, *leaves], grads))


NAMES = ("seasonal", "dynamic", "x", *[f"{branch}.{what}.{part}" for branch, whats in
                                       (("seasonal", ("query", "key", "value", "gate")),
                                        ("dynamic", ("query", "key", "value")))
                                       for what in whats for part in ("weight", "bias")])


@pytest.mark.parametrize("heads", [1, 2, 4])
@pytest.mark.parametrize("seq_len,hidden", [(1, 16), (7, 32), (37, 48)])
@pytest.mark.parametrize("last_rows_only", [False, True])
def test_both_branches_match_reference(heads, seq_len, hidden, last_rows_only):
    batch = 3
    x = torch.randn(batch, seq_len, hidden, device=DEVICE, requires_grad=True)
    leaves = _leaves(*_weights(hidden, heads))
    key_bias, lengths = _bias(batch, seq_len)
    rows = lengths - 1 if last_rows_only else None
    grads = [torch.randn(batch, seq_len, hidden, device=DEVICE),
             torch.randn(batch, 1 if last_rows_only else seq_len, hidden, device=DEVICE)]
    ours = _run("triton", x, key_bias, leaves, heads, grads, 0.0, False, rows)
    expected = _run("reference", x, key_bias, leaves, heads, grads, 0.0, False, rows)
    for name, a, b in zip(NAMES, ours, expected):
        # the key biases' exact gradient is zero (softmax is shift-invariant per row): absolute slack
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5 * max(1.0, b.abs().max().item()), msg=name)


def test_dropout_draws_one_mask_per_branch(monkeypatch):
    """p > 0: equal to the math with the kernels' own factors over the (branch*batch*head, query, key) index."""
    from ..triton_support import fix_dropout_rng, kernel_dropout_factors

    fix_dropout_rng(monkeypatch, 5)
    batch, heads, seq_len, hidden = 2, 2, 12, 32
    d = hidden // heads
    x = torch.randn(batch, seq_len, hidden, device=DEVICE, requires_grad=True)
    leaves = _leaves(*_weights(hidden, heads))
    key_bias, _ = _bias(batch, seq_len)
    grads = [torch.randn(batch, seq_len, hidden, device=DEVICE) for _ in range(2)]
    ours = _run("triton", x, key_bias, leaves, heads, grads, 0.3, True)

    factors = kernel_dropout_factors(2 * batch * heads * seq_len * seq_len, 5, 0.3, DEVICE)
    factors = factors.view(2, batch, heads, seq_len, seq_len)
    seasonal, dynamic = _rebuild(leaves)

    def branch(linears, mask):
        q, k, v = (split_heads(torch.nn.functional.linear(x, *linear), heads) for linear in linears)
        probabilities = torch.softmax(q @ k.transpose(-1, -2) / d ** 0.5 + key_bias, dim=-1)
        return (probabilities * mask) @ v, v

    context, value = branch(seasonal[:3], factors[0])
    out = [merge_heads(seasonal_gate_ref(context, value, *seasonal.gate)), merge_heads(branch(dynamic[:3],
                                                                                             factors[1])[0])]
    expected = (*out, *torch.autograd.grad(out, [x, *leaves], grads))
    for name, a, b in zip(NAMES, ours, expected):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5 * max(1.0, b.abs().max().item()), msg=name)


@pytest.mark.parametrize("used", ["seasonal", "dynamic"])
def test_a_branch_without_gradient_contributes_zeros(used):
    """Only one context reaches the loss: backward gets None for the other branch's gradient."""
    batch, heads, seq_len, hidden = 2, 2, 9, 32
    x = torch.randn(batch, seq_len, hidden, device=DEVICE, requires_grad=True)
    leaves = _leaves(*_weights(hidden, heads))
    key_bias, _ = _bias(batch, seq_len)
    grad = torch.randn(batch, seq_len, hidden, device=DEVICE)
    results = {}
    for backend in ("triton", "reference"):
        seasonal, dynamic = _rebuild(leaves)
        with asrec.use_backend(backend):
            out = hybrid_attention(x, key_bias, seasonal, dynamic, heads)[0 if used == "seasonal" else 1]
        results[backend] = (out, *torch.autograd.grad(out, [x, *leaves], grad, allow_unused=True))
    for name, a, b in zip((used, *NAMES[2:]), *results.values()):
        if b is None:  # the other branch's projections: the reference leaves them unused
            assert a is None or not a.any(), name
            continue
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5 * max(1.0, b.abs().max().item()), msg=name)


def _stacked_bundles(stack_weight, stack_bias, gate):
    """The hybrid layer's bundles: q/k/v as row views of one (6H, H) stack that both carry."""
    rows = [LinearWeights(w, b) for w, b in zip(stack_weight.chunk(6), stack_bias.chunk(6))]
    stacked = LinearWeights(stack_weight, stack_bias)
    return (SeasonalWeights(*rows[:3], gate, *([None] * 8), stacked_projections=stacked),
            DynamicWeights(*rows[3:], None, None, stacked_projections=stacked))


@pytest.mark.parametrize("last_rows_only", [False, True])
def test_stacked_projections_are_used_as_they_are(last_rows_only):
    """Bundles sharing one stack: the fused path projects with it (no concatenation of the six
    projections per call) and matches the reference, which reads the row views."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Ops(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.names = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.names.append(str(func))
            return func(*args, **(kwargs or {}))

    batch, heads, seq_len, hidden = 3, 2, 7, 16
    x = torch.randn(batch, seq_len, hidden, device=DEVICE, requires_grad=True)
    stack = _linear(6 * hidden, hidden, torch.float32)
    gate = _linear(hidden // heads * 2, hidden // heads * 2, torch.float32)
    key_bias, lengths = _bias(batch, seq_len)
    rows = lengths - 1 if last_rows_only else None
    grads = [torch.randn(batch, seq_len, hidden, device=DEVICE),
             torch.randn(batch, 1 if last_rows_only else seq_len, hidden, device=DEVICE)]
    results = {}
    for backend in ("triton", "reference"):
        with asrec.use_backend(backend), Ops() as ops:
            out = hybrid_attention(x, key_bias, *_stacked_bundles(*stack, gate), heads, 0.0, False, rows)
            results[backend] = (*out, *torch.autograd.grad(out, [x, *stack, *gate], grads))
        if backend == "triton":
            # no concatenation of the projections forward, no stack of the branches' gradients backward
            assert "aten.cat.default" not in ops.names and "aten.stack.default" not in ops.names, ops.names
            # one sum: the stacked bias's gradient (the gate's bias gradient is summed in the kernels)
            assert ops.names.count("aten.sum.dim_IntList") == 1, ops.names
    for name, a, b in zip(("seasonal", "dynamic", "x", "stack.weight", "stack.bias", "gate.weight", "gate.bias"),
                          *results.values()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5 * max(1.0, b.abs().max().item()), msg=name)


def test_shapes_are_checked():
    seasonal, dynamic = _weights(32, 2)
    x = torch.randn(2, 7, 32, device=DEVICE)
    key_bias, _ = _bias(2, 7)
    with pytest.raises(ValueError, match="not a multiple of n_heads"):
        hybrid_attention(x, key_bias, seasonal, dynamic, 3)
    with pytest.raises(ValueError, match=r"the gate must be a \(16, 16\) weight"):
        hybrid_attention(x, key_bias, seasonal, dynamic, 4)
    with pytest.raises(ValueError, match="key_bias must be"):
        hybrid_attention(x, key_bias[:1], seasonal, dynamic, 2)
    wrong = _linear(7 * 32, 32, torch.float32)
    seasonal, dynamic = _stacked_bundles(*_linear(6 * 32, 32, torch.float32), seasonal.gate)
    seasonal, dynamic = seasonal._replace(stacked_projections=wrong), dynamic._replace(stacked_projections=wrong)
    with pytest.raises(ValueError, match=r"stacked_projections must be a \(192, 32\) weight and a \(192,\) bias, "
                                         r"got \(224, 32\)"):
        hybrid_attention(x, key_bias, seasonal, dynamic, 2)


@pytest.mark.gpu
@pytest.mark.parametrize("heads,seq_len,hidden", [(4, 50, 256), (1, 200, 64)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_published_shapes_on_gpu(heads, seq_len, hidden, dtype):
    batch = 256
    x = torch.randn(batch, seq_len, hidden, device=DEVICE, dtype=torch.float64, requires_grad=True)
    leaves = _leaves(*_weights(hidden, heads, torch.float64))
    key_bias, _ = _bias(batch, seq_len, torch.float64)
    grads = [torch.randn(batch, seq_len, hidden, device=DEVICE, dtype=torch.float64) for _ in range(2)]
    exact = _run("reference", x, key_bias, leaves, heads, grads)
    low_x = x.detach().to(dtype).requires_grad_()
    low_leaves = [t.detach().to(dtype).requires_grad_() for t in leaves]
    low_grads = [g.to(dtype) for g in grads]
    ours = _run("triton", low_x, key_bias.float(), low_leaves, heads, low_grads)
    reference_low = _run("reference", low_x, key_bias.to(dtype), low_leaves, heads, low_grads)
    for a, b, c in zip(ours, exact, reference_low):
        assert_low_precision_close(a, b, c)
