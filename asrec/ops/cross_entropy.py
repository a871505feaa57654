"""The training loss, cross-entropy over all items averaged over the batch: its Triton custom
ops, the autograd Function and the public op ``cross_entropy``."""

import torch

from .. import backends
from ..reference.cross_entropy import cross_entropy_ref
from . import _contract
from ._checks import unsupported_tensors
from ._custom_op import custom_op

# ---- Triton custom ops ----


@custom_op("asrec::cross_entropy_fwd")
def cross_entropy_fwd(scores: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """scores (B, C), targets (B,) -> (per-row loss (B,) float32, per-row log-sum-exp (B,)
    float32)."""
    from ..kernels.cross_entropy import _cross_entropy_fwd as launch

    return launch(scores, targets)


@cross_entropy_fwd.register_fake
def cross_entropy_fwd_fake(scores, targets):
    batch = scores.shape[0]
    return scores.new_empty(batch, dtype=torch.float32), scores.new_empty(batch, dtype=torch.float32)


@custom_op("asrec::cross_entropy_bwd")
def cross_entropy_bwd(scores: torch.Tensor, targets: torch.Tensor, lse: torch.Tensor,
                      grad: torch.Tensor) -> torch.Tensor:
    """grad: the mean loss's gradient (a one-element tensor) -> d scores (B, C) in scores' dtype."""
    from ..kernels.cross_entropy import _cross_entropy_bwd as launch

    return launch(scores, targets, lse, grad)


@cross_entropy_bwd.register_fake
def cross_entropy_bwd_fake(scores, targets, lse, grad):
    return scores.new_empty(scores.shape)


# ---- autograd ----

class CrossEntropyFn(torch.autograd.Function):
    """Triton forward/backward of ``cross_entropy_ref``: the loss kernel and one mean forward,
    one gradient kernel backward (the mean's backward is folded into it: g / B per row)."""

    @staticmethod
    def forward(ctx, scores, targets):
        if scores.stride(1) != 1:  # the kernels walk a row's columns contiguously
            scores = scores.contiguous()
        targets = targets.contiguous()
        row_loss, lse = cross_entropy_fwd(scores, targets)
        ctx.save_for_backward(scores, targets, lse)
        # the mean in float32; the loss in scores' dtype as F.cross_entropy's, but float32 under
        # autocast (cross_entropy is on its float32 list: a float16 loss would also overflow a
        # GradScaler's scaled gradient before it reaches the kernel)
        if torch.is_autocast_enabled(scores.device.type):
            return row_loss.mean()
        return row_loss.mean().to(scores.dtype)

    @staticmethod
    def backward(ctx, grad):
        scores, targets, lse = ctx.saved_tensors
        return cross_entropy_bwd(scores, targets, lse, grad.contiguous()), None


def _triton(scores, targets):
    return CrossEntropyFn.apply(scores, targets)


def _triton_unsupported(scores, targets):
    return unsupported_tensors(scores=scores)


backends.register("cross_entropy", cross_entropy_ref, triton=backends.FusedKernel(_triton, _triton_unsupported))


# ---- public op ----

def cross_entropy(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """See ``asrec.reference.cross_entropy.cross_entropy_ref`` (``F.cross_entropy`` with default
    arguments): scores (batch, n_items) float, targets (batch,) integer item ids in [0, n_items)
    -> the mean over the batch of ``logsumexp(scores[b]) - scores[b, targets[b]]``, a scalar in
    scores' dtype. There is no ``ignore_index`` (a target of -100 is out of range): the contract
    checks the targets on CPU tensors; on a GPU that would read the device, and the caller holds
    them (the model checks its targets). Under autocast the loss is float32 (as
    ``F.cross_entropy``'s there)."""
    _contract.check_cross_entropy(scores, targets)
    args = (scores, targets)
    return backends.dispatch("cross_entropy", scores.device, *args)(*args)
