"""Triton take_rows (ops.take_rows: one row per sequence of up to four tensors) against the
reference gather per tensor: the rows and every gradient, with missing gradients, strided
inputs and gradients, low-precision dtypes, and the one launch each way."""

import pytest
import torch

import asrec
from asrec.ops import take_rows
from asrec.reference import take_rows_ref

from ..triton_support import DEVICE, past_the_contract


def _inputs(count, shape, dtype=torch.float32):
    return [torch.randn(shape, device=DEVICE).to(dtype).requires_grad_() for _ in range(count)]


def _rows(batch, seq_len):
    return torch.randint(0, seq_len, (batch,), device=DEVICE)


# (2, 50, 256): the model's last layer at ml-100k; (3, 9, 2000): two column blocks forward, a
# partial last one backward; (2, 70, 40): rows over several backward row blocks
@pytest.mark.parametrize("shape", [(1, 1, 1), (3, 7, 8), (2, 50, 256), (4, 5, 100), (3, 9, 2000), (2, 70, 40)])
@pytest.mark.parametrize("count", [1, 2, 3, 4])
def test_rows_and_gradients_are_the_reference_bits(shape, count):
    tensors = _inputs(count, shape)
    rows = _rows(shape[0], shape[1])
    grads = [torch.randn(shape[0], 1, shape[2], device=DEVICE) for _ in range(count)]
    with asrec.use_backend("triton"):
        taken = take_rows(rows, *tensors)
    assert isinstance(taken, tuple) and len(taken) == count
    ours = torch.autograd.grad(taken, tensors, grads)
    expected = [take_rows_ref(rows, t)[0] for t in tensors]
    expected_grads = torch.autograd.grad(expected, tensors, grads)
    for a, b in zip((*taken, *ours), (*expected, *expected_grads)):
        assert a.shape == b.shape and a.dtype == b.dtype
        assert torch.equal(a, b)  # a copy each way: exact


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_tensors_are_copied_exactly(dtype):
    tensors = _inputs(2, (3, 6, 24), dtype)
    rows = _rows(3, 6)
    grads = [torch.randn(3, 1, 24, device=DEVICE).to(dtype) for _ in range(2)]
    with asrec.use_backend("triton"):
        taken = take_rows(rows, *tensors)
    ours = torch.autograd.grad(taken, tensors, grads)
    expected = [take_rows_ref(rows, t)[0] for t in tensors]
    for a, b in zip((*taken, *ours), (*expected, *torch.autograd.grad(expected, tensors, grads))):
        assert a.dtype == dtype and torch.equal(a, b)


def test_a_row_without_gradient_gets_none_or_zeros():
    """Only the first tensor's row is used: the second gets no gradient from the kernel (None
    where autograd allows it, else its zeros, as the reference gives)."""
    tensors = _inputs(2, (3, 5, 8))
    rows = _rows(3, 5)
    with asrec.use_backend("triton"):
        first, _ = take_rows(rows, *tensors)
    grad = torch.randn(3, 1, 8, device=DEVICE)
    ours = torch.autograd.grad(first, tensors, grad, allow_unused=True)
    assert ours[1] is None
    assert torch.equal(ours[0], torch.autograd.grad(take_rows_ref(rows, tensors[0])[0], tensors[0], grad)[0])
    # through a loss over both rows, where one branch is detached
    with asrec.use_backend("triton"):
        first, second = take_rows(rows, tensors[0], tensors[1].detach())
    (first * 2).sum().backward()
    assert tensors[1].grad is None
    torch.testing.assert_close(tensors[0].grad, 2 * torch.autograd.grad(take_rows_ref(rows, tensors[0])[0].sum(),
                                                                        tensors[0])[0])


def test_strided_inputs_and_expanded_gradients():
    """Inputs that are views (a (2, B, N, H) stack's slices, a transposed pair) and gradients
    with stride 0 (a sum's backward) need no copies but give the reference's values."""
    stacked = torch.randn(2, 3, 6, 16, device=DEVICE, requires_grad=True)
    transposed = torch.randn(3, 16, 6, device=DEVICE).transpose(1, 2).requires_grad_()  # column stride 6
    rows = _rows(3, 6)
    inputs = (stacked[0], stacked[1], transposed)
    with asrec.use_backend("triton"):
        taken = take_rows(rows, *inputs)
    loss = sum(t.sum() for t in taken)
    ours = torch.autograd.grad(loss, (stacked, transposed))
    expected = [take_rows_ref(rows, t)[0] for t in inputs]
    for a, b in zip(taken, expected):
        assert torch.equal(a, b)
    expected_grads = torch.autograd.grad(sum(t.sum() for t in expected), (stacked, transposed))
    for a, b in zip(ours, expected_grads):
        assert torch.equal(a, b)


def test_none_rows_return_the_tensors():
    tensors = _inputs(2, (2, 4, 8))
    with asrec.use_backend("triton"):
        taken = take_rows(None, *tensors)
    assert taken[0] is tensors[0] and taken[1] is tensors[1]


def test_an_out_of_range_row_gives_nan_and_no_gradient():
    """Past the contract (which refuses the row on CPU tensors; on a GPU it would read the
    device), the kernel gives a NaN row and no gradient, never a stray read."""
    x = torch.randn(2, 4, 8, device=DEVICE, requires_grad=True)
    rows = torch.tensor([1, 4], device=DEVICE)
    if DEVICE == "cpu":
        with pytest.raises(ValueError, match=r"take_rows: rows must lie in \[0, 3\], got min 1, max 4"):
            take_rows(rows, x)
    (taken,) = past_the_contract("take_rows", "triton")(rows, x)
    assert torch.equal(taken[0], x[0, 1:2]) and torch.isnan(taken[1]).all()
    (grad,) = torch.autograd.grad(taken, x, torch.ones_like(taken))
    assert torch.equal(grad[1], torch.zeros(4, 8, device=DEVICE)) and grad[0, 1].eq(1).all()


def test_one_launch_each_way_for_all_tensors():
    from unittest import mock

    from asrec.kernels import take_rows as kernels

    tensors = _inputs(3, (2, 5, 8))
    rows = _rows(2, 5)
    with mock.patch.object(kernels, "_take_rows_fwd", wraps=kernels._take_rows_fwd) as fwd, \
            mock.patch.object(kernels, "_take_rows_bwd", wraps=kernels._take_rows_bwd) as bwd, \
            asrec.use_backend("triton"):
        taken = take_rows(rows, *tensors)
        assert (fwd.call_count, bwd.call_count) == (1, 0)
        sum(t.sum() for t in taken).backward()
        assert (fwd.call_count, bwd.call_count) == (1, 1)


def test_an_empty_batch():
    tensors = _inputs(2, (0, 5, 8))
    with asrec.use_backend("triton"):
        taken = take_rows(torch.zeros(0, dtype=torch.int64, device=DEVICE), *tensors)
    assert [t.shape for t in taken] == [(0, 1, 8)] * 2
    grads = torch.autograd.grad(sum(t.sum() for t in taken), tensors)
    assert [g.shape for g in grads] == [(0, 5, 8)] * 2


_X = torch.zeros(2, 3, 4)
_ROWS = torch.zeros(2, dtype=torch.int64)


@pytest.mark.parametrize("args,error,match", [
    ((_ROWS,), TypeError, r"take_rows: takes 1 to 4 tensors after rows, got 0"),
    ((_ROWS, _X, _X, _X, _X, _X), TypeError, r"takes 1 to 4 tensors after rows, got 5"),
    ((_ROWS, _X, [1.0]), TypeError, r"take_rows: tensors\[1\] must be a torch.Tensor, got list"),
    ((_ROWS, torch.zeros(2, 3)), ValueError, r"take_rows: tensors\[0\] must be \(batch, seq_len, hidden\), got shape "
                                             r"\(2, 3\)"),
    ((_ROWS, _X, torch.zeros(2, 3, 5)), ValueError, r"take_rows: tensors\[1\] is \(2, 3, 5\) on cpu, "
                                                    r"expected tensors\[0\]'s \(2, 3, 4\) on cpu"),
    ((torch.zeros(3, dtype=torch.int64), _X), ValueError,
     r"take_rows: rows must be a \(2,\) int64 tensor, got shape \(3,\) of torch.int64"),
    ((_ROWS.int(), _X), ValueError, r"rows must be a \(2,\) int64 tensor, got shape \(2,\) of torch.int32"),
    (([0, 1], _X), TypeError, r"take_rows: rows must be a torch.Tensor, got list"),
])
def test_bad_arguments_are_named(args, error, match):
    with pytest.raises(error, match=match):
        take_rows(*args)


def test_float64_on_triton_says_to_use_the_reference():
    x = torch.zeros(2, 3, 4, dtype=torch.float64, device=DEVICE)
    with asrec.use_backend("triton"), pytest.raises(ValueError, match="float64"):
        take_rows(torch.zeros(2, dtype=torch.int64, device=DEVICE), x)
    with asrec.use_backend("reference"):
        assert take_rows(torch.zeros(2, dtype=torch.int64, device=DEVICE), x)[0].shape == (2, 1, 4)


def test_opcheck_take_rows():
    tensors = [torch.randn(3, 6, 8, device=DEVICE) for _ in range(2)]
    rows = _rows(3, 6)
    torch.library.opcheck(torch.ops.asrec.take_rows_fwd.default, (rows, tensors))
    torch.library.opcheck(torch.ops.asrec.take_rows_bwd.default,
                          (rows, [torch.randn(3, 1, 8, device=DEVICE) for _ in range(2)], 6))


def test_compile_captures_take_rows_in_one_graph():
    tensors = _inputs(2, (3, 6, 8))
    rows = _rows(3, 6)

    def both_rows(rows, x, y):
        first, second = take_rows(rows, x, y)
        return first * second.sin()

    with asrec.use_backend("triton"):
        eager = both_rows(rows, *tensors)
        eager_grads = torch.autograd.grad(eager.sum(), tensors)
        out = torch.compile(both_rows, backend="aot_eager", fullgraph=True)(rows, *tensors)
        grads = torch.autograd.grad(out.sum(), tensors)
    torch.testing.assert_close(out, eager)
    for a, b in zip(grads, eager_grads):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("backend", ["reference", "triton"])
def test_tensors_of_different_dtypes_keep_theirs(backend):
    """Under autocast the layer takes the rows of a low-precision context and a float32
    residual in one call: each comes back, and gets its gradient, in its own dtype."""
    rows = torch.tensor([4, 0, 5], device=DEVICE)
    low, full = _inputs(1, (3, 6, 24), torch.bfloat16)[0], _inputs(1, (3, 6, 24))[0]
    grads = [torch.randn(3, 1, 24, device=DEVICE).to(torch.bfloat16), torch.randn(3, 1, 24, device=DEVICE)]
    with asrec.use_backend(backend):
        taken = take_rows(rows, low, full)
    assert [t.dtype for t in taken] == [torch.bfloat16, torch.float32]
    dlow, dfull = torch.autograd.grad(taken, (low, full), grads)
    assert dlow.dtype == torch.bfloat16 and dfull.dtype == torch.float32
    for source, out, grad, dsource in ((low, taken[0], grads[0], dlow), (full, taken[1], grads[1], dfull)):
        index = torch.arange(3, device=DEVICE)
        assert torch.equal(out[:, 0], source.detach()[index, rows])
        expected = torch.zeros_like(source)
        expected[index, rows] = grad[:, 0]
        assert torch.equal(dsource, expected)
