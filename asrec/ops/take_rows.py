"""One row per sequence of several (batch, seq_len, hidden) tensors (the model's last layer
reads each sequence at its last position only): the Triton custom ops, the autograd Function
and the public op ``take_rows``."""

import torch

from .. import backends
from ..reference.take_rows import take_rows_ref
from . import _contract
from ._checks import unsupported_tensors
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
    return unsupported_tensors(**{f"tensors[{i}]": t for i, t in enumerate(tensors)})


backends.register("take_rows", take_rows_ref, triton=backends.FusedKernel(_triton, _triton_unsupported))


# ---- public op ----

def take_rows(rows, *tensors: torch.Tensor) -> tuple:
    """``t[b, rows[b]]`` of each tensor (``asrec.reference.take_rows_ref``):
    rows (batch,) int64 positions, or None (then the tensors come back unchanged); tensors: 1
    to 4 (batch, seq_len, hidden) tensors of one shape and device, each in its own dtype (under
    autocast the layer's attention context is in the low precision and its residual float32)
    -> a tuple of (batch, 1, hidden) tensors, one per tensor, in their dtypes. The positions
    lie in [0, seq_len): the contract checks them on CPU tensors; on a GPU that would read the
    device, and the caller holds them (the model's come from checked lengths)."""
    _contract.check_take_rows(rows, tensors, MAX_TENSORS)
    if rows is None:
        return tuple(tensors)
    args = (rows, *tensors)
    return backends.dispatch("take_rows", tensors[0].device, *args)(*args)
