"""The k best real items per row, in Triton, without the (batch, n_items) score matrix: one
launch of ``_top_candidates_kernel`` and a torch top-k over its candidates.

Each item is one int64 key ordered as (score descending, id ascending), the same keys as
``asrec.reference.top_items``: the float32 score's bits made order-preserving in the high
half (every NaN as 0x7FFFFFFF, above +inf), ``0xFFFFFFFF - id`` in the low half; the padding
item, and ids past the catalog, get the smallest key, ``LEFT_OUT``.

``_top_candidates_kernel``, grid (row blocks, item splits): each program walks its split of
the catalog in tiles of WIDTH items, scores each tile with ``tl.dot`` in float32 (ieee),
and keeps its rows' WIDTH best keys in registers, sorted descending: a tile's keys sorted
ascending and the running best sorted descending, their elementwise maximum holds the WIDTH
best of both (a bitonic merge step), sorted again. It writes the (rows, splits, WIDTH)
candidates; ``torch.topk`` over each row's candidates then picks the answer, exactly (keys
are distinct). ``exclude`` (B, M) is applied there, not in the kernel: WIDTH >= k + M, so
the k best items outside a row's M excluded ids are among its k + M best candidates, which
are taken first and filtered. Memory: the candidates, B x splits x WIDTH keys.
"""

import torch
import triton
import triton.language as tl

from ..reference.top_items import LEFT_OUT, item_ids, result_from_keys
from ._common import _load_rows_f32

BLOCK_B = 16             # rows per program (tl.dot needs >= 16)
MAX_WIDTH = 256          # candidates per row and program: k + M at most this
MAX_TILE = 256 * 64      # WIDTH x next_pow2(hidden) of the item tile one program holds in registers
MAX_SPLITS = 64          # item splits (more programs where the batch is small)


@triton.jit
def _top_candidates_kernel(hidden_ptr, weight_ptr, out_ptr, batch, n_items, hidden_size, items_per_split, n_splits,
                           BLOCK_B: tl.constexpr, WIDTH: tl.constexpr, BLOCK_H: tl.constexpr):
    rows = tl.program_id(0) * BLOCK_B + tl.arange(0, BLOCK_B)
    split = tl.program_id(1)
    row_ok = rows < batch
    cols = tl.arange(0, BLOCK_H)
    col_ok = cols < hidden_size
    h = _load_rows_f32(hidden_ptr, rows, row_ok, cols, col_ok, hidden_size)
    left_out = tl.full((BLOCK_B, WIDTH), -9223372036854775807, tl.int64) - 1   # LEFT_OUT, int64's minimum
    low = tl.full((WIDTH,), 4294967295, tl.int64)   # 0xFFFFFFFF: the low half of a key is low - id
    best = left_out
    first = split * items_per_split
    for start in range(first, first + items_per_split, WIDTH):
        items = start + tl.arange(0, WIDTH)
        item_ok = items < n_items
        w = _load_rows_f32(weight_ptr, items.to(tl.int64), item_ok, cols, col_ok, hidden_size)
        scores = tl.dot(h, tl.trans(w), input_precision="ieee") + 0.0   # -0.0 as 0.0
        bits = scores.to(tl.int32, bitcast=True)
        ordered = bits ^ ((bits >> 31) & 0x7FFFFFFF)   # negative floats' bits count down: flip them
        ordered = tl.where(scores != scores, 0x7FFFFFFF, ordered)
        keys = (ordered.to(tl.int64) << 32) | (low - items.to(tl.int64))[None, :]
        keys = tl.where((item_ok & (items != 0))[None, :], keys, left_out)
        merged = tl.maximum(best, tl.sort(keys, dim=1, descending=False))
        best = tl.sort(merged, dim=1, descending=True)
    lanes = tl.arange(0, WIDTH)
    out = (rows[:, None] * n_splits + split) * WIDTH + lanes[None, :]
    tl.store(out_ptr + out, best, mask=row_ok[:, None])


def _block_h(hidden_size: int) -> int:
    return max(16, triton.next_power_of_2(hidden_size))


def candidate_width(k: int, exclude) -> int:
    """WIDTH: k + M (exclude's columns) rounded up to a power of two, at least 16."""
    excluded = 0 if exclude is None else exclude.shape[1]
    return max(16, triton.next_power_of_2(k + excluded))


def _splits(batch: int, n_items: int, width: int) -> tuple:
    """(item splits, items per split): enough programs to fill a GPU when the batch is small."""
    tiles = triton.cdiv(n_items, width)
    splits = max(1, min(MAX_SPLITS, tiles, 4 * 132 // max(1, triton.cdiv(batch, BLOCK_B))))
    per_split = triton.cdiv(tiles, splits) * width
    return triton.cdiv(n_items, per_split), per_split


def top_items_triton(hidden: torch.Tensor, item_weight: torch.Tensor, k: int, exclude=None) -> tuple:
    """``asrec.reference.top_items.top_items_ref``'s contract (float32 scores, int64 ids, (B, k) each)."""
    hidden, item_weight = hidden.contiguous(), item_weight.contiguous()
    batch, hidden_size = hidden.shape
    n_items = item_weight.shape[0]
    width = candidate_width(k, exclude)
    n_splits, per_split = _splits(batch, n_items, width)
    candidates = torch.empty((batch, n_splits * width), device=hidden.device, dtype=torch.int64)
    if batch > 0:
        _top_candidates_kernel[(triton.cdiv(batch, BLOCK_B), n_splits)](
            hidden, item_weight, candidates, batch, n_items, hidden_size, per_split, n_splits,
            BLOCK_B=BLOCK_B, WIDTH=width, BLOCK_H=_block_h(hidden_size),
            num_warps=4 if width * _block_h(hidden_size) <= 4096 else 8,
            # the widest tiles: no software pipelining of the item loads (two stages of a 256 x 64
            # float32 tile and the sort's scratch were 167,936 B of shared memory on sm_80, Triton 3.6)
            num_stages=1 if width * _block_h(hidden_size) > 8192 else 2)
    if exclude is not None and exclude.shape[1] > 0:
        # the k + M best, then the excluded ones out (0 entries of exclude ignored)
        wanted = min(k + exclude.shape[1], candidates.shape[1])
        candidates = candidates.topk(wanted, dim=1, sorted=False).values
        exclude = exclude.to(torch.int64)
        hit = (item_ids(candidates)[:, :, None] == exclude[:, None, :]) & (exclude[:, None, :] != 0)
        candidates = candidates.masked_fill_(hit.any(dim=2), LEFT_OUT)
    best = candidates.topk(k, dim=1, sorted=True).values
    return result_from_keys(best, torch.float32)


KERNEL_DTYPES = (torch.float32, torch.bfloat16, torch.float16)


def unsupported(hidden, item_weight, k, exclude):
    """None when the kernel above takes the call, else why not."""
    for name, tensor in (("hidden", hidden), ("item_weight", item_weight)):
        if tensor.dtype not in KERNEL_DTYPES:
            return f"{name}: the Triton kernel takes float32, bfloat16 or float16, got {tensor.dtype}"
    excluded = 0 if exclude is None else exclude.shape[1]
    width = candidate_width(k, exclude)
    if width > MAX_WIDTH:
        return (f"k + exclude's columns = {k} + {excluded} = {k + excluded} is over the kernel's {MAX_WIDTH} "
                f"candidates per row (the reference takes any k)")
    if width * _block_h(hidden.shape[1]) > MAX_TILE:
        return (f"an item tile of {width} candidates x hidden {hidden.shape[1]} (padded to "
                f"{_block_h(hidden.shape[1])}) is over the kernel's {MAX_TILE} elements in registers "
                f"(k + exclude's columns must be at most {MAX_TILE // _block_h(hidden.shape[1])} at this width)")
    return None
