"""Top-k recommendation without the (batch, n_items) score matrix: a streaming top-k over
item tiles (torch GEMMs and ``torch.topk``), memory O(batch x (tile + k))."""

import torch

from .linear_cross_entropy import ITEM_TILE, accumulation_dtype

# Each candidate is one int64 key, ordered as (score descending, item id ascending): the
# score's float32 bits mapped to an order-preserving int32 in the high half, the complement
# of the id in the low half. topk over keys is then exact and its ties are settled by id.
_LOW = 0xFFFFFFFF
LEFT_OUT = torch.iinfo(torch.int64).min   # the key of the padding item and excluded items
NAN_ORDER = 0x7FFFFFFF                    # the ordered bits of a NaN score (a NaN's bit pattern)


def _ordered_bits(scores: torch.Tensor) -> torch.Tensor:
    """float32 (B, T) -> int64 (B, T) ordered as the floats (-0.0 as 0.0; every NaN, whatever its
    sign bit, as the largest value 0x7FFFFFFF, above +inf, as topk puts it). One int64 buffer,
    the rest in place: a negative float's bits count down, so they are flipped below the sign
    (x ^ 0x7FFFFFFF), which the arithmetic shift selects. ``asrec.kernels.top_items`` maps the
    same way."""
    bits = (scores + 0.0).view(torch.int32).to(torch.int64)
    bits = bits.bitwise_xor_(bits.bitwise_right_shift(31).bitwise_and_(0x7FFFFFFF))
    return bits.masked_fill_(scores.isnan(), NAN_ORDER)


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


def _keys(scores: torch.Tensor, ids: torch.Tensor, left_out: torch.Tensor) -> torch.Tensor:
    """int64 keys of (scores, ids) of one shape; LEFT_OUT where ``left_out``."""
    keys = _ordered_bits(scores).bitwise_left_shift_(32).bitwise_or_(_LOW - ids)
    return keys.masked_fill_(left_out, LEFT_OUT)


def _tile_best(scores: torch.Tensor, left_out: torch.Tensor, start: int, k: int) -> torch.Tensor:
    """The keys of a (B, T) tile's k best items (ids start..start+T-1; left-out ones at -inf).

    A float topk picks them; where a row's k-th score is shared by an item left outside the
    k (a tie at the boundary, which float topk settles arbitrarily), the whole tile is ranked
    by its keys instead, so the lower id always wins. Scores tie rarely, and that check is one
    comparison pass, so the exact path costs little on real scores (and one host read per tile).
    A traced graph (torch.compile, torch.export) cannot branch on that read: it always takes
    the exact path, which gives the same result."""
    tracing = torch.compiler.is_compiling()
    if not tracing:
        values, columns = scores.topk(k, dim=1, sorted=False)
        kth = values.min(dim=1, keepdim=True).values
    # a NaN k-th score compares false with everything: NaNs tie among themselves, so exact too
    if tracing or bool(((scores >= kth).sum(dim=1) > k).any() or kth.isnan().any()):
        ids = torch.arange(start, start + scores.shape[1], device=scores.device, dtype=torch.int64)
        return _keys(scores, ids, left_out).topk(k, dim=1, sorted=False).values
    return _keys(values, columns + start, left_out.gather(1, columns))


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
            left_out = _left_out_mask(exclude, start, stop, batch, h.device)
            if start == 0:
                left_out[:, 0] = True
            scores.masked_fill_(left_out, float("-inf"))
            tile_best = _tile_best(scores, left_out, start, min(k, stop - start))
            merged = torch.cat([best, tile_best], dim=1)
            best = merged.topk(min(k, merged.shape[1]), dim=1, sorted=True).values
    return result_from_keys(best, dtype)


def result_from_keys(best: torch.Tensor, dtype: torch.dtype) -> tuple:
    """(B, k) int64 keys, best first -> (scores (B, k) float32 (float64 for a float64 ``dtype``),
    item ids (B, k) int64), -inf and -1 where a key is LEFT_OUT."""
    scores = _scores_of(best >> 32)
    ids = _LOW - (best & _LOW)
    kept = best != LEFT_OUT
    scores = torch.where(kept, scores, torch.full_like(scores, float("-inf")))
    return scores.to(dtype if dtype == torch.float64 else torch.float32), torch.where(kept, ids, -1)


def item_ids(keys: torch.Tensor) -> torch.Tensor:
    """The item id of each int64 key (meaningless where the key is LEFT_OUT)."""
    return _LOW - (keys & _LOW)
