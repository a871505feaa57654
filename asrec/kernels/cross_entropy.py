"""Cross-entropy over all items, mean over the batch, in one launch each way (``F.cross_entropy``
with default arguments costs log_softmax and nll_loss forward, nll_loss_backward and
log_softmax_backward in backward).

One program per row. Forward walks the row's scores in column blocks with an online
log-sum-exp (running maximum, rescaled running sum, in float32), so any number of items fits,
and stores the row's loss ``lse - scores[target]`` and its ``lse`` (float32, for backward).
Backward recomputes the softmax from the saved ``lse``: ``(softmax - onehot(target)) * g / B``
with ``g`` the loss's gradient, read from its device tensor (no host read), stored in the
scores' dtype.

A target outside ``[0, n_items)`` (the model checks them; checking here would read the device)
gives a NaN loss for its row rather than a read out of bounds.
"""

import torch
import triton
import triton.language as tl

# the widest column block: 4096 float32 scores per program and pass (16 per thread at 8 warps)
MAX_BLOCK_C = 4096
# (the kernels write their infinities and NaN inline: a NaN global would fail the check Triton
# makes at every launch that a kernel's globals are unchanged, since nan != nan)


@triton.jit
def _cross_entropy_fwd_kernel(scores_ptr, targets_ptr, loss_ptr, lse_ptr, n_cols, row_stride,
                              BLOCK_C: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    base = scores_ptr + row * row_stride
    columns = tl.arange(0, BLOCK_C)
    # online log-sum-exp: running maximum and the sum of exp(x - maximum), rescaled when the
    # maximum grows (the first block holds a real column, so the maximum is finite after it
    # unless the scores are -inf or NaN, where the reference's log_softmax is NaN too)
    maximum = tl.max(tl.full((BLOCK_C,), float("-inf"), tl.float32), axis=0)
    total = tl.sum(tl.zeros((BLOCK_C,), tl.float32), axis=0)
    for start in range(0, n_cols, BLOCK_C):
        ok = start + columns < n_cols
        x = tl.load(base + start + columns, mask=ok, other=float("-inf")).to(tl.float32)
        new_maximum = tl.maximum(maximum, tl.max(x, axis=0))
        total = total * tl.exp(maximum - new_maximum) + tl.sum(tl.exp(x - new_maximum), axis=0)
        maximum = new_maximum
    lse = maximum + tl.log(total)
    target = tl.load(targets_ptr + row).to(tl.int64)
    valid = (target >= 0) & (target < n_cols)
    picked = tl.load(base + tl.where(valid, target, 0)).to(tl.float32)
    tl.store(loss_ptr + row, tl.where(valid, lse - picked, float("nan")).to(loss_ptr.dtype.element_ty))
    tl.store(lse_ptr + row, lse)


@triton.jit
def _cross_entropy_bwd_kernel(scores_ptr, targets_ptr, lse_ptr, grad_ptr, out_ptr, n_cols, row_stride, batch,
                              BLOCK_C: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    base = scores_ptr + row * row_stride
    out = out_ptr + row * n_cols
    columns = tl.arange(0, BLOCK_C)
    lse = tl.load(lse_ptr + row)
    target = tl.load(targets_ptr + row).to(tl.int64)
    # d mean / d row loss = g / B (the reference's nll_loss_backward: -g / total weight)
    scale = tl.load(grad_ptr).to(tl.float32) / batch
    for start in range(0, n_cols, BLOCK_C):
        position = start + columns
        ok = position < n_cols
        x = tl.load(base + position, mask=ok, other=0.0).to(tl.float32)
        softmax = tl.exp(x - lse)
        grad = (softmax - tl.where(position == target, 1.0, 0.0)) * scale
        tl.store(out + position, grad.to(out_ptr.dtype.element_ty), mask=ok)


def _blocks(n_cols: int) -> dict:
    block = min(MAX_BLOCK_C, max(128, triton.next_power_of_2(n_cols)))
    return dict(BLOCK_C=block, num_warps=8 if block >= 2048 else 4)


def _cross_entropy_fwd(scores, targets):
    """scores: (B, C) float, unit column stride; targets: (B,) integer -> (per-row loss (B,)
    float32 (the mean over rows is taken in float32), per-row log-sum-exp (B,) float32)."""
    batch, n_cols = scores.shape
    loss = torch.empty(batch, device=scores.device, dtype=torch.float32)
    lse = torch.empty(batch, device=scores.device, dtype=torch.float32)
    if batch > 0:
        _cross_entropy_fwd_kernel[(batch,)](scores, targets, loss, lse, n_cols, scores.stride(0), **_blocks(n_cols))
    return loss, lse


def _cross_entropy_bwd(scores, targets, lse, grad):
    """grad: the mean loss's gradient, a one-element tensor -> d scores (B, C) contiguous, scores' dtype."""
    batch, n_cols = scores.shape
    out = torch.empty((batch, n_cols), device=scores.device, dtype=scores.dtype)
    if batch > 0:
        _cross_entropy_bwd_kernel[(batch,)](scores, targets, lse, grad, out, n_cols, scores.stride(0), batch,
                                            **_blocks(n_cols))
    return out
