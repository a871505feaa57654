"""Each target's rank among the real items, in Triton, without the (batch, n_items) score
matrix: one launch of ``_ranks_partial_kernel`` and a torch sum over its partial counts.

``_ranks_partial_kernel``, grid (row blocks, item splits): each program computes its rows'
target scores, then walks its split of the catalog in tiles of BLOCK items, scores each tile
with ``tl.dot`` in float32 (ieee: no TF32) and counts, per row, the real items (ids >= 1,
the target itself left out) scoring strictly higher than the target, and the NaN scores
(padding item included, as the evaluation checks the whole matrix). It writes both counts
per (row, split); the host side sums them (int32 partials, int64 sums: deterministic) and
reports -1 for a row with a NaN.

The target's score is computed by the same product as the tiles': a (BLOCK, H) x (H, BLOCK)
``tl.dot`` of the rows with their target rows (its diagonal kept). On the GPU an IEEE
float32 dot is one chain of fused multiply-adds per element over the hidden width, whatever
the other rows and columns, so an item whose score equals the target's ties exactly, as on
the materialised matrix. Against the reference (a torch GEMM), scores equal only up to
rounding may fall on either side; tests compare on integer-valued inputs, where every
product is exact.
"""

import torch
import triton
import triton.language as tl

from ._common import _load_rows_f32

BLOCK = 32        # rows per program = items per tile (the target's product has the tiles' shape)
MAX_HIDDEN = 256  # the hidden width one program holds in registers
MAX_SPLITS = 128  # item splits (more programs where the batch is small)


@triton.jit
def _ranks_partial_kernel(hidden_ptr, weight_ptr, targets_ptr, higher_ptr, nan_ptr,
                          batch, n_items, hidden_size, items_per_split, n_splits,
                          BLOCK: tl.constexpr, BLOCK_H: tl.constexpr):
    rows = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    split = tl.program_id(1)
    row_ok = rows < batch
    cols = tl.arange(0, BLOCK_H)
    col_ok = cols < hidden_size
    h = _load_rows_f32(hidden_ptr, rows, row_ok, cols, col_ok, hidden_size)
    target = tl.load(targets_ptr + rows, mask=row_ok, other=0).to(tl.int64)
    target_ok = row_ok & (target >= 0) & (target < n_items)
    w_target = _load_rows_f32(weight_ptr, target, target_ok, cols, col_ok, hidden_size)
    # the rows' target scores: the diagonal of a product shaped as every tile's
    pairs = tl.dot(h, tl.trans(w_target), input_precision="ieee")
    lanes = tl.arange(0, BLOCK)
    picked = tl.sum(tl.where(lanes[:, None] == lanes[None, :], pairs, 0.0), axis=1)
    higher = tl.zeros((BLOCK,), tl.int32)
    nan = tl.zeros((BLOCK,), tl.int32)
    first = split * items_per_split
    for start in range(first, first + items_per_split, BLOCK):
        items = start + tl.arange(0, BLOCK)
        item_ok = items < n_items
        w = _load_rows_f32(weight_ptr, items.to(tl.int64), item_ok, cols, col_ok, hidden_size)
        scores = tl.dot(h, tl.trans(w), input_precision="ieee")
        nan += tl.sum((item_ok[None, :] & (scores != scores)).to(tl.int32), axis=1)
        # the padding item never counts, nor does the target against itself
        counted = item_ok[None, :] & (items[None, :] != 0) & (items[None, :] != target[:, None])
        higher += tl.sum((counted & (scores > picked[:, None])).to(tl.int32), axis=1)
    out = rows * n_splits + split
    tl.store(higher_ptr + out, higher, mask=row_ok)
    tl.store(nan_ptr + out, nan, mask=row_ok)


def _block_h(hidden_size: int) -> int:
    return max(16, triton.next_power_of_2(hidden_size))


def _splits(batch: int, n_items: int) -> tuple:
    """(item splits, items per split): enough programs to fill a GPU when the batch is small."""
    tiles = triton.cdiv(n_items, BLOCK)
    splits = max(1, min(MAX_SPLITS, tiles, 4 * 132 // max(1, triton.cdiv(batch, BLOCK))))
    per_split = triton.cdiv(tiles, splits) * BLOCK
    return triton.cdiv(n_items, per_split), per_split


def target_ranks_triton(hidden: torch.Tensor, item_weight: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """hidden (B, H), item_weight (V, H), targets (B,) -> (B,) int64 ranks, -1 where a row has a NaN score
    (``asrec.reference.target_ranks.target_ranks_ref``'s contract)."""
    hidden, item_weight, targets = hidden.contiguous(), item_weight.contiguous(), targets.contiguous()
    batch, hidden_size = hidden.shape
    n_items = item_weight.shape[0]
    if batch == 0:
        return torch.empty(0, device=hidden.device, dtype=torch.int64)
    n_splits, per_split = _splits(batch, n_items)
    partial = torch.empty((2, batch, n_splits), device=hidden.device, dtype=torch.int32)
    _ranks_partial_kernel[(triton.cdiv(batch, BLOCK), n_splits)](
        hidden, item_weight, targets, partial[0], partial[1], batch, n_items, hidden_size, per_split, n_splits,
        BLOCK=BLOCK, BLOCK_H=_block_h(hidden_size), num_warps=8 if hidden_size > 64 else 4)
    higher = partial[0].sum(dim=1, dtype=torch.int64)
    return higher.masked_fill_(partial[1].any(dim=1), -1)


KERNEL_DTYPES = (torch.float32, torch.bfloat16, torch.float16)


def unsupported(hidden, item_weight, targets):
    """None when the kernel above takes the call, else why not."""
    for name, tensor in (("hidden", hidden), ("item_weight", item_weight)):
        if tensor.dtype not in KERNEL_DTYPES:
            return f"{name}: the Triton kernel takes float32, bfloat16 or float16, got {tensor.dtype}"
    if hidden.shape[1] > MAX_HIDDEN:
        return f"hidden width {hidden.shape[1]} is over the kernel's {MAX_HIDDEN}"
    return None
