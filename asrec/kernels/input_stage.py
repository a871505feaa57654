"""The model's input stage (SPEC sections 1-2) as one Triton kernel, forward and backward.

    e   = item_weight[item_seq] + position_weight[n]          (gather)
    y   = drop(p)(LN(e))                                      (LayerNorm over hidden, dropout)
    out = fourier_smoothing(y)                                (SPEC 2, the scan of fourier_smoothing.py)

LayerNorm reduces over the hidden axis and the smoothing scans the sequence axis, so one
program owns one whole sequence (BLOCK_N x BLOCK_H tile): the embedding rows are read
once, the smoothed output is written once, and nothing in between touches HBM.

Backward recomputes e, LN and the dropout mask (counter-based RNG) from the ids and the
tables, runs the smoothing backward, then the dropout and LayerNorm backward, and writes
de (batch, seq_len, hidden). The scatter of de into the item table's rows is left to
PyTorch's embedding backward, the position table's gradient is the sum of de over the
batch; LayerNorm and smoothing parameter gradients are per-sequence partial sums.
"""

import torch
import triton
import triton.language as tl

from ._common import _dropout_scale
from .fourier_smoothing import _smoothing_bwd_tile, _smoothing_fwd_tile

MAX_SEQUENCE_TILE = 16384  # BLOCK_N * BLOCK_H: one whole sequence in registers


def input_blocks(seq_len: int, hidden: int) -> dict:
    return dict(BLOCK_N=max(16, triton.next_power_of_2(seq_len)), BLOCK_H=max(16, triton.next_power_of_2(hidden)))


def unsupported_shape(seq_len: int, hidden: int):
    """None if the kernels take a (seq_len, hidden) sequence, else the reason."""
    blocks = input_blocks(seq_len, hidden)
    if blocks["BLOCK_N"] * blocks["BLOCK_H"] > MAX_SEQUENCE_TILE:
        return (f"the Triton input stage holds one whole sequence in registers: next_pow2(seq_len) * "
                f"next_pow2(hidden) must be <= {MAX_SEQUENCE_TILE}, got seq_len={seq_len}, hidden={hidden}")
    return None


@triton.jit
def _embedded_norm(item_seq_ptr, item_weight_ptr, position_weight_ptr, seq, rows, cols, seq_len, hidden, eps):
    """LayerNorm-normalised (before weight/bias) embedding sums of one sequence, and in_bounds."""
    in_bounds = (rows < seq_len) & (cols < hidden)
    ids = tl.load(item_seq_ptr + seq * seq_len + rows, mask=rows < seq_len, other=0).to(tl.int64)
    embedded = (tl.load(item_weight_ptr + ids * hidden + cols, mask=in_bounds, other=0.0).to(tl.float32)
                + tl.load(position_weight_ptr + rows * hidden + cols, mask=in_bounds, other=0.0).to(tl.float32))
    mean = tl.sum(embedded, axis=1)[:, None] / hidden
    centred = tl.where(in_bounds, embedded - mean, 0.0)
    rstd = 1.0 / tl.sqrt(tl.sum(centred * centred, axis=1)[:, None] / hidden + eps)
    return centred * rstd, rstd, in_bounds


@triton.jit
def _input_stage_fwd_kernel(
    item_seq_ptr, item_weight_ptr, position_weight_ptr, norm_weight_ptr, norm_bias_ptr,
    logit_ptr, level_ptr, scale_ptr, out_ptr,
    seq_len, hidden, eps, seed, dropout_p, inverse_keep, inv_sqrt_len, mix,
    TRAINING: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_H: tl.constexpr,
):
    seq = tl.program_id(0).to(tl.int64)
    rows = tl.arange(0, BLOCK_N)[:, None]
    cols = tl.arange(0, BLOCK_H)[None, :]
    col_ok = cols < hidden
    normed, rstd, in_bounds = _embedded_norm(item_seq_ptr, item_weight_ptr, position_weight_ptr, seq, rows, cols,
                                             seq_len, hidden, eps)
    offsets = seq * seq_len * hidden + rows * hidden + cols
    norm_weight = tl.load(norm_weight_ptr + cols, mask=col_ok, other=0.0).to(tl.float32)
    norm_bias = tl.load(norm_bias_ptr + cols, mask=col_ok, other=0.0).to(tl.float32)
    y = tl.where(in_bounds, normed * norm_weight + norm_bias, 0.0)
    if TRAINING:
        y = y * _dropout_scale(seed, offsets, dropout_p, inverse_keep)
    alpha = tl.sigmoid(tl.load(logit_ptr).to(tl.float32))
    level = tl.load(level_ptr + cols, mask=col_ok, other=0.0).to(tl.float32)
    scale = tl.load(scale_ptr + cols, mask=col_ok, other=0.0).to(tl.float32)
    out = _smoothing_fwd_tile(y, rows, alpha, level, scale, inv_sqrt_len, mix)
    tl.store(out_ptr + offsets, out, mask=in_bounds)


@triton.jit
def _input_stage_bwd_kernel(
    item_seq_ptr, item_weight_ptr, position_weight_ptr, norm_weight_ptr, norm_bias_ptr,
    logit_ptr, level_ptr, scale_ptr, grad_ptr,
    dembedded_ptr, part_ptr, part_stride,
    seq_len, hidden, eps, seed, dropout_p, inverse_keep, inv_sqrt_len, mix,
    TRAINING: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_H: tl.constexpr,
):
    seq = tl.program_id(0).to(tl.int64)
    rows = tl.arange(0, BLOCK_N)[:, None]
    cols = tl.arange(0, BLOCK_H)[None, :]
    col_ok = cols < hidden
    normed, rstd, in_bounds = _embedded_norm(item_seq_ptr, item_weight_ptr, position_weight_ptr, seq, rows, cols,
                                             seq_len, hidden, eps)
    offsets = seq * seq_len * hidden + rows * hidden + cols
    norm_weight = tl.load(norm_weight_ptr + cols, mask=col_ok, other=0.0).to(tl.float32)
    norm_bias = tl.load(norm_bias_ptr + cols, mask=col_ok, other=0.0).to(tl.float32)
    y = tl.where(in_bounds, normed * norm_weight + norm_bias, 0.0)
    if TRAINING:
        drop = _dropout_scale(seed, offsets, dropout_p, inverse_keep)
        y = y * drop
    alpha = tl.sigmoid(tl.load(logit_ptr).to(tl.float32))
    level = tl.load(level_ptr + cols, mask=col_ok, other=0.0).to(tl.float32)
    scale = tl.load(scale_ptr + cols, mask=col_ok, other=0.0).to(tl.float32)
    grad = tl.load(grad_ptr + offsets, mask=in_bounds, other=0.0).to(tl.float32)
    grad_next = tl.load(grad_ptr + offsets + hidden, mask=(rows + 1 < seq_len) & col_ok, other=0.0).to(tl.float32)
    dy, dalpha, dlevel, dscale = _smoothing_bwd_tile(y, grad, grad_next, rows, alpha, level, scale,
                                                     inv_sqrt_len, mix)
    if TRAINING:
        dy = dy * drop
    dy = tl.where(in_bounds, dy, 0.0)
    dnormed = dy * norm_weight
    dembedded = rstd * (dnormed - tl.sum(dnormed, axis=1)[:, None] / hidden
                        - normed * (tl.sum(dnormed * normed, axis=1)[:, None] / hidden))
    tl.store(dembedded_ptr + offsets, dembedded, mask=in_bounds)
    part = seq * hidden + cols
    tl.store(part_ptr + part, dalpha, mask=col_ok)
    tl.store(part_ptr + part_stride + part, dlevel, mask=col_ok)
    tl.store(part_ptr + 2 * part_stride + part, dscale, mask=col_ok)
    tl.store(part_ptr + 3 * part_stride + part, tl.sum(dy * normed, axis=0)[None, :], mask=col_ok)
    tl.store(part_ptr + 4 * part_stride + part, tl.sum(dy, axis=0)[None, :], mask=col_ok)


def _input_stage_fwd(item_seq, item_weight, position_weight, norm_weight, norm_bias, smoothing_logit,
                     init_level, smoothed_scale, eps: float, seed: int, dropout_p: float, training: bool,
                     inv_sqrt_len: float, mix: float):
    """item_seq: (B, N) int -> (B, N, H) float32 smoothed embeddings."""
    batch, seq_len = item_seq.shape
    hidden = item_weight.shape[1]
    out = torch.empty((batch, seq_len, hidden), device=item_seq.device, dtype=torch.float32)
    inverse_keep = 1.0 / (1.0 - dropout_p) if training else 1.0
    _input_stage_fwd_kernel[(batch,)](
        item_seq, item_weight, position_weight, norm_weight, norm_bias, smoothing_logit, init_level,
        smoothed_scale, out, seq_len, hidden, eps, seed, dropout_p, inverse_keep, inv_sqrt_len, mix,
        TRAINING=training, **input_blocks(seq_len, hidden), num_warps=16)
    return out


def _input_stage_bwd(item_seq, item_weight, position_weight, norm_weight, norm_bias, smoothing_logit,
                     init_level, smoothed_scale, grad, eps: float, seed: int, dropout_p: float, training: bool,
                     inv_sqrt_len: float, mix: float):
    """-> d(embedding sum) (B, N, H) float32 and (5, B, H) per-sequence partial sums of the
    gradients of alpha, init_level, smoothed_scale, the LayerNorm weight and bias."""
    batch, seq_len = item_seq.shape
    hidden = item_weight.shape[1]
    dembedded = torch.empty((batch, seq_len, hidden), device=item_seq.device, dtype=torch.float32)
    parts = torch.empty((5, batch, hidden), device=item_seq.device, dtype=torch.float32)
    inverse_keep = 1.0 / (1.0 - dropout_p) if training else 1.0
    _input_stage_bwd_kernel[(batch,)](
        item_seq, item_weight, position_weight, norm_weight, norm_bias, smoothing_logit, init_level,
        smoothed_scale, grad, dembedded, parts, batch * hidden, seq_len, hidden, eps, seed, dropout_p,
        inverse_keep, inv_sqrt_len, mix, TRAINING=training, **input_blocks(seq_len, hidden), num_warps=16)
    return dembedded, parts
