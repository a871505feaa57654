"""Full-ranking evaluation without the (batch, n_items) score matrix: each target's rank
among the real items, counted over item tiles by torch GEMMs (memory O(batch x tile))."""

import torch

from .linear_cross_entropy import ITEM_TILE, accumulation_dtype


def target_ranks_ref(hidden: torch.Tensor, item_weight: torch.Tensor, targets: torch.Tensor,
                     tile: int = ITEM_TILE) -> torch.Tensor:
    """hidden (B, H), item_weight (n_items, H), targets (B,) integer ids in [1, n_items) ->
    (B,) int64: the number of real items (ids 1..n_items-1, never the padding item 0) whose
    score ``hidden[b] @ item_weight[i]`` is strictly higher than the target's, as
    ``asrec.train.metrics.target_ranks`` counts on the whole matrix; ties count in the
    target's favour. -1 for a row with a NaN score anywhere (the padding item's included,
    as the evaluation checks the whole matrix): the caller reports it.

    Scores are computed in float32 (float64 for float64 inputs) tile by tile, the target's
    own score by the same GEMM over the batch's target rows; the target never counts against
    itself. An item whose score equals the target's only up to rounding may fall on either
    side, as it may between two GEMMs of different shapes.
    """
    dtype = accumulation_dtype(hidden, item_weight)
    targets = targets.long()
    n_items = item_weight.shape[0]
    with torch.autocast(hidden.device.type, enabled=False):
        h = hidden.to(dtype)
        # pass 1: the target's score (its tile's GEMM row, one (B, H) x (H, B) product: only
        # the diagonal is kept, so the cost is B dot products, not a catalog pass)
        picked = (h @ item_weight[targets].to(dtype).t()).diagonal()
        higher = torch.zeros(h.shape[0], device=h.device, dtype=torch.int64)
        nan = torch.zeros(h.shape[0], device=h.device, dtype=torch.bool)
        for start in range(0, n_items, tile):
            stop = min(start + tile, n_items)
            scores = h @ item_weight[start:stop].to(dtype).t()
            nan |= scores.isnan().any(dim=1)
            if start == 0:
                scores[:, 0] = float("-inf")   # the padding item never outranks
            # nor does the target itself, whatever the rounding of its two computations
            inside = (targets >= start) & (targets < stop)
            column = (targets - start).clamp(0, stop - start - 1).view(-1, 1)
            scores.scatter_(1, column, torch.where(inside[:, None], float("-inf"), scores.gather(1, column)))
            higher += (scores > picked[:, None]).sum(dim=1)
        return torch.where(nan | picked.isnan(), torch.full_like(higher, -1), higher)
