"""The fused Triton feed-forward block against its reference: forward and every gradient."""

import pytest
import torch
import torch.nn.functional as F

import asrec
from asrec.ops import feed_forward
from asrec.ops.feed_forward import _feed_forward, feed_forward_composition
from asrec.reference.activations import ACTIVATIONS
from asrec.reference.weights import FeedForwardWeights, LinearWeights, NormWeights

from ..triton_support import DEVICE, assert_low_precision_close

EPS = 1e-12


def _weights(hidden, inner, activation):
    def leaf(*shape, scale=1.0, shift=0.0):
        return (shift + scale * torch.randn(*shape, device=DEVICE)).requires_grad_()

    return FeedForwardWeights(LinearWeights(leaf(inner, hidden, scale=hidden ** -0.5), leaf(inner, scale=0.5)),
                              LinearWeights(leaf(hidden, inner, scale=inner ** -0.5), leaf(hidden, scale=0.5)),
                              NormWeights(leaf(hidden, scale=0.1, shift=1.0), leaf(hidden, scale=0.1), EPS),
                              activation)


def _leaves(x, weights):
    return (x, *weights.dense_in, *weights.dense_out, weights.norm.weight, weights.norm.bias)


NAMES = ("out", "x", "dense_in.weight", "dense_in.bias", "dense_out.weight", "dense_out.bias", "norm.weight",
         "norm.bias")


def _run(fn, x, weights, grad, *args):
    out = fn(x, weights, *args)
    return (out, *torch.autograd.grad(out, _leaves(x, weights), grad))


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
@pytest.mark.parametrize("shape,inner", [((2, 7, 8), 32), ((3, 5, 24), 40), ((4, 1, 64), 64), ((1, 37, 16), 20)])
def test_forward_and_gradients_match_reference(activation, shape, inner):
    """Without dropout: the fused block equals the reference backend's composition, values and
    the gradients of x, both dense layers' weights and biases and the norm's (inner not a
    multiple of hidden included: the b_in gradient's last chunk is partial)."""
    x = torch.randn(shape, device=DEVICE, requires_grad=True)
    weights = _weights(shape[-1], inner, activation)
    grad = torch.randn(shape, device=DEVICE)
    with asrec.use_backend("triton"):
        ours = _run(feed_forward, x, weights, grad, 0.3, False)
    with asrec.use_backend("reference"):
        expected = _run(feed_forward, x, weights, grad, 0.3, False)
    for name, a, b in zip(NAMES, ours, expected):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5, msg=name)


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_dropout_matches_the_reference_math_with_the_kernels_mask(activation, monkeypatch):
    """With dropout: ``LN(drop(dense_out(act(dense_in(x)))) + x)`` in plain torch with the
    kernels' own mask (counters 0..numel of the call's Philox state), and the composition over
    the Triton residual norm (the same mask) agrees too."""
    from ..triton_support import fix_dropout_rng, kernel_dropout_factors

    fix_dropout_rng(monkeypatch, 23)
    shape, inner = (3, 9, 24), 56
    x = torch.randn(shape, device=DEVICE, requires_grad=True)
    weights = _weights(shape[-1], inner, activation)
    grad = torch.randn(shape, device=DEVICE)
    with asrec.use_backend("triton"):
        ours = _run(feed_forward, x, weights, grad, 0.4, True)
        composed = _run(feed_forward_composition, x, weights, grad, 0.4, True)
    factors = kernel_dropout_factors(x.numel(), 23, 0.4, DEVICE).view(shape)

    def reference(x, weights):
        dense = F.linear(ACTIVATIONS[activation](F.linear(x, *weights.dense_in)), *weights.dense_out)
        return F.layer_norm(dense * factors + x, (shape[-1],), weights.norm.weight, weights.norm.bias, EPS)

    expected = _run(reference, x, weights, grad)
    for name, a, b, c in zip(NAMES, ours, expected, composed):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5, msg=name)
        torch.testing.assert_close(a, c, rtol=1e-5, atol=1e-5, msg=name)


def test_activation_kernels_match_torch_across_the_range():
    """The kernels' activations and exact derivatives (tanh without libdevice: its series near 0)
    against torch's, float32, over small and large inputs: within a few float32 ulp of inputs up
    to 12 (gelu's far negative tail is 1 + erf(z), rounded differently by each erf)."""
    from asrec.kernels._common import column_sums
    from asrec.kernels.feed_forward import _activation_bwd, _activation_fwd

    z = torch.cat([torch.linspace(-12, 12, 1001), torch.linspace(-0.3, 0.3, 1001), torch.tensor([0.0])])
    h = z.to(DEVICE).view(-1, 1).expand(-1, 16).contiguous()
    bias = torch.zeros(16, device=DEVICE)
    grad = torch.randn_like(h)
    for activation, fn in ACTIVATIONS.items():
        leaf = h.clone().requires_grad_()
        expected = fn(leaf)
        (expected_grad,) = torch.autograd.grad(expected, leaf, grad)
        torch.testing.assert_close(_activation_fwd(h, bias, activation), expected, rtol=2e-6, atol=1e-6,
                                   msg=activation)
        parts = torch.empty(1, -(-h.shape[0] // 16), 16, device=DEVICE)
        dh = _activation_bwd(h, bias, grad, activation, parts, 0, 16)
        torch.testing.assert_close(dh, expected_grad, rtol=2e-6, atol=1e-6, msg=activation)
        torch.testing.assert_close(column_sums(parts)[0], expected_grad.sum(0), rtol=1e-5, atol=1e-5, msg=activation)


def test_registered_as_an_op_with_the_composition_as_reference():
    from asrec import backends
    from asrec.kernels.feed_forward import ACTIVATION_CODES

    assert set(ACTIVATION_CODES) == set(ACTIVATIONS)  # the kernels take every activation

    assert backends.plan("feed_forward", "cpu", selection="reference").run is feed_forward_composition
    assert "feed_forward" in backends.registered_ops()


@pytest.mark.parametrize("change,match", [
    (lambda w: w._replace(activation="elu"), "activation must be one of"),
    (lambda w: w._replace(dense_in=LinearWeights(w.dense_in.weight[:, :7], w.dense_in.bias)),
     r"dense_in_weight must be \(32, 8\)"),
    (lambda w: w._replace(dense_out=LinearWeights(w.dense_out.weight, w.dense_out.bias[:3])),
     r"dense_out_bias must be \(8,\)"),
])
def test_bad_weights_are_refused(change, match):
    weights = change(_weights(8, 32, "gelu"))
    with pytest.raises(ValueError, match=match):
        feed_forward(torch.randn(2, 3, 8, device=DEVICE), weights)


@pytest.mark.parametrize("dropping", [False, True])
def test_opcheck(dropping):
    from asrec.ops.feed_forward import feed_forward_bwd, feed_forward_fwd

    from ..triton_support import rng_state

    x = torch.randn(21, 24, device=DEVICE)
    weights = [t.detach() for t in _leaves(x, _weights(24, 40, "swish"))[1:]]
    args = (x, x, *weights, rng_state(3), EPS, 0.3, dropping)
    torch.library.opcheck(feed_forward_fwd.op, (*args[:-3], *args[-3:], torch.float32, "swish"))
    _, h, a, dense = feed_forward_fwd(*args, torch.float32, "swish")
    torch.library.opcheck(feed_forward_bwd.op, (*args[:8], h, a, dense, torch.randn_like(x), *args[8:], "swish"))
    # with the second handle's gradient (with_residual)
    torch.library.opcheck(feed_forward_bwd.op, (*args[:8], h, a, dense, torch.randn_like(x), *args[8:], "swish",
                                                torch.randn_like(x)))


def _cast(x, weights, dtype):
    def leaf(t):
        return t.detach().to(dtype).requires_grad_()

    return leaf(x), FeedForwardWeights(LinearWeights(*map(leaf, weights.dense_in)),
                                       LinearWeights(*map(leaf, weights.dense_out)),
                                       NormWeights(leaf(weights.norm.weight), leaf(weights.norm.bias), EPS),
                                       weights.activation)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("activation", ["gelu", "tanh"])
def test_low_precision_inputs_and_weights(dtype, activation):
    """x and every weight in one low dtype: float32 inside the kernels; the result and every
    gradient within twice the reference's own error in that dtype (against float64)."""
    shape = (4, 16, 32)
    x = torch.randn(shape, device=DEVICE)
    weights = _weights(32, 64, activation)
    grad = torch.randn(shape, device=DEVICE)
    with asrec.use_backend("triton"):
        ours = _run(feed_forward, *_cast(x, weights, dtype), grad.to(dtype))
    with asrec.use_backend("reference"):
        low = _run(feed_forward, *_cast(x, weights, dtype), grad.to(dtype))
        exact = _run(feed_forward, *_cast(x, weights, torch.float64), grad.double())
    for name, a, b, c in zip(NAMES, ours, exact, low):
        assert a.dtype == c.dtype, name
        assert_low_precision_close(a, b, c)


def test_under_autocast():
    """bfloat16 autocast: the GEMMs in bfloat16 as F.linear's would be, the norm in float32; the
    output float32 and each gradient in its parameter's dtype, within twice the reference's
    own autocast error (against float64)."""
    shape = (4, 16, 32)
    x = torch.randn(shape, device=DEVICE, requires_grad=True)
    weights = _weights(32, 64, "gelu")
    grad = torch.randn(shape, device=DEVICE)
    results = []
    for backend in ("triton", "reference"):
        with asrec.use_backend(backend), torch.autocast(torch.device(DEVICE).type, dtype=torch.bfloat16):
            results.append(_run(feed_forward, x, weights, grad))
    with asrec.use_backend("reference"):
        exact = _run(feed_forward, *_cast(x, weights, torch.float64), grad.double())
    for name, a, b, c in zip(NAMES, results[0], exact, results[1]):
        assert a.dtype == c.dtype == torch.float32, name
        assert_low_precision_close(a, b, c)


@pytest.mark.parametrize("which", ["both", "first", "residual"])
@pytest.mark.parametrize("dropout_p,training", [(0.0, False), (0.3, True)])
def test_residual_handle_gradients_are_added_in_the_norm_kernel(which, dropout_p, training, monkeypatch):
    """The private _feed_forward(with_residual=True) (the hybrid layer's path): two handles of the same values; every gradient is the one of the sum of the
    handles' gradients (the norm's backward kernel adds them as it reads them; either may be
    missing), and the reference backend agrees."""
    from ..triton_support import fix_dropout_rng

    fix_dropout_rng(monkeypatch, 5)
    shape, inner = (2, 9, 24), 40
    x = torch.randn(shape, device=DEVICE, requires_grad=True)
    weights = _weights(shape[-1], inner, "gelu")
    g1, g2 = torch.randn(2, *shape, device=DEVICE)
    grads = {"both": (g1, g2), "first": (g1, None), "residual": (None, g2)}[which]

    def run(backend, grads):
        with asrec.use_backend(backend):
            handles = _feed_forward(x, weights, dropout_p, training, with_residual=True)
        total = sum((h * g).sum() for h, g in zip(handles, grads) if g is not None)
        return (*handles, *torch.autograd.grad(total, _leaves(x, weights)))

    ours = run("triton", grads)
    assert torch.equal(ours[0], ours[1]) and ours[1]._base is not None
    summed = run("triton", (sum(g for g in grads if g is not None), None))
    for name, a, b in zip(NAMES[1:], ours[2:], summed[2:]):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6, msg=name)
    if not training:
        for name, a, b in zip(("out", "residual") + NAMES[1:], ours, run("reference", grads)):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5, msg=name)
