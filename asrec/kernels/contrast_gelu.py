"""The seasonal branch's combination, over-smoothing contrast and gelu (SPEC section 4) as
one Triton kernel forward and one backward.

    c   = sum_i scale_i[n] * (filtered_i + conv_i)              i = small, middle, large
    xn  = c / max(||c[n, :]||_2, 1e-12);   q = xn^2
    sim = softmax over hidden (q) + softmax over positions (q)   (all N positions, padded ones too)
    out = gelu(origin * c - contrast * sim * c)

The two softmaxes reduce over different axes, so one program owns one whole sequence
(N x H tile): it reads the six inputs once, writes the activation once (HBM bytes per
sequence: 6 N H reads + N H writes, in the input and output dtypes), and nothing in
between leaves the chip. The unfused path moves about 30 N H elements per sequence
through a dozen kernels.

Backward recomputes the forward from the same six inputs and writes, per sequence, the
gradient of the combination for each branch (``scale_i[n] * dc``, which is both the
filtered and the conv input's gradient) and partial sums for the position scales and the
two scalars; the host sums those over the batch (deterministic).
"""

import torch
import triton
import triton.language as tl

from ._common import INV_SQRT_2PI, SQRT_HALF, whole_sequence_blocks, whole_sequence_unsupported

MAX_SEQUENCE_TILE = 16384



def contrast_blocks(seq_len: int, hidden: int) -> dict:
    return whole_sequence_blocks(seq_len, hidden)


def unsupported_shape(seq_len: int, hidden: int):
    return whole_sequence_unsupported(seq_len, hidden, MAX_SEQUENCE_TILE, "contrast")


@triton.jit
def _branch_sum(filtered_ptr, conv_ptr, scale_ptr, rows, inner, in_bounds, seq_len):
    """(filtered + conv) of one branch and its per-position scale (BLOCK_N, 1)."""
    pair = (tl.load(filtered_ptr + inner, mask=in_bounds, other=0.0).to(tl.float32)
            + tl.load(conv_ptr + inner, mask=in_bounds, other=0.0).to(tl.float32))
    return pair, tl.load(scale_ptr + rows, mask=rows < seq_len, other=0.0).to(tl.float32)


@triton.jit
def _combination(f0_ptr, f1_ptr, f2_ptr, c0_ptr, c1_ptr, c2_ptr, f_base, c_base, scale_ptr, rows, inner, in_bounds,
                 seq_len):
    """The three (filtered + conv) tiles of one sequence and their (BLOCK_N, 1) position scales."""
    pair0, scale0 = _branch_sum(f0_ptr + f_base, c0_ptr + c_base, scale_ptr, rows, inner, in_bounds, seq_len)
    pair1, scale1 = _branch_sum(f1_ptr + f_base, c1_ptr + c_base, scale_ptr + seq_len, rows, inner, in_bounds,
                                seq_len)
    pair2, scale2 = _branch_sum(f2_ptr + f_base, c2_ptr + c_base, scale_ptr + 2 * seq_len, rows, inner, in_bounds,
                                seq_len)
    return pair0, pair1, pair2, scale0, scale1, scale2


@triton.jit
def _sequence_combination(f0_ptr, f1_ptr, f2_ptr, c0_ptr, c1_ptr, c2_ptr, f_stride, c_stride, scale_ptr, origin_ptr,
                          contrast_ptr, seq_len, hidden, BLOCK_N: tl.constexpr, BLOCK_H: tl.constexpr):
    """This program's sequence: its index, tile rows and masks, element offsets, the three
    (filtered + conv) pairs and position scales, their combination c, and the two scalars."""
    seq = tl.program_id(0).to(tl.int64)
    rows = tl.arange(0, BLOCK_N)[:, None]
    cols = tl.arange(0, BLOCK_H)[None, :]
    row_ok, col_ok = rows < seq_len, cols < hidden
    in_bounds = row_ok & col_ok
    inner = rows * hidden + cols
    pair0, pair1, pair2, scale0, scale1, scale2 = _combination(
        f0_ptr, f1_ptr, f2_ptr, c0_ptr, c1_ptr, c2_ptr, seq * f_stride, seq * c_stride, scale_ptr, rows, inner,
        in_bounds, seq_len)
    c = scale0 * pair0 + scale1 * pair1 + scale2 * pair2
    origin = tl.load(origin_ptr).to(tl.float32)
    contrast = tl.load(contrast_ptr).to(tl.float32)
    return seq, rows, row_ok, col_ok, in_bounds, inner, pair0, pair1, pair2, scale0, scale1, scale2, c, origin, contrast


@triton.jit
def _contrast_forward(c, row_ok, col_ok, origin, contrast):
    """-> (xn, norm, softmax over hidden, softmax over positions, V) for the tile c."""
    norm = tl.sqrt(tl.sum(c * c, axis=1))[:, None]
    xn = c / tl.maximum(norm, 1e-12)
    q = xn * xn
    q_rows = tl.where(col_ok, q, float("-inf"))
    over_hidden = tl.exp(q_rows - tl.max(q_rows, axis=1)[:, None])
    over_hidden = over_hidden / tl.sum(over_hidden, axis=1)[:, None]
    q_cols = tl.where(row_ok, q, float("-inf"))
    over_positions = tl.exp(q_cols - tl.max(q_cols, axis=0)[None, :])
    over_positions = over_positions / tl.sum(over_positions, axis=0)[None, :]
    value = origin * c - contrast * (over_hidden + over_positions) * c
    return xn, norm, over_hidden, over_positions, value


@triton.jit
def _contrast_gelu_fwd_kernel(
    f0_ptr, f1_ptr, f2_ptr, c0_ptr, c1_ptr, c2_ptr, f_stride, c_stride, scale_ptr, origin_ptr, contrast_ptr,
    out_ptr, seq_len, hidden, BLOCK_N: tl.constexpr, BLOCK_H: tl.constexpr,
):
    (seq, rows, row_ok, col_ok, in_bounds, inner, pair0, pair1, pair2, scale0, scale1, scale2, c, origin,
     contrast) = _sequence_combination(
        f0_ptr, f1_ptr, f2_ptr, c0_ptr, c1_ptr, c2_ptr, f_stride, c_stride, scale_ptr, origin_ptr, contrast_ptr,
        seq_len, hidden, BLOCK_N, BLOCK_H)
    _, _, _, _, value = _contrast_forward(c, row_ok, col_ok, origin, contrast)
    activated = 0.5 * value * (1.0 + tl.erf(value * SQRT_HALF))
    tl.store(out_ptr + seq * seq_len * hidden + inner, activated, mask=in_bounds)


@triton.jit
def _contrast_gelu_bwd_kernel(
    f0_ptr, f1_ptr, f2_ptr, c0_ptr, c1_ptr, c2_ptr, f_stride, c_stride, scale_ptr, origin_ptr, contrast_ptr,
    grad_ptr, dpair_ptr, dscale_part_ptr, dscalar_part_ptr, batch, seq_len, hidden,
    BLOCK_N: tl.constexpr, BLOCK_H: tl.constexpr,
):
    (seq, rows, row_ok, col_ok, in_bounds, inner, pair0, pair1, pair2, scale0, scale1, scale2, c, origin,
     contrast) = _sequence_combination(
        f0_ptr, f1_ptr, f2_ptr, c0_ptr, c1_ptr, c2_ptr, f_stride, c_stride, scale_ptr, origin_ptr, contrast_ptr,
        seq_len, hidden, BLOCK_N, BLOCK_H)
    xn, norm, over_hidden, over_positions, value = _contrast_forward(c, row_ok, col_ok, origin, contrast)
    similarity = over_hidden + over_positions

    grad = tl.load(grad_ptr + seq * seq_len * hidden + inner, mask=in_bounds, other=0.0).to(tl.float32)
    gelu_slope = 0.5 * (1.0 + tl.erf(value * SQRT_HALF)) + value * INV_SQRT_2PI * tl.exp(-0.5 * value * value)
    dvalue = tl.where(in_bounds, grad * gelu_slope, 0.0)
    dsimilarity = -contrast * dvalue * c
    dq = (over_hidden * (dsimilarity - tl.sum(dsimilarity * over_hidden, axis=1)[:, None])
          + over_positions * (dsimilarity - tl.sum(dsimilarity * over_positions, axis=0)[None, :]))
    dq = tl.where(in_bounds, dq, 0.0)
    dxn = 2.0 * xn * dq
    denominator = tl.maximum(norm, 1e-12)
    # F.normalize divides by max(norm, eps): below eps the denominator is a constant
    dnormalised = tl.where(norm > 1e-12, dxn - xn * tl.sum(dxn * xn, axis=1)[:, None], dxn) / denominator
    dc = tl.where(in_bounds, (origin - contrast * similarity) * dvalue + dnormalised, 0.0)

    plane = batch * seq_len * hidden
    out = seq * seq_len * hidden + inner
    tl.store(dpair_ptr + out, scale0 * dc, mask=in_bounds)
    tl.store(dpair_ptr + plane + out, scale1 * dc, mask=in_bounds)
    tl.store(dpair_ptr + 2 * plane + out, scale2 * dc, mask=in_bounds)
    positions = seq * 3 * seq_len + tl.arange(0, BLOCK_N)
    position_ok = tl.arange(0, BLOCK_N) < seq_len
    tl.store(dscale_part_ptr + positions, tl.sum(dc * pair0, axis=1), mask=position_ok)
    tl.store(dscale_part_ptr + seq_len + positions, tl.sum(dc * pair1, axis=1), mask=position_ok)
    tl.store(dscale_part_ptr + 2 * seq_len + positions, tl.sum(dc * pair2, axis=1), mask=position_ok)
    tl.store(dscalar_part_ptr + seq * 2, tl.sum(tl.sum(dvalue * c, axis=1), axis=0))
    tl.store(dscalar_part_ptr + seq * 2 + 1, -tl.sum(tl.sum(dvalue * similarity * c, axis=1), axis=0))


def _strides(filtered, convs):
    """Batch strides of the three filtered and three conv inputs (each must share one)."""
    return filtered[0].stride(0), convs[0].stride(0)


def _contrast_gelu_fwd(filtered: list, convs: list, position_scales, origin_scale, contrast_scale):
    """filtered, convs: three (B, N, H) each, rows contiguous, one batch stride per list ->
    (B, N, H) float32."""
    batch, seq_len, hidden = convs[0].shape
    out = torch.empty((batch, seq_len, hidden), device=convs[0].device, dtype=torch.float32)
    _contrast_gelu_fwd_kernel[(batch,)](*filtered, *convs, *_strides(filtered, convs), position_scales, origin_scale,
                                        contrast_scale, out, seq_len, hidden, **contrast_blocks(seq_len, hidden),
                                        num_warps=16)
    return out


def _contrast_gelu_bwd(filtered: list, convs: list, position_scales, origin_scale, contrast_scale, grad):
    """-> d(pair) (3, B, N, H) float32 (the gradient of filtered_i and of conv_i), position-scale
    partial sums (B, 3, N) and origin/contrast partial sums (B, 2), float32."""
    batch, seq_len, hidden = convs[0].shape
    device = convs[0].device
    dpair = torch.empty((3, batch, seq_len, hidden), device=device, dtype=torch.float32)
    dscale = torch.empty((batch, 3, seq_len), device=device, dtype=torch.float32)
    dscalars = torch.empty((batch, 2), device=device, dtype=torch.float32)
    _contrast_gelu_bwd_kernel[(batch,)](*filtered, *convs, *_strides(filtered, convs), position_scales, origin_scale,
                                        contrast_scale, grad, dpair, dscale, dscalars, batch, seq_len, hidden,
                                        **contrast_blocks(seq_len, hidden), num_warps=16)
    return dpair, dscale, dscalars
