"""The training loss over the whole catalog without the (batch, n_items) score matrix:
the public op ``linear_cross_entropy``, its backends and its argument checks.

Backends: the reference (``asrec.reference.linear_cross_entropy``: torch GEMMs over item
tiles, the CPU's path) and Triton (``asrec.kernels.linear_cross_entropy``).
"""

import torch

from .. import backends
from ..reference.linear_cross_entropy import linear_cross_entropy_ref
from . import _contract
from ._custom_op import custom_op

# ---- Triton custom ops (torch.compile and export see them through their fakes) ----

@custom_op("asrec::linear_cross_entropy_fwd")
def linear_cross_entropy_fwd(hidden: torch.Tensor, item_weight: torch.Tensor,
                             targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """hidden (B, H), item_weight (V, H), targets (B,), contiguous -> (mean loss () float32, the
    rows' log-sum-exp (B,) float32)."""
    from ..kernels.linear_cross_entropy import linear_cross_entropy_fwd as launch

    return launch(hidden, item_weight, targets)


@linear_cross_entropy_fwd.register_fake
def linear_cross_entropy_fwd_fake(hidden, item_weight, targets):
    return hidden.new_empty((), dtype=torch.float32), hidden.new_empty(hidden.shape[0], dtype=torch.float32)


@custom_op("asrec::linear_cross_entropy_bwd")
def linear_cross_entropy_bwd(hidden: torch.Tensor, item_weight: torch.Tensor, targets: torch.Tensor,
                             lse: torch.Tensor, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """grad: the mean loss's gradient (one element) -> (d hidden (B, H), d item_weight (V, H)) in their dtypes."""
    from ..kernels.linear_cross_entropy import linear_cross_entropy_bwd as launch

    return launch(hidden, item_weight, targets, lse, grad)


@linear_cross_entropy_bwd.register_fake
def linear_cross_entropy_bwd_fake(hidden, item_weight, targets, lse, grad):
    return hidden.new_empty(hidden.shape), item_weight.new_empty(item_weight.shape)


# ---- backends: the op -> its Triton autograd Function -> the custom ops ----

class LinearCrossEntropyFn(torch.autograd.Function):
    """``linear_cross_entropy`` on Triton: forward the custom op ``linear_cross_entropy_fwd``
    (two launches: per-split partial log-sum-exps, their combination and the mean), backward
    ``linear_cross_entropy_bwd`` (two launches: d hidden, d item_weight, the tiles recomputed)."""

    @staticmethod
    def forward(ctx, hidden, item_weight, targets):
        hidden, item_weight, targets = hidden.contiguous(), item_weight.contiguous(), targets.contiguous()
        loss, lse = linear_cross_entropy_fwd(hidden, item_weight, targets)
        ctx.save_for_backward(hidden, item_weight, targets, lse)
        return loss

    @staticmethod
    def backward(ctx, grad):
        hidden, item_weight, targets, lse = ctx.saved_tensors
        d_hidden, d_weight = linear_cross_entropy_bwd(hidden, item_weight, targets, lse, grad.contiguous())
        return d_hidden, d_weight, None


def linear_cross_entropy_triton(hidden, item_weight, targets):
    """The Triton path: ``LinearCrossEntropyFn``."""
    return LinearCrossEntropyFn.apply(hidden, item_weight, targets)


def linear_cross_entropy_triton_unsupported(hidden, item_weight, targets):
    """None when the Triton kernels take this call, else why not."""
    from ..kernels.linear_cross_entropy import unsupported

    return unsupported(hidden, item_weight, targets)


backends.register("linear_cross_entropy", linear_cross_entropy_ref,
                  triton=backends.FusedKernel(linear_cross_entropy_triton, linear_cross_entropy_triton_unsupported))


# ---- public op ----

def linear_cross_entropy(hidden: torch.Tensor, item_weight: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The mean over the batch of the cross-entropy of ``hidden @ item_weight.T`` (every item
    row scored, the padding item 0 included, as the published loss), without the (batch,
    n_items) matrix: a float32 scalar (float64 for float64 inputs), gradients to hidden and
    item_weight in their dtypes; bfloat16/float16 inputs accumulate in float32 (also under
    autocast). hidden (batch, H) float, item_weight (n_items, H) float, targets (batch,)
    integer ids in [0, n_items): not checked here (that would read the device; the model
    checks them), a row whose target is out of range has a NaN loss."""
    _contract.check_scoring("linear_cross_entropy", hidden, item_weight, targets=targets)
    args = (hidden, item_weight, targets)
    return backends.dispatch("linear_cross_entropy", hidden.device, *args)(*args)
