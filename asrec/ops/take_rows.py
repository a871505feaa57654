"""One row per sequence of several (batch, seq_len, hidden) tensors (the model's last layer
reads each sequence at its last position only): the Triton custom ops, the autograd Function
and the public op ``take_rows``."""

import torch

from .. import backends
from ..reference.take_rows import take_rows_ref
from ._checks import check_tensors, unsupported_tensors
from ._custom_op import custom_op

MAX_TENSORS = 4  # kernels.take_rows takes up to four tensors per launch

# ---- Triton custom ops ----


@custom_op("asrec::take_rows_fwd")
def take_rows_fwd(rows: torch.Tensor, tensors: list[torch.Tensor]) -> list[torch.Tensor]:
    """rows (B,) int64; 1 to 4 (B, N, H) tensors (each its own dtype) with unit column stride -> their
    rows ``t[b, rows[b]]``, (B, 1, H) each."""
    from ..kernels.take_rows import _take_rows_fwd as launch

    return launch(rows, tensors)


@take_rows_fwd.register_fake
def take_rows_fwd_fake(rows, tensors):
    return [t.new_empty((t.shape[0], 1, t.shape[2])) for t in tensors]


@custom_op("asrec::take_rows_bwd")
def take_rows_bwd(rows: torch.Tensor, grads: list[torch.Tensor], seq_len: int) -> list[torch.Tensor]:
    """grads: 1 to 4 (B, 1, H) gradients (each its own dtype) -> each input's (B, seq_len, H) gradient
    (the incoming one at row rows[b], zeros elsewhere)."""
    from ..kernels.take_rows import _take_rows_bwd as launch

    return launch(rows, grads, seq_len)


@take_rows_bwd.register_fake
def take_rows_bwd_fake(rows, grads, seq_len):
    return [g.new_empty((g.shape[0], seq_len, g.shape[2])) for g in grads]


# ---- autograd ----

class TakeRowsFn(torch.autograd.Function):
    """Triton forward/backward of ``take_rows_ref`` over every tensor: one launch each way,
    whatever the number of tensors."""

    @staticmethod
    def forward(ctx, rows, *tensors):
        # a tensor whose rows get no gradient gets None, not a zero tensor (no fill launch)
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(rows)
        ctx.seq_len = tensors[0].shape[1]
        unit_columns = [t if t.stride(2) == 1 else t.contiguous() for t in tensors]
        return tuple(take_rows_fwd(rows, unit_columns))

    @staticmethod
    def backward(ctx, *grads):
        (rows,) = ctx.saved_tensors
        wanted = [i for i, g in enumerate(grads) if g is not None and ctx.needs_input_grad[1 + i]]
        result = [None] * len(grads)
        if wanted:
            for i, grad in zip(wanted, take_rows_bwd(rows, [grads[i] for i in wanted], ctx.seq_len)):
                result[i] = grad
        return (None, *result)


def _triton(rows, *tensors):
    return TakeRowsFn.apply(rows.contiguous(), *tensors)


def _triton_unsupported(rows, *tensors):
    if rows.device != tensors[0].device:
        return f"rows on {rows.device} and tensors on {tensors[0].device}: one device"
    return unsupported_tensors(**{f"tensors[{i}]": t for i, t in enumerate(tensors)})


backends.register("take_rows", take_rows_ref, triton=backends.FusedKernel(_triton, _triton_unsupported))


# ---- public op ----

def take_rows(rows, *tensors: torch.Tensor) -> tuple:
    """``t[b, rows[b]]`` of each tensor (``asrec.reference.take_rows_ref``):
    rows (batch,) int64 positions, or None (then the tensors come back unchanged); tensors: 1
    to 4 (batch, seq_len, hidden) tensors of one shape and device, each in its own dtype (under
    autocast the layer's attention context is in the low precision and its residual float32)
    -> a tuple of (batch, 1, hidden) tensors, one per tensor, in their dtypes. The positions
    are not checked here (that would read the device; the model's come from checked lengths):
    on the Triton backend an out-of-range row gives NaN and no gradient."""
    if not 1 <= len(tensors) <= MAX_TENSORS:
        raise TypeError(f"take_rows: takes 1 to {MAX_TENSORS} tensors after rows, got {len(tensors)}")
    check_tensors("take_rows", **{f"tensors[{i}]": t for i, t in enumerate(tensors)})
    first = tensors[0]
    if first.dim() != 3:
        raise ValueError(f"take_rows: tensors[0] must be (batch, seq_len, hidden), got shape {tuple(first.shape)}")
    for i, tensor in enumerate(tensors[1:], 1):
        if tensor.shape != first.shape or tensor.device != first.device:
            raise ValueError(f"take_rows: tensors[{i}] is {tuple(tensor.shape)} on {tensor.device}, "
                             f"expected tensors[0]'s {tuple(first.shape)} on {first.device}")
    if rows is None:
        return tuple(tensors)
    check_tensors("take_rows", rows=rows)
    if rows.shape != (first.shape[0],) or rows.dtype != torch.int64:
        raise ValueError(f"take_rows: rows must be a ({first.shape[0]},) int64 tensor, got shape {tuple(rows.shape)} "
                         f"of {rows.dtype}")
    args = (rows, *tensors)
    return backends.dispatch("take_rows", first.device, *args)(*args)
