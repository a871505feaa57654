"""Top-k recommendation without the (batch, n_items) score matrix: a streaming top-k over
item tiles (torch GEMMs and ``torch.topk``), memory O(batch x (tile + k))."""

import torch

from .linear_cross_entropy import ITEM_TILE, accumulation_dtype

# Each candidate is one int64 key, ordered as (score descending, item id ascending): the
# score's float32 bits mapped to an order-preserving int32 in the high half, the complement
# of the id in the low half. topk over keys is then exact and its ties are settled by id.
_LOW = 0xFFFFFFFF
LEFT_OUT = torch.iinfo(torch.int64).min   # the key of the padding item and excluded items


def _ordered_bits(scores: torch.Tensor) -> torch.Tensor:
    """float32 (B, T) -> int64 (B, T) ordered as the floats (-0.0 as 0.0; NaN above +inf, as topk puts it)."""
    bits = (scores + 0.0).view(torch.int32).to(torch.int64)
    return torch.where(bits >= 0, bits, bits ^ 0x7FFFFFFF)


def _scores_of(ordered: torch.Tensor) -> torch.Tensor:
    """The inverse of ``_ordered_bits``."""
    bits = torch.where(ordered >= 0, ordered, ordered ^ 0x7FFFFFFF)
    return bits.to(torch.int32).view(torch.float32)


def _left_out_mask(exclude, start: int, stop: int, batch: int, device) -> torch.Tensor:
    """(B, stop - start) bool: the tile's items listed in ``exclude`` (B, M); 0 entries ignored."""
    mask = torch.zeros(batch, stop - start + 1, device=device, dtype=torch.bool)
    if exclude is not None:
        inside = (exclude >= start) & (exclude < stop) & (exclude != 0)
        # entries outside the tile write into a spare last column, dropped below
        mask.scatter_(1, torch.where(inside, exclude - start, stop - start), True)
    return mask[:, :-1]


def top_items_ref(hidden: torch.Tensor, item_weight: torch.Tensor, k: int, exclude=None,
                  tile: int = ITEM_TILE) -> tuple:
    """The k best real items of each row.

    hidden (B, H), item_weight (n_items, H), k in [1, n_items - 1], exclude an optional
    (B, M) integer tensor of item ids to leave out per row (0 entries ignored) -> (scores
    (B, k) float32 (float64 for float64 inputs: then ranked by their float32 rounding),
    item ids (B, k) int64), best first, equal scores in increasing id order. The padding item
    0 is never returned; where fewer than k items are left, the last slots hold score -inf
    and id -1.
    """
    dtype = accumulation_dtype(hidden, item_weight)
    batch, n_items = hidden.shape[0], item_weight.shape[0]
    best = torch.full((batch, 0), LEFT_OUT, device=hidden.device, dtype=torch.int64)
    with torch.autocast(hidden.device.type, enabled=False):
        h = hidden.to(dtype)
        for start in range(0, n_items, tile):
            stop = min(start + tile, n_items)
            scores = (h @ item_weight[start:stop].to(dtype).t()).float()
            ids = torch.arange(start, stop, device=h.device, dtype=torch.int64)
            keys = (_ordered_bits(scores) << 32) | (_LOW - ids)
            left_out = _left_out_mask(exclude, start, stop, batch, h.device)
            if start == 0:
                left_out[:, 0] = True
            keys.masked_fill_(left_out, LEFT_OUT)
            merged = torch.cat([best, keys], dim=1)
            best = merged.topk(min(k, merged.shape[1]), dim=1, sorted=True).values
    scores = _scores_of(best >> 32)
    ids = _LOW - (best & _LOW)
    kept = best != LEFT_OUT
    scores = torch.where(kept, scores, torch.full_like(scores, float("-inf")))
    return scores.to(dtype if dtype == torch.float64 else torch.float32), torch.where(kept, ids, -1)
