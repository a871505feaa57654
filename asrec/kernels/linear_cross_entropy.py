"""The catalog-wide cross-entropy of ``hidden @ item_weight.T`` without the score matrix, in
Triton: four launches per training step (the materialised path took six: the scores' GEMM,
the loss kernel and its mean; the loss gradient kernel and two GEMMs).

Forward, two launches:

1. ``_lce_partial_kernel``, grid (row blocks, item splits): each program walks its split of
   the catalog in tiles of BLOCK_V items, computes the (BLOCK_B, BLOCK_V) scores with
   ``tl.dot`` in float32 (ieee: no TF32) and keeps an online log-sum-exp per row (running
   maximum, rescaled sum) and the target's score when the target falls in its split;
2. ``_lce_combine_kernel``, one program: the rows' log-sum-exp from the splits' partials,
   each row's loss ``lse - score[target]`` and their mean, summed in row order
   (deterministic), written to the loss; the rows' ``lse`` saved for backward.

Backward recomputes the tiles, two launches and no atomics:

3. ``_lce_grad_hidden_kernel``, one program per row block, walks every item tile:
   ``d_hidden += ((softmax - onehot) * g / B) @ W_tile``;
4. ``_lce_grad_weight_kernel``, one program per item tile, walks every row block:
   ``d_W_tile = ((softmax - onehot) * g / B).T @ hidden``.

Inputs of any of float32, bfloat16, float16 are read in their dtype and multiplied in
float32. ``g`` is read from its device tensor (no host read). A target outside
``[0, n_items)`` gives its row a NaN loss.
"""

import torch
import triton
import triton.language as tl

from ._common import _load_rows_f32

BLOCK_B = 32     # rows per program (tl.dot needs >= 16)
BLOCK_V = 64     # items per tile
MAX_HIDDEN = 256  # the hidden width one program holds in registers
MAX_SPLITS = 128  # item splits of the forward (more programs where the batch is small)


@triton.jit
def _lce_partial_kernel(hidden_ptr, weight_ptr, targets_ptr, max_ptr, sum_ptr, picked_ptr,
                        batch, n_items, hidden_size, items_per_split, n_splits,
                        BLOCK_B: tl.constexpr, BLOCK_V: tl.constexpr, BLOCK_H: tl.constexpr):
    row_block = tl.program_id(0)
    split = tl.program_id(1)
    rows = row_block * BLOCK_B + tl.arange(0, BLOCK_B)
    row_ok = rows < batch
    cols = tl.arange(0, BLOCK_H)
    col_ok = cols < hidden_size
    h = _load_rows_f32(hidden_ptr, rows, row_ok, cols, col_ok, hidden_size)
    target = tl.load(targets_ptr + rows, mask=row_ok, other=-1).to(tl.int64)
    maximum = tl.full((BLOCK_B,), float("-inf"), tl.float32)
    total = tl.zeros((BLOCK_B,), tl.float32)
    picked = tl.zeros((BLOCK_B,), tl.float32)
    first = split * items_per_split
    for start in range(first, first + items_per_split, BLOCK_V):
        items = start + tl.arange(0, BLOCK_V)
        item_ok = items < n_items
        w = _load_rows_f32(weight_ptr, items.to(tl.int64), item_ok, cols, col_ok, hidden_size)
        scores = tl.dot(h, tl.trans(w), input_precision="ieee")
        scores = tl.where(item_ok[None, :], scores, float("-inf"))
        new_maximum = tl.maximum(maximum, tl.max(scores, axis=1))
        # a row whose scores so far are all -inf keeps a zero sum (exp(-inf - -inf) would be NaN)
        rescale = tl.where(new_maximum == float("-inf"), 0.0, tl.exp(maximum - new_maximum))
        shifted = tl.where(new_maximum[:, None] == float("-inf"), float("-inf"), scores - new_maximum[:, None])
        total = total * rescale + tl.sum(tl.exp(shifted), axis=1)
        maximum = new_maximum
        picked += tl.sum(tl.where(items[None, :] == target[:, None], scores, 0.0), axis=1)
    out = rows * n_splits + split
    tl.store(max_ptr + out, maximum, mask=row_ok)
    tl.store(sum_ptr + out, total, mask=row_ok)
    tl.store(picked_ptr + out, picked, mask=row_ok)


@triton.jit
def _lce_combine_kernel(max_ptr, sum_ptr, picked_ptr, targets_ptr, lse_ptr, loss_ptr, batch, n_items, n_splits,
                        BLOCK_R: tl.constexpr, BLOCK_S: tl.constexpr):
    splits = tl.arange(0, BLOCK_S)
    split_ok = splits < n_splits
    mean = tl.sum(tl.zeros((BLOCK_R,), tl.float32), axis=0)
    for first in range(0, batch, BLOCK_R):
        rows = first + tl.arange(0, BLOCK_R)
        row_ok = rows < batch
        where = rows[:, None] * n_splits + splits[None, :]
        ok = row_ok[:, None] & split_ok[None, :]
        part_max = tl.load(max_ptr + where, mask=ok, other=float("-inf"))
        part_sum = tl.load(sum_ptr + where, mask=ok, other=0.0)
        maximum = tl.max(part_max, axis=1)
        safe = tl.where(maximum == float("-inf"), 0.0, maximum)
        total = tl.sum(tl.where(part_max == float("-inf"), 0.0, part_sum * tl.exp(part_max - safe[:, None])), axis=1)
        lse = safe + tl.log(tl.where(row_ok, total, 1.0))  # rows past the batch: no log(0)
        picked = tl.sum(tl.load(picked_ptr + where, mask=ok, other=0.0), axis=1)
        target = tl.load(targets_ptr + rows, mask=row_ok, other=0).to(tl.int64)
        loss = tl.where((target >= 0) & (target < n_items), lse - picked, float("nan"))
        tl.store(lse_ptr + rows, lse, mask=row_ok)
        mean += tl.sum(tl.where(row_ok, loss, 0.0), axis=0)
    tl.store(loss_ptr, mean / batch)


@triton.jit
def _softmax_gradient(h, w, lse, target, items, item_ok, scale):
    """((softmax - onehot(target)) * scale) of a (rows, items) tile, float32."""
    scores = tl.dot(h, tl.trans(w), input_precision="ieee")
    soft = tl.where(item_ok[None, :], tl.exp(scores - lse[:, None]), 0.0)
    return (soft - tl.where(items[None, :] == target[:, None], 1.0, 0.0)) * scale


@triton.jit
def _lce_grad_hidden_kernel(hidden_ptr, weight_ptr, targets_ptr, lse_ptr, grad_ptr, out_ptr,
                            batch, n_items, hidden_size,
                            BLOCK_B: tl.constexpr, BLOCK_V: tl.constexpr, BLOCK_H: tl.constexpr):
    rows = tl.program_id(0) * BLOCK_B + tl.arange(0, BLOCK_B)
    row_ok = rows < batch
    cols = tl.arange(0, BLOCK_H)
    col_ok = cols < hidden_size
    h = _load_rows_f32(hidden_ptr, rows, row_ok, cols, col_ok, hidden_size)
    target = tl.load(targets_ptr + rows, mask=row_ok, other=-1).to(tl.int64)
    lse = tl.load(lse_ptr + rows, mask=row_ok, other=0.0)
    scale = tl.load(grad_ptr).to(tl.float32) / batch
    # rows past the batch: zero hidden, zero gradient (their softmax is masked by scale 0)
    scale_rows = tl.where(row_ok, scale, 0.0)
    d_hidden = tl.zeros((BLOCK_B, BLOCK_H), tl.float32)
    for start in range(0, n_items, BLOCK_V):
        items = start + tl.arange(0, BLOCK_V)
        item_ok = items < n_items
        w = _load_rows_f32(weight_ptr, items.to(tl.int64), item_ok, cols, col_ok, hidden_size)
        d_scores = _softmax_gradient(h, w, lse, target, items, item_ok, scale_rows[:, None])
        d_hidden += tl.dot(d_scores, w, input_precision="ieee")
    tl.store(out_ptr + rows[:, None] * hidden_size + cols[None, :], d_hidden.to(out_ptr.dtype.element_ty),
             mask=row_ok[:, None] & col_ok[None, :])


@triton.jit
def _lce_grad_weight_kernel(hidden_ptr, weight_ptr, targets_ptr, lse_ptr, grad_ptr, out_ptr,
                            batch, n_items, hidden_size,
                            BLOCK_B: tl.constexpr, BLOCK_V: tl.constexpr, BLOCK_H: tl.constexpr):
    items = tl.program_id(0) * BLOCK_V + tl.arange(0, BLOCK_V)
    item_ok = items < n_items
    cols = tl.arange(0, BLOCK_H)
    col_ok = cols < hidden_size
    item_offsets = items[:, None].to(tl.int64) * hidden_size + cols[None, :]
    w = tl.load(weight_ptr + item_offsets, mask=item_ok[:, None] & col_ok[None, :], other=0.0).to(tl.float32)
    scale = tl.load(grad_ptr).to(tl.float32) / batch
    d_weight = tl.zeros((BLOCK_V, BLOCK_H), tl.float32)
    for first in range(0, batch, BLOCK_B):
        rows = first + tl.arange(0, BLOCK_B)
        row_ok = rows < batch
        h = _load_rows_f32(hidden_ptr, rows, row_ok, cols, col_ok, hidden_size)
        target = tl.load(targets_ptr + rows, mask=row_ok, other=-1).to(tl.int64)
        lse = tl.load(lse_ptr + rows, mask=row_ok, other=0.0)
        # the tile's gradient scores come transposed, (items, rows), straight from the product
        # w @ h.T: no transpose of a computed tile (a layout change through shared memory)
        scores_t = tl.dot(w, tl.trans(h), input_precision="ieee")
        soft_t = tl.where(item_ok[:, None], tl.exp(scores_t - lse[None, :]), 0.0)
        onehot_t = tl.where(items[:, None] == target[None, :], 1.0, 0.0)
        d_scores_t = (soft_t - onehot_t) * tl.where(row_ok, scale, 0.0)[None, :]
        d_weight += tl.dot(d_scores_t, h, input_precision="ieee")
    tl.store(out_ptr + item_offsets, d_weight.to(out_ptr.dtype.element_ty), mask=item_ok[:, None] & col_ok[None, :])


def _block_h(hidden_size: int) -> int:
    return max(16, triton.next_power_of_2(hidden_size))


def _backward_tiles(block_h: int) -> dict:
    """Per backward kernel, (BLOCK_B, BLOCK_V, num_warps) for a hidden width: each program holds
    a (rows, H) and an (items, H) tile and a full-width accumulator in registers, and the IEEE
    float32 products run on FMA units (no tensor cores), so wide rows take small tiles and 8
    warps. Chosen by the ahead-of-time compile (tests/triton_aot): at BLOCK_B=32, BLOCK_V=64
    and 4 warps the weight gradient spilled 34 KB per thread at H=256 (8.8 KB at H=64, sm_80)."""
    if block_h >= 128:
        return dict(hidden=(16, 32, 8), weight=(32, 16, 8))
    return dict(hidden=(32, 32, 4), weight=(32, 16, 4))


def _splits(batch: int, n_items: int) -> tuple:
    """(item splits, items per split): enough programs to fill a GPU when the batch is small."""
    tiles = triton.cdiv(n_items, BLOCK_V)
    splits = max(1, min(MAX_SPLITS, tiles, 4 * 132 // triton.cdiv(batch, BLOCK_B)))
    per_split = triton.cdiv(tiles, splits) * BLOCK_V
    return triton.cdiv(n_items, per_split), per_split


def linear_cross_entropy_fwd(hidden, item_weight, targets):
    """hidden (B, H), item_weight (V, H) contiguous, targets (B,) -> (mean loss () float32, lse (B,) float32)."""
    batch, hidden_size = hidden.shape
    n_items = item_weight.shape[0]
    loss = torch.empty((), device=hidden.device, dtype=torch.float32)
    lse = torch.empty(batch, device=hidden.device, dtype=torch.float32)
    if batch == 0:
        return loss.fill_(float("nan")), lse
    n_splits, per_split = _splits(batch, n_items)
    partial = torch.empty((3, batch, n_splits), device=hidden.device, dtype=torch.float32)
    _lce_partial_kernel[(triton.cdiv(batch, BLOCK_B), n_splits)](
        hidden, item_weight, targets, partial[0], partial[1], partial[2], batch, n_items, hidden_size, per_split,
        n_splits, BLOCK_B=BLOCK_B, BLOCK_V=BLOCK_V, BLOCK_H=_block_h(hidden_size),
        num_warps=8 if hidden_size > 64 else 4)
    _lce_combine_kernel[(1,)](partial[0], partial[1], partial[2], targets, lse, loss, batch, n_items, n_splits,
                              BLOCK_R=32, BLOCK_S=max(2, triton.next_power_of_2(n_splits)))
    return loss, lse


def linear_cross_entropy_bwd(hidden, item_weight, targets, lse, grad):
    """grad: the mean loss's gradient (one element) -> (d hidden (B, H), d item_weight (V, H)) in their dtypes."""
    batch, hidden_size = hidden.shape
    n_items = item_weight.shape[0]
    d_hidden = torch.empty_like(hidden)
    d_weight = torch.empty_like(item_weight)
    block_h = _block_h(hidden_size)
    tiles = _backward_tiles(block_h)
    if batch > 0:
        rows, items, warps = tiles["hidden"]
        _lce_grad_hidden_kernel[(triton.cdiv(batch, rows),)](
            hidden, item_weight, targets, lse, grad, d_hidden, batch, n_items, hidden_size,
            BLOCK_B=rows, BLOCK_V=items, BLOCK_H=block_h, num_warps=warps)
    rows, items, warps = tiles["weight"]
    _lce_grad_weight_kernel[(triton.cdiv(n_items, items),)](
        hidden, item_weight, targets, lse, grad, d_weight, batch, n_items, hidden_size,
        BLOCK_B=rows, BLOCK_V=items, BLOCK_H=block_h, num_warps=warps)
    return d_hidden, d_weight


KERNEL_DTYPES = (torch.float32, torch.bfloat16, torch.float16)


def unsupported(hidden, item_weight, targets):
    """None when the kernels above take the call, else why not."""
    for name, tensor in (("hidden", hidden), ("item_weight", item_weight)):
        if tensor.dtype not in KERNEL_DTYPES:
            return f"{name}: the Triton kernels take float32, bfloat16 or float16, got {tensor.dtype}"
    if hidden.device.type != "cuda" and not (hidden.device.type == "cpu" and _interpreting()):
        return f"the Triton kernels need a CUDA device (or TRITON_INTERPRET=1 on the CPU), got {hidden.device}"
    if hidden.shape[1] > MAX_HIDDEN:
        return f"hidden width {hidden.shape[1]} is over the kernels' {MAX_HIDDEN}"
    return None


def _interpreting() -> bool:
    import os

    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")
