"""The adaptive filter's keep-mask (SPEC section 3) on the device, in one launch per filter call.

The mask is ``normalised > quantile(normalised)`` where ``normalised = energy / (lower median
of the sequence's N full-spectrum energies + 1e-6)`` and the quantile (linear, torch's
arithmetic) is taken over each group's B * N full-spectrum values (``scope="batch"``) or over
each sequence's N values (``scope="sequence"``). The reference computes it with ~20 torch ops
(a sort of each group's batch among them); here it is two steps:

1. ``_frequency_energy_kernel`` (asrec/kernels/frequency_filter.py), one program per
   sequence, writes the normalised energies (its lower median is found in registers), or with
   ``scope="sequence"`` the finished mask (the quantile is per sequence too).
2. ``_frequency_keep_mask_kernel``, one program per group, selects the group's two order
   statistics around the quantile's rank, interpolates, and overwrites the normalised energies
   with the 0/1 mask in place.

Order statistics on the bits: non-negative float32 values order as their bit patterns read as
int32 keys. Within a sequence (``scope="sequence"``, the lower median) the k-th smallest is
the largest key ``t`` with ``#{x < t} <= k``, built from the top bit down (31 counting steps
over values in registers). Over a group's batch (values in memory) it is a radix select: one
pass per 8-bit digit from the top counts the values of each digit (``tl.histogram``) among
those matching the digits found so far, and takes the digit where the running count passes
the remaining rank: 4 passes over the group's values (the bisection took 31), then one for
the next order statistic and one writing the mask: 6 in all, where there were 33.
Half-spectrum bin ``k`` stands for full bins ``k`` and ``N - k``, so each value counts with its
multiplicity (1 for bins 0 and N/2, 2 otherwise): the same multiset the reference builds by
mirroring. Counts are integers and the selected values are inputs, so the result is exact,
independent of the summation order: the same bits as the reference's ``kthvalue`` and
``sort``. NaN (no valid energy gives one) sorts last, as in torch.
"""

import triton
import triton.language as tl

from ._common import _lerp

# the reference's median guard, energy / (median + MEDIAN_EPS)
MEDIAN_EPS = tl.constexpr(1e-6)
NAN_KEY = tl.constexpr(0x7FFFFFFF)  # above every non-negative float's key, +inf's included
# register budget of one (BLOCK_B, BLOCK_K) tile of the group kernel
MASK_TILE = 4096
# the group kernel's radix select: keys (31 bits) in DIGITS digits of RADIX_BITS bits, top first
# (bits 24..30, 16..23, 8..15, 0..7), one counting pass over the group's values each
RADIX_BITS = tl.constexpr(8)
RADIX_BINS = tl.constexpr(256)
DIGITS = tl.constexpr(4)


@triton.jit
def _order_keys(values):
    """float32 values >= 0 (or NaN) -> int32 keys in the same order (NaN last)."""
    return tl.where(values != values, NAN_KEY, values.to(tl.int32, bitcast=True))


@triton.jit
def _bin_multiplicity(bins_idx, seq_len: tl.constexpr, bins: tl.constexpr):
    """How many full-spectrum bins half-spectrum bin ``bins_idx`` stands for (0 past ``bins``)."""
    single = (bins_idx == 0) | (2 * bins_idx == seq_len)
    return tl.where(bins_idx < bins, tl.where(single, 1, 2), 0)


@triton.jit
def _row_order_statistic(keys, counts, rank):
    """Key of the ``rank``-th smallest (0-based) value of each row, counting multiplicities.

    keys: (R, C) int32 from ``_order_keys``; counts: (R, C) int32 multiplicities (0 = absent);
    rank: (R, 1) int32 -> (R, 1) int32.
    """
    found = tl.zeros_like(rank)
    for step in range(31):
        trial = found | (1 << (30 - step))
        below = tl.sum(tl.where(keys < trial, counts, 0), axis=1)[:, None]
        found = tl.where(below <= rank, trial, found)
    return found


@triton.jit
def _row_next_order_statistic(keys, counts, found, rank):
    """Key of the ``rank``-th smallest of each row given ``found``, the key of a smaller or
    equal rank: ``found`` if enough copies of it reach ``rank``, else the next larger key.
    All (R, ·) int32 as in ``_row_order_statistic``."""
    at_most = tl.sum(tl.where(keys <= found, counts, 0), axis=1)[:, None]
    larger = tl.min(tl.where((keys > found) & (counts > 0), keys, NAN_KEY), axis=1)[:, None]
    return tl.where(at_most > rank, found, larger)


@triton.jit
def _quantile_ranks(threshold_ptr, count):
    """torch.quantile's rank ``q * (count - 1)`` in float32 and its floor and ceiling order
    statistics, clamped to [0, count - 1] (as asrec.reference.frequency_filter._quantile_ranks)."""
    rank = tl.load(threshold_ptr).to(tl.float32) * (count - 1)
    below = tl.minimum(tl.maximum(tl.floor(rank).to(tl.int32), 0), count - 1)
    above = tl.minimum(tl.maximum(tl.ceil(rank).to(tl.int32), 0), count - 1)
    return rank, below, above


@triton.jit
def _normalised_energy_rows(energy, bins_idx, seq_len: tl.constexpr, bins: tl.constexpr):
    """(R, BLOCK_K) energies of R sequences -> the same divided by each sequence's lower median
    over its N full-spectrum energies plus MEDIAN_EPS (correctly rounded, as torch divides)."""
    counts = _bin_multiplicity(bins_idx, seq_len, bins) + tl.zeros(energy.shape, tl.int32)
    middle = tl.zeros((energy.shape[0], 1), tl.int32) + (seq_len - 1) // 2
    median = _row_order_statistic(_order_keys(energy), counts, middle).to(tl.float32, bitcast=True)
    return tl.math.div_rn(energy, median + MEDIAN_EPS)


@triton.jit
def _sequence_keep_rows(normalised, bins_idx, threshold_ptr, seq_len: tl.constexpr, bins: tl.constexpr):
    """``scope="sequence"``: (R, BLOCK_K) normalised energies -> 1.0 where above their own
    sequence's quantile, else 0.0."""
    counts = _bin_multiplicity(bins_idx, seq_len, bins) + tl.zeros(normalised.shape, tl.int32)
    keys = _order_keys(normalised)
    rank, below, above = _quantile_ranks(threshold_ptr, seq_len)
    below_rows = tl.zeros((normalised.shape[0], 1), tl.int32) + below
    low = _row_order_statistic(keys, counts, below_rows)
    high = _row_next_order_statistic(keys, counts, low, below_rows + (above - below))
    cutoff = _lerp(low.to(tl.float32, bitcast=True), high.to(tl.float32, bitcast=True),
                   rank - below.to(tl.float32))
    return tl.where(normalised > cutoff, 1.0, 0.0)


@triton.jit
def _group_tile(values_ptr, start, group, batch, row_stride, group_stride, bins_idx, row_idx,
                seq_len: tl.constexpr, bins: tl.constexpr):
    """Rows ``start..`` of one group's (batch, bins) slice of a buffer whose sequence ``(b, g)``
    is row ``b * row_stride + g * group_stride``: (offsets, in_bounds, keys, multiplicities, values)."""
    rows = start + row_idx
    offsets = (rows * row_stride + group * group_stride) * bins + bins_idx
    in_bounds = (rows < batch) & (bins_idx < bins)
    values = tl.load(values_ptr + offsets, mask=in_bounds, other=0.0)
    counts = tl.where(rows < batch, _bin_multiplicity(bins_idx, seq_len, bins), 0)
    return offsets, in_bounds, _order_keys(values), counts, values


@triton.jit
def _digit_counts(values_ptr, prefix, DIGIT: tl.constexpr, group, batch, row_stride, group_stride, bins_idx,
                  row_idx, seq_len: tl.constexpr, bins: tl.constexpr, BLOCK_B: tl.constexpr, BLOCK_K: tl.constexpr):
    """(RADIX_BINS,) int32: how many of the group's values (with multiplicities) have each value
    of digit DIGIT (bits ``DIGIT_SHIFT[DIGIT]`` up, RADIX_BITS wide) among those whose higher
    bits are ``prefix``'s (every value for the top digit)."""
    shift: tl.constexpr = 24 - RADIX_BITS * DIGIT
    counts = tl.zeros((RADIX_BINS,), tl.int32)
    for start in range(0, batch, BLOCK_B):
        _, _, keys, multiplicity, _ = _group_tile(values_ptr, start, group, batch, row_stride, group_stride,
                                                  bins_idx, row_idx, seq_len, bins)
        present = multiplicity > 0
        if DIGIT > 0:  # keys are 31 bits: the top digit (bits 24..30) has no higher bits to match
            present = present & ((keys >> (shift + RADIX_BITS)) == (prefix >> (shift + RADIX_BITS)))
        digits = tl.reshape((keys >> shift) & (RADIX_BINS - 1), (BLOCK_B * BLOCK_K,))
        once = tl.reshape(present, (BLOCK_B * BLOCK_K,))
        twice = tl.reshape(present & (multiplicity == 2), (BLOCK_B * BLOCK_K,))
        counts += tl.histogram(digits, RADIX_BINS, mask=once) + tl.histogram(digits, RADIX_BINS, mask=twice)
    return counts


@triton.jit
def _frequency_keep_mask_kernel(values_ptr, threshold_ptr, batch, row_stride, group_stride, seq_len: tl.constexpr,
                                bins: tl.constexpr, BLOCK_B: tl.constexpr, BLOCK_K: tl.constexpr):
    """``scope="batch"``, one program per group: values (batch * groups, bins) float32 normalised
    energies (sequence ``(b, g)`` at row ``b * row_stride + g * group_stride``), overwritten with
    the 0/1 keep-mask (each element is read by the thread that writes it, and only after every
    read of the group's values)."""
    group = tl.program_id(0)
    bins_idx = tl.arange(0, BLOCK_K)[None, :]
    row_idx = tl.arange(0, BLOCK_B)[:, None]
    rank, below, above = _quantile_ranks(threshold_ptr, batch * seq_len)
    # the below-th smallest of the group's batch * seq_len keys, RADIX_BITS bits a pass from the
    # top (radix select): the digit whose running count first passes the remaining rank, then
    # that rank within the values of that digit (4 passes where bit-by-bisection took 31)
    low = below * 0
    remaining = below
    digit_values = tl.arange(0, RADIX_BINS)
    for digit in tl.static_range(DIGITS):
        # (a name of its own: Triton types a name once per scope, and the loops below reuse ``counts``)
        per_digit = _digit_counts(values_ptr, low, digit, group, batch, row_stride, group_stride, bins_idx, row_idx,
                                  seq_len, bins, BLOCK_B, BLOCK_K)
        chosen = tl.sum((tl.cumsum(per_digit, 0) <= remaining).to(tl.int32))
        remaining -= tl.sum(tl.where(digit_values < chosen, per_digit, 0))
        low = low | (chosen << (24 - RADIX_BITS * digit))
    # the above-th: low again if enough copies of it reach that rank, else the next larger value
    at_most = tl.zeros((BLOCK_B, BLOCK_K), tl.int32)
    larger = tl.full((BLOCK_B, BLOCK_K), NAN_KEY, tl.int32)
    for start in range(0, batch, BLOCK_B):
        _, _, keys, counts, _ = _group_tile(values_ptr, start, group, batch, row_stride, group_stride,
                                            bins_idx, row_idx, seq_len, bins)
        at_most += tl.where(keys <= low, counts, 0)
        larger = tl.minimum(larger, tl.where((keys > low) & (counts > 0), keys, NAN_KEY))
    high = tl.where(tl.sum(at_most) > above, low, tl.min(larger))
    cutoff = _lerp(low.to(tl.float32, bitcast=True), high.to(tl.float32, bitcast=True), rank - below.to(tl.float32))
    for start in range(0, batch, BLOCK_B):
        offsets, in_bounds, _, _, values = _group_tile(values_ptr, start, group, batch, row_stride,
                                                       group_stride, bins_idx, row_idx, seq_len, bins)
        tl.store(values_ptr + offsets, tl.where(values > cutoff, 1.0, 0.0), mask=in_bounds)


def keep_mask_blocks(batch: int, bins: int) -> dict:
    """(BLOCK_B, BLOCK_K) of the group kernel: whole spectra, as many rows as MASK_TILE allows."""
    block_k = triton.next_power_of_2(bins)
    return dict(BLOCK_B=max(1, min(triton.next_power_of_2(batch), MASK_TILE // block_k)), BLOCK_K=block_k)


def _frequency_keep_mask(values, batch: int, groups: int, threshold, seq_len: int, group_major: bool = False):
    """values: (batch * groups, N//2 + 1) float32 normalised energies, rows ``b * groups + g`` (or
    ``g * batch + b`` with ``group_major``), overwritten with the batch-scope 0/1 keep-mask and
    returned; threshold: one-element tensor."""
    row_stride, group_stride = (1, batch) if group_major else (groups, 1)
    _frequency_keep_mask_kernel[(groups,)](values, threshold, batch, row_stride, group_stride, seq_len=seq_len,
                                           bins=seq_len // 2 + 1, **keep_mask_blocks(batch, seq_len // 2 + 1),
                                           num_warps=8)
    return values
