"""The training loss over a whole catalog without its (batch, n_items) score matrix: the
cross-entropy of ``hidden @ item_weight.T``, computed by torch GEMMs over item tiles.

Forward keeps a running log-sum-exp per row (``logaddexp`` of each tile's); backward
recomputes each tile's scores from the saved log-sum-exp, so memory is O(batch x tile)
beyond the inputs and the weight's gradient. Deterministic: every sum is a GEMM or a
row reduction in a fixed order, no scatter-add.
"""

from typing import Optional

import torch

# items per tile of the ranks and the top-k: at batch 256 a float32 tile is 8 MB
ITEM_TILE = 8192
# the loss's tiles hold this many scores (32 MB in float32): 32,768 items at batch 256. Few,
# wide tiles: each tile is about ten torch ops, and on a loaded 2-core machine each op's thread
# hand-off costs milliseconds (measured at 100,000 items, batch 256, load 15: 5.8 s with
# 8,192-item tiles, 3.1 s with 32,768, 2.3 s materialised); memory stays O(this), whatever the batch
LOSS_TILE_SCORES = 2 ** 23


def loss_tile(batch: int) -> int:
    """Items per tile of the loss at this batch: ``LOSS_TILE_SCORES / batch``, at least 1,024."""
    return max(1024, LOSS_TILE_SCORES // max(1, batch))


def accumulation_dtype(*tensors: torch.Tensor) -> torch.dtype:
    """float64 when an input is float64, else float32 (bf16/fp16 inputs accumulate in float32)."""
    return torch.float64 if any(t.dtype == torch.float64 for t in tensors) else torch.float32


def _tile_scores(hidden: torch.Tensor, item_weight: torch.Tensor, start: int, stop: int) -> torch.Tensor:
    """(B, stop - start) scores of items start..stop-1, in hidden's (accumulation) dtype."""
    return hidden @ item_weight[start:stop].to(hidden.dtype).t()


def _target_column(targets: torch.Tensor, start: int, stop: int) -> tuple:
    """(in this tile (B,) bool, the target's column in the tile, clamped into it (B, 1) int64)."""
    inside = (targets >= start) & (targets < stop)
    return inside, (targets - start).clamp(0, stop - start - 1).view(-1, 1)


class LinearCrossEntropyRef(torch.autograd.Function):
    """Forward: the mean loss and the rows' log-sum-exp; backward: the tiles again."""

    @staticmethod
    def forward(ctx, hidden, item_weight, targets, tile):
        dtype = accumulation_dtype(hidden, item_weight)
        with torch.autocast(hidden.device.type, enabled=False):
            h = hidden.to(dtype)
            lse = torch.full((h.shape[0],), float("-inf"), device=h.device, dtype=dtype)
            picked = torch.full_like(lse, float("nan"))  # a target in no tile (out of range): NaN loss
            for start in range(0, item_weight.shape[0], tile):
                stop = min(start + tile, item_weight.shape[0])
                scores = _tile_scores(h, item_weight, start, stop)
                inside, column = _target_column(targets, start, stop)
                # the target's score as the GEMM computed it (the materialised path's value)
                picked = torch.where(inside, scores.gather(1, column).squeeze(1), picked)
                # the tile's log-sum-exp in place (no second tile-sized buffer)
                top = scores.amax(dim=1, keepdim=True)
                top.masked_fill_(top == float("-inf"), 0.0)   # an all -inf row: log(0) = -inf, not NaN
                tile_lse = scores.sub_(top).exp_().sum(dim=1).log_().add_(top.squeeze(1))
                lse = torch.logaddexp(lse, tile_lse)
            loss = (lse - picked).mean()
        ctx.save_for_backward(hidden, item_weight, targets, lse)
        ctx.tile = tile
        return loss

    @staticmethod
    def backward(ctx, grad):
        hidden, item_weight, targets, lse = ctx.saved_tensors
        dtype = lse.dtype
        with torch.autocast(hidden.device.type, enabled=False):
            h = hidden.to(dtype)
            scale = grad.to(dtype) / h.shape[0]   # d mean / d row loss
            # the scale rides on the small operands (h once, d_hidden at the end), not on each
            # (B, tile) gradient tile: one pass over every tile fewer
            scaled_h = h * scale
            d_hidden = torch.zeros_like(h)
            d_weight = torch.empty(item_weight.shape, device=item_weight.device, dtype=item_weight.dtype)
            # the weight's gradient rows are written by the GEMM itself where the dtypes agree
            direct = item_weight.dtype == dtype and d_weight.is_contiguous()
            for start in range(0, item_weight.shape[0], ctx.tile):
                stop = min(start + ctx.tile, item_weight.shape[0])
                weight = item_weight[start:stop].to(dtype)
                d_scores = (h @ weight.t()).sub_(lse[:, None]).exp_()   # softmax of the tile, in place
                inside, column = _target_column(targets, start, stop)
                d_scores.scatter_(1, column, d_scores.gather(1, column) - inside.to(dtype)[:, None])
                d_hidden.addmm_(d_scores, weight)
                if direct:
                    torch.mm(d_scores.t(), scaled_h, out=d_weight[start:stop])
                else:
                    d_weight[start:stop] = (d_scores.t() @ scaled_h).to(item_weight.dtype)
            d_hidden.mul_(scale)
        return d_hidden.to(hidden.dtype), d_weight, None, None


def linear_cross_entropy_ref(hidden: torch.Tensor, item_weight: torch.Tensor, targets: torch.Tensor,
                             tile: Optional[int] = None) -> torch.Tensor:
    """``F.cross_entropy(hidden @ item_weight.T, targets)`` over item tiles of ``tile`` rows
    (default ``loss_tile(batch)``: 32,768 at batch 256).

    hidden (B, H) float, item_weight (n_items, H) float (every row scored, the padding item
    0 included, as the published loss), targets (B,) integer ids in [0, n_items) -> the mean
    over rows of ``logsumexp(scores[b]) - scores[b, targets[b]]``, a float32 scalar (float64
    for float64 inputs). Gradients reach hidden and item_weight in their dtypes.
    """
    tile = loss_tile(hidden.shape[0]) if tile is None else tile
    return LinearCrossEntropyRef.apply(hidden, item_weight, targets.long(), tile)
