"""The model's input stage (SPEC sections 1-2) as one Triton kernel, forward and backward.

    e   = item_weight[item_seq] + position_weight[n]          (gather)
    y   = drop(p)(LN(e))                                      (LayerNorm over hidden, dropout)
    out = fourier_smoothing(y)                                (SPEC 2, the scan of fourier_smoothing.py)

LayerNorm reduces over the hidden axis and the smoothing scans the sequence axis, so one
program owns one whole sequence and walks it in blocks of whole rows (BLOCK_R x BLOCK_H), the
scan carried from block to block (fourier_smoothing.py): the embedding rows are read once, the
smoothed output is written once, and nothing in between touches HBM. (A whole (64, 256) or
(256, 64) sequence tile per live value spilled up to 7 KB of registers per thread.)

Backward walks the rows twice, recomputing e, LN and the dropout mask (counter-based RNG)
from the ids and the tables each time: forward, for the smoothing's parameter gradients (they
need the EMA of y), then in reverse, for the smoothing's dx (a reverse scan), the dropout and
LayerNorm backward, and writes de (batch, seq_len, hidden) and per-sequence partial sums of
the LayerNorm and smoothing parameter gradients. One finish launch then adds those over the
batch in a fixed order (the logit's chain rule applied) and writes the position table's whole
gradient: the sum of de over the batch for the used rows, zeros for the rest (deterministic,
no atomics; one launch where torch's sums, elementwise ops and pad took eight). The scatter of
de into the item table's rows is left to PyTorch's embedding backward.
"""

import torch
import triton
import triton.language as tl

from ._common import _dropout_scale, _layer_norm_rows, whole_sequence_blocks
from .fourier_smoothing import (
    FINISH_BLOCK_B,
    FINISH_BLOCK_C,
    FINISH_WARPS,
    _batch_sum,
    _grad_and_next,
    _smoothing_dx_block,
    _smoothing_fwd_block,
    _smoothing_param_finish,
    _smoothing_param_grads_block,
    _smoothing_params,
    row_block,
)

# next_pow2(seq_len) * next_pow2(hidden) at most: the shapes the kernels are tested and tuned for
# (the row walk itself needs only one (BLOCK_R, BLOCK_H) block of whole rows in registers)
MAX_SEQUENCE_TILE = 16384
NUM_WARPS = 8


def input_blocks(seq_len: int, hidden: int) -> dict:
    """(BLOCK_R, BLOCK_H): rows per step of the walk along the sequence, and all of hidden."""
    block_h = whole_sequence_blocks(seq_len, hidden)["BLOCK_H"]
    return dict(BLOCK_R=row_block(seq_len, block_h), BLOCK_H=block_h)


def unsupported_shape(seq_len: int, hidden: int):
    """None if the kernels take a (seq_len, hidden) sequence, else the reason."""
    blocks = whole_sequence_blocks(seq_len, hidden)
    if blocks["BLOCK_N"] * blocks["BLOCK_H"] > MAX_SEQUENCE_TILE:
        return (f"the Triton input stage takes next_pow2(seq_len) * next_pow2(hidden) <= {MAX_SEQUENCE_TILE}, "
                f"got seq_len={seq_len}, hidden={hidden}")
    return None


@triton.jit
def _embedded_norm(item_seq_ptr, item_weight_ptr, position_weight_ptr, seq, rows, cols, seq_len, hidden, eps):
    """LayerNorm-normalised (before weight/bias) embedding sums of a block of rows, and in_bounds."""
    in_bounds = (rows < seq_len) & (cols < hidden)
    ids = tl.load(item_seq_ptr + seq * seq_len + rows, mask=rows < seq_len, other=0).to(tl.int64)
    embedded = (tl.load(item_weight_ptr + ids * hidden + cols, mask=in_bounds, other=0.0).to(tl.float32)
                + tl.load(position_weight_ptr + rows * hidden + cols, mask=in_bounds, other=0.0).to(tl.float32))
    normed, rstd = _layer_norm_rows(embedded, cols < hidden, hidden, eps)
    return tl.where(in_bounds, normed, 0.0), rstd, in_bounds


@triton.jit
def _smoothing_input(item_seq_ptr, item_weight_ptr, position_weight_ptr, norm_weight_ptr, norm_bias_ptr, seq, rows,
                     cols, seq_len, hidden, eps, rng_ptr, dropout_p, TRAINING: tl.constexpr):
    """The smoothing's input ``y = drop(LN(e))`` for a block of rows, with what backward reuses:
    (y, normalised e, rstd, dropout factors, LN weight, in_bounds, element offsets)."""
    normed, rstd, in_bounds = _embedded_norm(item_seq_ptr, item_weight_ptr, position_weight_ptr, seq, rows, cols,
                                             seq_len, hidden, eps)
    offsets = seq * seq_len * hidden + rows * hidden + cols
    col_ok = cols < hidden
    norm_weight = tl.load(norm_weight_ptr + cols, mask=col_ok, other=0.0).to(tl.float32)
    norm_bias = tl.load(norm_bias_ptr + cols, mask=col_ok, other=0.0).to(tl.float32)
    y = tl.where(in_bounds, normed * norm_weight + norm_bias, 0.0)
    drop = tl.full(y.shape, 1.0, tl.float32)  # a tensor either way: one return type
    if TRAINING:
        drop = _dropout_scale(rng_ptr, offsets, dropout_p)
        y = y * drop
    return y, normed, rstd, drop, norm_weight, in_bounds, offsets


@triton.jit
def _input_stage_fwd_kernel(
    item_seq_ptr, item_weight_ptr, position_weight_ptr, norm_weight_ptr, norm_bias_ptr,
    logit_ptr, level_ptr, scale_ptr, out_ptr,
    seq_len, hidden, eps, rng_ptr, dropout_p, inv_sqrt_len, mix,
    TRAINING: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_H: tl.constexpr,
):
    seq = tl.program_id(0).to(tl.int64)
    cols = tl.arange(0, BLOCK_H)[None, :]
    alpha, level, scale = _smoothing_params(logit_ptr, level_ptr, scale_ptr, cols, hidden)
    carry = tl.zeros((1, BLOCK_H), tl.float32)
    for start in range(0, seq_len, BLOCK_R):
        rows = start + tl.arange(0, BLOCK_R)[:, None]
        y, _, _, _, _, in_bounds, offsets = _smoothing_input(
            item_seq_ptr, item_weight_ptr, position_weight_ptr, norm_weight_ptr, norm_bias_ptr, seq, rows, cols,
            seq_len, hidden, eps, rng_ptr, dropout_p, TRAINING)
        out, carry = _smoothing_fwd_block(y, rows, start, carry, alpha, level, scale, inv_sqrt_len, mix, BLOCK_R)
        tl.store(out_ptr + offsets, out, mask=in_bounds)


@triton.jit
def _input_stage_bwd_kernel(
    item_seq_ptr, item_weight_ptr, position_weight_ptr, norm_weight_ptr, norm_bias_ptr,
    logit_ptr, level_ptr, scale_ptr, grad_ptr, grad2_ptr,
    dembedded_ptr, part_ptr, part_stride,
    seq_len, hidden, eps, rng_ptr, dropout_p, inv_sqrt_len, mix,
    TRAINING: tl.constexpr, HAS_GRAD2: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_H: tl.constexpr,
):
    # HAS_GRAD2: the output has a second handle (the layers' residual path) whose gradient
    # grad2 is added here, on load, instead of by an autograd add kernel
    seq = tl.program_id(0).to(tl.int64)
    cols = tl.arange(0, BLOCK_H)[None, :]
    col_ok = cols < hidden
    alpha, level, scale = _smoothing_params(logit_ptr, level_ptr, scale_ptr, cols, hidden)
    dalpha = tl.zeros((1, BLOCK_H), tl.float32)
    dlevel = tl.zeros((1, BLOCK_H), tl.float32)
    dscale = tl.zeros((1, BLOCK_H), tl.float32)
    ema_carry = tl.zeros((1, BLOCK_H), tl.float32)
    twice_carry = tl.zeros((1, BLOCK_H), tl.float32)
    for start in range(0, seq_len, BLOCK_R):
        rows = start + tl.arange(0, BLOCK_R)[:, None]
        y, _, _, _, _, _, offsets = _smoothing_input(
            item_seq_ptr, item_weight_ptr, position_weight_ptr, norm_weight_ptr, norm_bias_ptr, seq, rows, cols,
            seq_len, hidden, eps, rng_ptr, dropout_p, TRAINING)
        grad, grad_next = _grad_and_next(grad_ptr, offsets, rows, col_ok, seq_len, hidden)
        if HAS_GRAD2:
            grad2, grad2_next = _grad_and_next(grad2_ptr, offsets, rows, col_ok, seq_len, hidden)
            grad += grad2
            grad_next += grad2_next
        block_dalpha, block_dlevel, block_dscale, ema_carry, twice_carry = _smoothing_param_grads_block(
            y, grad, grad_next, rows, start, ema_carry, twice_carry, alpha, level, scale, inv_sqrt_len, mix, BLOCK_R)
        dalpha += block_dalpha
        dlevel += block_dlevel
        dscale += block_dscale
    dnorm_weight = tl.zeros((1, BLOCK_H), tl.float32)
    dnorm_bias = tl.zeros((1, BLOCK_H), tl.float32)
    carry = tl.zeros((1, BLOCK_H), tl.float32)
    last = tl.cdiv(seq_len, BLOCK_R) - 1
    for step in range(0, last + 1):
        start = (last - step) * BLOCK_R
        rows = start + tl.arange(0, BLOCK_R)[:, None]
        _, normed, rstd, drop, norm_weight, in_bounds, offsets = _smoothing_input(
            item_seq_ptr, item_weight_ptr, position_weight_ptr, norm_weight_ptr, norm_bias_ptr, seq, rows, cols,
            seq_len, hidden, eps, rng_ptr, dropout_p, TRAINING)
        grad = tl.load(grad_ptr + offsets, mask=in_bounds, other=0.0).to(tl.float32)
        if HAS_GRAD2:
            grad += tl.load(grad2_ptr + offsets, mask=in_bounds, other=0.0).to(tl.float32)
        dy, carry = _smoothing_dx_block(grad, rows, start, carry, alpha, scale, inv_sqrt_len, mix, BLOCK_R)
        dy = dy * drop
        dy = tl.where(in_bounds, dy, 0.0)
        dnormed = dy * norm_weight
        dembedded = rstd * (dnormed - tl.sum(dnormed, axis=1)[:, None] / hidden
                            - normed * (tl.sum(dnormed * normed, axis=1)[:, None] / hidden))
        tl.store(dembedded_ptr + offsets, dembedded, mask=in_bounds)
        dnorm_weight += tl.sum(dy * normed, axis=0)[None, :]
        dnorm_bias += tl.sum(dy, axis=0)[None, :]
    part = seq * hidden + cols
    tl.store(part_ptr + part, dalpha, mask=col_ok)
    tl.store(part_ptr + part_stride + part, dlevel, mask=col_ok)
    tl.store(part_ptr + 2 * part_stride + part, dscale, mask=col_ok)
    tl.store(part_ptr + 3 * part_stride + part, dnorm_weight, mask=col_ok)
    tl.store(part_ptr + 4 * part_stride + part, dnorm_bias, mask=col_ok)


# the backward's partials: d alpha, d init_level, d smoothed_scale, d LN weight, d LN bias
PARAM_GROUPS = 5
_PARAM_GROUPS = tl.constexpr(PARAM_GROUPS)  # what a compiled kernel may read


@triton.jit
def _input_stage_finish_kernel(
    dembedded_ptr, part_ptr, logit_ptr, dlogit_ptr, sums_ptr, dposition_ptr,
    batch, seq_len, n_positions, hidden,
    BLOCK_B: tl.constexpr, BLOCK_C: tl.constexpr,
):
    """Programs 0..4: one parameter group of part (5, batch, hidden) each (d logit, then the
    (4, hidden) sums); the rest: BLOCK_C entries each of the flat (n_positions * hidden)
    position gradient, ``sum_b de[b]`` for rows < seq_len and 0 for the unused rows."""
    program = tl.program_id(0)
    if program < _PARAM_GROUPS:
        _smoothing_param_finish(part_ptr, logit_ptr, dlogit_ptr, sums_ptr, program, batch, hidden, BLOCK_B, BLOCK_C)
    else:
        columns = (program - _PARAM_GROUPS).to(tl.int64) * BLOCK_C + tl.arange(0, BLOCK_C)[None, :]
        used = seq_len * hidden
        dposition = _batch_sum(dembedded_ptr, batch, used, columns, columns < used, BLOCK_B)
        tl.store(dposition_ptr + columns, dposition, mask=columns < n_positions * hidden)


def _input_stage_finish(dembedded, parts, smoothing_logit, n_positions: int):
    """dembedded: (B, N, H) and parts: (5, B, H) float32 -> d smoothing_logit (1,), the (4, H) sums
    of parts[1:] over the batch, and the position table's gradient (n_positions, H), in one launch."""
    batch, seq_len, hidden = dembedded.shape
    dlogit = torch.empty((1,), device=dembedded.device, dtype=torch.float32)
    sums = torch.empty((PARAM_GROUPS - 1, hidden), device=dembedded.device, dtype=torch.float32)
    dposition = torch.empty((n_positions, hidden), device=dembedded.device, dtype=torch.float32)
    grid = (PARAM_GROUPS + triton.cdiv(n_positions * hidden, FINISH_BLOCK_C),)
    _input_stage_finish_kernel[grid](dembedded, parts, smoothing_logit, dlogit, sums, dposition,
                                     batch, seq_len, n_positions, hidden,
                                     BLOCK_B=FINISH_BLOCK_B, BLOCK_C=FINISH_BLOCK_C, num_warps=FINISH_WARPS)
    return dlogit, sums, dposition


def _input_stage_fwd(item_seq, item_weight, position_weight, norm_weight, norm_bias, smoothing_logit,
                     init_level, smoothed_scale, eps: float, rng: torch.Tensor, dropout_p: float, training: bool,
                     inv_sqrt_len: float, mix: float):
    """item_seq: (B, N) int -> (B, N, H) float32 smoothed embeddings."""
    batch, seq_len = item_seq.shape
    hidden = item_weight.shape[1]
    out = torch.empty((batch, seq_len, hidden), device=item_seq.device, dtype=torch.float32)
    _input_stage_fwd_kernel[(batch,)](
        item_seq, item_weight, position_weight, norm_weight, norm_bias, smoothing_logit, init_level,
        smoothed_scale, out, seq_len, hidden, eps, rng, dropout_p, inv_sqrt_len, mix,
        TRAINING=training, **input_blocks(seq_len, hidden), num_warps=NUM_WARPS)
    return out


def _input_stage_bwd(item_seq, item_weight, position_weight, norm_weight, norm_bias, smoothing_logit,
                     init_level, smoothed_scale, grad, eps: float, rng: torch.Tensor, dropout_p: float, training: bool,
                     inv_sqrt_len: float, mix: float, grad2=None):
    """-> d(embedding sum) (B, N, H) float32 and (5, B, H) per-sequence partial sums of the
    gradients of alpha, init_level, smoothed_scale, the LayerNorm weight and bias
    (``_input_stage_finish`` reduces them). grad2: None, or a second gradient of the output
    (grad's shape and layout), added to grad as it is read."""
    batch, seq_len = item_seq.shape
    hidden = item_weight.shape[1]
    dembedded = torch.empty((batch, seq_len, hidden), device=item_seq.device, dtype=torch.float32)
    parts = torch.empty((5, batch, hidden), device=item_seq.device, dtype=torch.float32)
    _input_stage_bwd_kernel[(batch,)](
        item_seq, item_weight, position_weight, norm_weight, norm_bias, smoothing_logit, init_level,
        smoothed_scale, grad, grad if grad2 is None else grad2, dembedded, parts, batch * hidden, seq_len, hidden,
        eps, rng, dropout_p, inv_sqrt_len, mix, TRAINING=training, HAS_GRAD2=grad2 is not None,
        **input_blocks(seq_len, hidden), num_warps=NUM_WARPS)
    return dembedded, parts
