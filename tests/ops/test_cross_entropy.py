"""Triton cross-entropy (ops.cross_entropy, the model's loss) against F.cross_entropy: the loss
and the scores' gradient, item counts within one column block, not a power of two and over
several blocks, low-precision scores, and the launches it costs."""

import pytest
import torch
import torch.nn.functional as F

import asrec
from asrec.ops import cross_entropy

from ..triton_support import DEVICE, assert_low_precision_close, past_the_contract


def _run(backend, scores, targets, grad):
    with asrec.use_backend(backend):
        loss = cross_entropy(scores, targets)
    return loss, *torch.autograd.grad(loss, scores, grad)


# 4096 columns is the widest block (kernels.cross_entropy.MAX_BLOCK_C): 5000 and 9001 take two
# and three passes of the online log-sum-exp
@pytest.mark.parametrize("batch,n_items", [(1, 1), (3, 7), (4, 128), (5, 1683), (2, 4096), (3, 5000), (2, 9001)])
def test_loss_and_gradient_match_f_cross_entropy(batch, n_items):
    scores = (3 * torch.randn(batch, n_items, device=DEVICE)).requires_grad_()
    targets = torch.randint(0, n_items, (batch,), device=DEVICE)
    grad = torch.tensor(0.7, device=DEVICE)
    loss, dscores = _run("triton", scores, targets, grad)
    expected = F.cross_entropy(scores, targets)
    (expected_dscores,) = torch.autograd.grad(expected, scores, grad)
    assert loss.shape == () and loss.dtype == torch.float32 and dscores.dtype == torch.float32
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(dscores, expected_dscores, rtol=1e-5, atol=1e-6)


def test_the_reference_backend_is_f_cross_entropy():
    scores = torch.randn(4, 9, device=DEVICE)
    targets = torch.randint(0, 9, (4,), device=DEVICE)
    with asrec.use_backend("reference"):
        assert torch.equal(cross_entropy(scores, targets), F.cross_entropy(scores, targets))


def test_large_and_shifted_scores_stay_finite():
    """The online log-sum-exp rescales by the running maximum: scores around 1e4 whose maximum
    sits in the last block lose nothing."""
    scores = torch.randn(3, 5000, device=DEVICE) + 1e4
    scores[:, -1] += 30
    scores.requires_grad_()
    targets = torch.tensor([0, 4999, 2500], device=DEVICE)
    loss, dscores = _run("triton", scores, targets, torch.tensor(1.0, device=DEVICE))
    expected = F.cross_entropy(scores, targets)
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(dscores, torch.autograd.grad(expected, scores)[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("n_items", [100, 5000])
def test_low_precision_scores(dtype, n_items):
    exact_scores = 3 * torch.randn(6, n_items, device=DEVICE, dtype=torch.float64)
    targets = torch.randint(0, n_items, (6,), device=DEVICE)
    low = exact_scores.to(dtype).requires_grad_()
    exact = low.detach().double().requires_grad_()
    grad = torch.tensor(1.0, device=DEVICE, dtype=dtype)
    loss, dscores = _run("triton", low, targets, grad)
    assert loss.dtype == dtype and dscores.dtype == dtype
    expected = F.cross_entropy(exact, targets)
    (expected_dscores,) = torch.autograd.grad(expected, exact)
    reference_low = F.cross_entropy(low, targets)
    (reference_dscores,) = torch.autograd.grad(reference_low, low, grad)
    assert_low_precision_close(loss, expected, reference_low)
    assert_low_precision_close(dscores, expected_dscores, reference_dscores)


def test_int32_targets_and_a_strided_scores_view():
    base = torch.randn(4, 40, device=DEVICE, requires_grad=True)
    scores = base[:, ::2]  # column stride 2: copied once for the kernels
    targets = torch.randint(0, 20, (4,), device=DEVICE, dtype=torch.int32)
    grad = torch.tensor(1.3, device=DEVICE)
    with asrec.use_backend("triton"):
        loss = cross_entropy(scores, targets)
    (ours,) = torch.autograd.grad(loss, base, grad)
    expected = F.cross_entropy(scores, targets.long())
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ours, torch.autograd.grad(expected, base, grad)[0], rtol=1e-5, atol=1e-6)


def test_an_out_of_range_target_gives_a_nan_loss_not_a_stray_read():
    """Past the contract (which refuses the target on CPU tensors; on a GPU it would read the
    device), the kernel gives a NaN loss."""
    scores = torch.randn(2, 10, device=DEVICE)
    if DEVICE == "cpu":
        with pytest.raises(ValueError, match=r"cross_entropy: targets must lie in \[0, 9\], got min 3, max 10"):
            cross_entropy(scores, torch.tensor([3, 10]))
    run = past_the_contract("cross_entropy", "triton")
    assert torch.isnan(run(scores, torch.tensor([3, 10], device=DEVICE)))
    assert torch.isnan(run(scores, torch.tensor([-1, 3], device=DEVICE)))


def test_an_empty_batch_gives_nan_as_the_reference():
    scores = torch.zeros(0, 5, device=DEVICE, requires_grad=True)
    targets = torch.zeros(0, dtype=torch.int64, device=DEVICE)
    with asrec.use_backend("triton"):
        loss = cross_entropy(scores, targets)
    assert torch.isnan(loss) and torch.isnan(F.cross_entropy(scores, targets))
    (dscores,) = torch.autograd.grad(loss, scores)
    assert dscores.shape == (0, 5)


def test_one_launch_each_way():
    """Forward: the loss kernel and the mean; backward: one gradient kernel (F.cross_entropy
    takes log_softmax + nll_loss forward, nll_loss_backward + log_softmax_backward)."""
    from unittest import mock

    from asrec.kernels import cross_entropy as kernels

    scores = torch.randn(3, 50, device=DEVICE, requires_grad=True)
    targets = torch.randint(0, 50, (3,), device=DEVICE)
    with mock.patch.object(kernels, "_cross_entropy_fwd", wraps=kernels._cross_entropy_fwd) as fwd, \
            mock.patch.object(kernels, "_cross_entropy_bwd", wraps=kernels._cross_entropy_bwd) as bwd, \
            asrec.use_backend("triton"):
        loss = cross_entropy(scores, targets)
        assert (fwd.call_count, bwd.call_count) == (1, 0)
        loss.backward()
        assert (fwd.call_count, bwd.call_count) == (1, 1)


@pytest.mark.parametrize("args,match", [
    ((torch.zeros(2, 3, 4), torch.zeros(2, dtype=torch.int64)),
     r"cross_entropy: scores must be a \(batch, n_items\) floating tensor with n_items >= 1, got shape \(2, 3, 4\)"),
    ((torch.zeros(2, 0), torch.zeros(2, dtype=torch.int64)), r"n_items >= 1, got shape \(2, 0\)"),
    ((torch.zeros(2, 3, dtype=torch.int64), torch.zeros(2, dtype=torch.int64)), r"floating tensor"),
    ((torch.zeros(2, 3), torch.zeros(3, dtype=torch.int64)),
     r"cross_entropy: targets must be a \(2,\) integer tensor, got shape \(3,\) of torch.int64"),
    ((torch.zeros(2, 3), torch.zeros(2)),
     r"targets must be a \(2,\) integer tensor, got shape \(2,\) of torch.float32"),
])
def test_bad_arguments_are_named(args, match):
    with pytest.raises(ValueError, match=match):
        cross_entropy(*args)


def test_a_list_is_a_type_error_naming_the_argument():
    with pytest.raises(TypeError, match="cross_entropy: targets must be a torch.Tensor, got list"):
        cross_entropy(torch.zeros(2, 3), [0, 1])


def test_float64_on_triton_says_to_use_the_reference():
    with asrec.use_backend("triton"), pytest.raises(ValueError, match="float64"):
        cross_entropy(torch.zeros(2, 3, dtype=torch.float64, device=DEVICE), torch.zeros(2, dtype=torch.int64,
                                                                                          device=DEVICE))


def test_opcheck_cross_entropy():
    scores = torch.randn(3, 50, device=DEVICE)
    targets = torch.randint(0, 50, (3,), device=DEVICE)
    torch.library.opcheck(torch.ops.asrec.cross_entropy_fwd.default, (scores, targets))
    _, lse = torch.ops.asrec.cross_entropy_fwd(scores, targets)
    torch.library.opcheck(torch.ops.asrec.cross_entropy_bwd.default,
                          (scores, targets, lse, torch.tensor(0.5, device=DEVICE)))


def test_compile_captures_the_loss_in_one_graph():
    scores = torch.randn(3, 50, device=DEVICE, requires_grad=True)
    targets = torch.randint(0, 50, (3,), device=DEVICE)

    def loss(scores, targets):
        return cross_entropy(scores * 2, targets)

    with asrec.use_backend("triton"):
        eager = loss(scores, targets)
        (eager_grad,) = torch.autograd.grad(eager, scores)
        out = torch.compile(loss, backend="aot_eager", fullgraph=True)(scores, targets)
        (grad,) = torch.autograd.grad(out, scores)
    torch.testing.assert_close(out, eager)
    torch.testing.assert_close(grad, eager_grad)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_under_autocast_the_loss_is_float32_and_a_scaled_gradient_stays_finite(dtype):
    """cross_entropy is on autocast's float32 list: the loss comes out float32 on both backends
    (not quantised to the scores' precision), and a GradScaler-sized gradient (2^16) reaches
    the kernel as float32, so float16 scores get a finite gradient."""
    scores = (3 * torch.randn(5, 300, device=DEVICE)).to(dtype).requires_grad_()
    targets = torch.randint(0, 300, (5,), device=DEVICE)
    exact = F.cross_entropy(scores.detach().double(), targets)
    results = {}
    for backend in ("reference", "triton"):
        with asrec.use_backend(backend), torch.autocast(DEVICE, dtype=dtype):
            loss = cross_entropy(scores, targets)
        scale = torch.full((), 65536.0, device=DEVICE)
        (dscores,) = torch.autograd.grad(loss * scale, scores)
        assert loss.dtype == torch.float32, backend
        assert dscores.dtype == dtype and torch.isfinite(dscores).all(), backend
        results[backend] = loss
    torch.testing.assert_close(results["triton"].double(), exact, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(results["triton"], results["reference"], rtol=1e-5, atol=1e-5)
