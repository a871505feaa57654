"""linear_cross_entropy (the model's loss without the score matrix) against F.cross_entropy
of the materialised scores: the loss and both gradients, on the reference (several item
tiles) and on Triton (interpreter, small shapes: several row blocks, item tiles and
splits), low-precision inputs accumulating in float32, and its argument checks."""

import pytest
import torch
import torch.nn.functional as F

import asrec
from asrec.ops import linear_cross_entropy
from asrec.reference.linear_cross_entropy import linear_cross_entropy_ref

from ..triton_support import DEVICE, past_the_contract


def _materialised(hidden, weight, targets, grad):
    """F.cross_entropy of the whole (B, n_items) matrix in float64: the loss and its gradients."""
    h, w = hidden.detach().double().requires_grad_(), weight.detach().double().requires_grad_()
    loss = F.cross_entropy(h @ w.t(), targets.long())
    return (loss, *torch.autograd.grad(loss, (h, w), torch.tensor(grad, dtype=torch.float64)))


def _ours(run, hidden, weight, targets, grad):
    hidden, weight = hidden.detach().requires_grad_(), weight.detach().requires_grad_()
    loss = run(hidden, weight, targets)
    return (loss, *torch.autograd.grad(loss, (hidden, weight), torch.tensor(grad, device=loss.device)))


def _check(result, expected, tolerance):
    loss, d_hidden, d_weight = result
    assert loss.shape == () and loss.dtype == torch.float32
    for ours, exact in zip(result, expected):
        torch.testing.assert_close(ours.double(), exact, rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("batch,n_items,hidden,tile", [(1, 2, 4, 1), (5, 17, 8, 4), (9, 300, 16, 64), (4, 50, 8, 50)])
def test_reference_matches_the_materialised_loss(batch, n_items, hidden, tile):
    h, w = torch.randn(batch, hidden), torch.randn(n_items, hidden)
    targets = torch.randint(0, n_items, (batch,))
    result = _ours(lambda a, b, t: linear_cross_entropy_ref(a, b, t, tile=tile), h, w, targets, 0.7)
    _check(result, _materialised(h, w, targets, 0.7), 1e-5)


def test_reference_is_f_cross_entropy_in_float64_and_deterministic():
    h, w = torch.randn(6, 8, dtype=torch.float64), torch.randn(40, 8, dtype=torch.float64)
    targets = torch.randint(0, 40, (6,))
    loss = linear_cross_entropy_ref(h, w, targets, tile=7)
    assert loss.dtype == torch.float64
    torch.testing.assert_close(loss, F.cross_entropy(h @ w.t(), targets), rtol=1e-12, atol=1e-12)
    first = _ours(lambda a, b, t: linear_cross_entropy_ref(a, b, t, tile=7), h, w, targets, 1.0)
    again = _ours(lambda a, b, t: linear_cross_entropy_ref(a, b, t, tile=7), h, w, targets, 1.0)
    assert all(torch.equal(x, y) for x, y in zip(first, again))


# BLOCK_B 32 rows, BLOCK_V 64 items: 33 rows are two row blocks, 200 items four tiles in two or more splits
@pytest.mark.parametrize("batch,n_items,hidden", [(1, 2, 4), (5, 7, 8), (33, 200, 24)])
def test_triton_matches_the_materialised_loss(batch, n_items, hidden):
    h, w = torch.randn(batch, hidden, device=DEVICE), torch.randn(n_items, hidden, device=DEVICE)
    targets = torch.randint(0, n_items, (batch,), device=DEVICE)
    with asrec.use_backend("triton"):
        result = _ours(linear_cross_entropy, h, w, targets, 0.7)
    _check(result, _materialised(h, w, targets, 0.7), 1e-5)
    with asrec.use_backend("triton"):
        again = _ours(linear_cross_entropy, h, w, targets, 0.7)
    assert all(torch.equal(x, y) for x, y in zip(result, again))  # no atomics: bit for bit


@pytest.mark.parametrize("backend", ["reference", "triton"])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_inputs_accumulate_in_float32(backend, dtype):
    h, w = torch.randn(6, 16, device=DEVICE).to(dtype), torch.randn(150, 16, device=DEVICE).to(dtype)
    targets = torch.randint(0, 150, (6,), device=DEVICE)
    with asrec.use_backend(backend):
        loss, d_hidden, d_weight = _ours(linear_cross_entropy, h, w, targets, 1.0)
    exact = _materialised(h, w, targets, 1.0)   # the low-precision values, exactly
    assert loss.dtype == torch.float32 and d_hidden.dtype == dtype and d_weight.dtype == dtype
    torch.testing.assert_close(loss.double(), exact[0], rtol=1e-5, atol=1e-5)   # float32 accumulation
    # the gradients are rounded once, to the inputs' dtype
    torch.testing.assert_close(d_hidden, exact[1].to(dtype), rtol=1e-2, atol=1e-3)
    torch.testing.assert_close(d_weight, exact[2].to(dtype), rtol=1e-2, atol=1e-3)


@pytest.mark.parametrize("backend", ["reference", "triton"])
def test_large_scores_and_an_out_of_range_target(backend):
    h = torch.full((3, 8), 30.0, device=DEVICE)
    w = torch.randn(100, 8, device=DEVICE)
    w[77] += 5.0   # scores in the thousands, the maximum in a late tile
    targets = torch.tensor([0, 77, 99], device=DEVICE)
    with asrec.use_backend(backend):
        result = _ours(linear_cross_entropy, h, w, targets, 1.0)
    _check(result, _materialised(h, w, targets, 1.0), 1e-4)
    # past the contract (which refuses the target on CPU tensors; on a GPU it would read the device)
    assert past_the_contract("linear_cross_entropy", backend)(h, w, torch.tensor([0, 100, 5], device=DEVICE)).isnan()


def test_bad_arguments_name_themselves():
    h, w, t = torch.randn(2, 4), torch.randn(5, 4), torch.tensor([1, 2])
    with pytest.raises(TypeError, match="linear_cross_entropy: item_weight must be a torch.Tensor"):
        linear_cross_entropy(h, w.tolist(), t)
    with pytest.raises(ValueError, match=r"item_weight must be an \(n_items, 4\) float tensor"):
        linear_cross_entropy(h, torch.randn(5, 3), t)
    with pytest.raises(ValueError, match=r"targets must be a \(2,\) integer tensor"):
        linear_cross_entropy(h, w, t.float())
    with pytest.raises(ValueError, match="hidden must be a"):
        linear_cross_entropy(h[0], w, t)


def test_opcheck_linear_cross_entropy():
    h, w = torch.randn(5, 8, device=DEVICE), torch.randn(70, 8, device=DEVICE)
    targets = torch.randint(0, 70, (5,), device=DEVICE)
    torch.library.opcheck(torch.ops.asrec.linear_cross_entropy_fwd.default, (h, w, targets))
    _, lse = torch.ops.asrec.linear_cross_entropy_fwd(h, w, targets)
    torch.library.opcheck(torch.ops.asrec.linear_cross_entropy_bwd.default,
                          (h, w, targets, lse, torch.tensor(0.5, device=DEVICE)))


def test_fake_tensors_give_the_shapes_and_dtypes_without_running_a_kernel():
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode():
        h, w = torch.empty(300, 24, dtype=torch.bfloat16), torch.empty(1_000_000, 24, dtype=torch.bfloat16)
        loss, lse = torch.ops.asrec.linear_cross_entropy_fwd(h, w, torch.empty(300, dtype=torch.int64))
        d_hidden, d_weight = torch.ops.asrec.linear_cross_entropy_bwd(h, w, torch.empty(300, dtype=torch.int64), lse,
                                                                      torch.empty((), dtype=torch.float32))
    assert (loss.shape, loss.dtype, lse.shape, lse.dtype) == ((), torch.float32, (300,), torch.float32)
    assert (d_hidden.shape, d_hidden.dtype, d_weight.shape, d_weight.dtype) == (
        (300, 24), torch.bfloat16, (1_000_000, 24), torch.bfloat16)


def test_compile_captures_the_loss_and_its_gradients_in_one_graph():
    h = torch.randn(6, 8, device=DEVICE, requires_grad=True)
    w = torch.randn(90, 8, device=DEVICE, requires_grad=True)
    targets = torch.randint(0, 90, (6,), device=DEVICE)

    def loss(hidden, weight, targets):
        return linear_cross_entropy(hidden * 2, weight, targets)

    with asrec.use_backend("triton"):
        eager = loss(h, w, targets)
        eager_grads = torch.autograd.grad(eager, (h, w))
        out = torch.compile(loss, backend="aot_eager", fullgraph=True)(h, w, targets)
        grads = torch.autograd.grad(out, (h, w))
    torch.testing.assert_close(out, eager)
    for ours, expected in zip(grads, eager_grads):
        torch.testing.assert_close(ours, expected)
