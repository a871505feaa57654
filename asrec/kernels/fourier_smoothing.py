"""Fourier smoothing (SPEC section 2) as a Triton scan, forward and backward.

The published module computes, through an FFT cross-correlation, the causal EMA

    e[n] = alpha * e[n-1] + x[n]           s[n] = (1 - alpha) / sqrt(L) * e[n]
    out  = mix * (alpha^(n+1) * init_level + s[n] * smoothed_scale) + (1 - mix) * x

One program owns one sequence and a block of channels and walks the sequence in blocks of
rows, running the recurrence inside a block as a parallel associative scan that starts from
the previous block's last row (the carry): the input is read once and the output written
once, which is the least traffic any algorithm can have (an rfft-filter-irfft or a Toeplitz
GEMM reads and writes the same bytes and does more arithmetic; the scan's rounding is that of
the EMA itself). Row blocks, not the whole sequence, keep a few small tiles in registers (a
whole (256, 32) or (64, 128) sequence tile per live value spilled up to 5 KB per thread).

Backward (``g`` = grad of out, ``G = mix * smoothed_scale * (1 - alpha)/sqrt(L) * g``):

    lam[n]  = sum_{m >= n} alpha^(m-n) G[m]     (reverse scan)
    dx      = (1 - mix) * g + lam
    dalpha  = sum mix*init_level*(n+1)*alpha^n*g - mix*smoothed_scale*g*e/sqrt(L) + lam[n+1]*e[n]
    d init_level = sum mix*alpha^(n+1)*g        d smoothed_scale = sum mix*s*g

The last term of dalpha is summed in the forward direction, as
``sum_n lam[n+1] e[n] = sum_n G[n+1] f[n]`` with ``f[n] = sum_{k <= n} alpha^(n-k) e[k]`` (the
scan of e), so backward is two passes over the rows: forward (e, f and the parameter sums),
then reverse (lam and dx). ``G[n+1]`` is read from memory one row on.
Per-channel sums over the sequence are written per (sequence, channel); one finish launch
(``_fourier_smoothing_finish_kernel``) adds them over the batch in a fixed order and applies
the logit's chain rule ``d logit = alpha (1 - alpha) sum d alpha``: deterministic (no
atomics), and one launch where torch's sums and elementwise ops took seven.
"""

import torch
import triton
import triton.language as tl

from ._common import _ema_scan

ROW_TILE = 4096  # elements of one (BLOCK_R, BLOCK_H) register tile
# the finish kernels' (BLOCK_B, BLOCK_C) tile: batch rows added per step, columns per program
FINISH_BLOCK_B = 32
FINISH_BLOCK_C = 128
FINISH_WARPS = 4
MAX_CHANNELS = 128  # BLOCK_H at most: more channels make more programs, not wider tiles
NUM_WARPS = 8  # 4 spill a little (~80 B per thread) in the backward at (64, 64) tiles


def smoothing_blocks(seq_len: int, hidden: int) -> tuple:
    """(BLOCK_R, BLOCK_H): rows per step of the walk along the sequence, channels per program."""
    block_h = max(16, min(triton.next_power_of_2(hidden), MAX_CHANNELS))
    return row_block(seq_len, block_h), block_h


def row_block(seq_len: int, block_h: int) -> int:
    """Rows per step of a walk along the sequence in (rows, block_h) tiles of ROW_TILE elements."""
    return max(16, min(triton.next_power_of_2(seq_len), ROW_TILE // block_h))


@triton.jit
def _level_decay(rows, log_alpha):
    # alpha^rows for integer rows >= 0; alpha^0 = 1 even when alpha underflowed to 0
    return tl.where(rows == 0, 1.0, tl.exp(rows.to(tl.float32) * log_alpha))


@triton.jit
def _ema_block(values, rows, start, carry, alpha, BLOCK_R: tl.constexpr, REVERSE: tl.constexpr):
    """``e[n] = alpha * e[n - 1] + values[n]`` (``REVERSE``: ``e[n + 1]``) on the rows
    ``start .. start + BLOCK_R - 1`` of a walk along axis 0, continuing from ``carry`` (1, BLOCK_H),
    the e of the row before the block (after it, REVERSE; zero at the sequence's start).
    -> the block's e and the carry for the next block (e of its last row; first, REVERSE)."""
    if REVERSE:
        entry = start + BLOCK_R - 1
        leave = start
    else:
        entry = start
        leave = start + BLOCK_R - 1
    scanned = _ema_scan(values + tl.where(rows == entry, alpha * carry, 0.0), alpha, REVERSE)
    return scanned, tl.sum(tl.where(rows == leave, scanned, 0.0), axis=0)[None, :]


@triton.jit
def _smoothing_fwd_block(x, rows, start, carry, alpha, level, scale, inv_sqrt_len, mix, BLOCK_R: tl.constexpr):
    """SPEC 2 on one (BLOCK_R, BLOCK_H) float32 block of rows (zero past the sequence end) of a
    walk along the sequence; carry: the EMA of the row before. -> (output, the carry on).

    rows: (BLOCK_R, 1) positions; level, scale: (1, BLOCK_H).
    """
    ema, carry = _ema_block(x, rows, start, carry, alpha, BLOCK_R, False)
    smoothed = ema * ((1.0 - alpha) * inv_sqrt_len)
    fsm = _level_decay(rows + 1, tl.log(alpha)) * level + smoothed * scale
    return mix * fsm + (1.0 - mix) * x, carry


@triton.jit
def _smoothing_param_grads_block(x, grad, grad_next, rows, start, ema_carry, twice_carry, alpha, level, scale,
                                 inv_sqrt_len, mix, BLOCK_R: tl.constexpr):
    """The forward pass of the backward on one block of rows: the per-channel sums (1, BLOCK_H)
    of dalpha, d init_level and d smoothed_scale over the block, and the carries on of e and f.

    grad_next: grad shifted up one row (grad[n + 1], zero at the last position).
    """
    ema_factor = (1.0 - alpha) * inv_sqrt_len
    ema, ema_carry = _ema_block(x, rows, start, ema_carry, alpha, BLOCK_R, False)
    twice, twice_carry = _ema_block(ema, rows, start, twice_carry, alpha, BLOCK_R, False)
    decay = _level_decay(rows, tl.log(alpha))  # alpha^n
    dalpha = (mix * level * (rows + 1).to(tl.float32) * decay * grad
              - mix * inv_sqrt_len * scale * grad * ema + mix * ema_factor * scale * grad_next * twice)
    dalpha_sum = tl.sum(dalpha, axis=0)[None, :]
    dlevel_sum = tl.sum(mix * decay * alpha * grad, axis=0)[None, :]
    dscale_sum = tl.sum(mix * ema_factor * ema * grad, axis=0)[None, :]
    return dalpha_sum, dlevel_sum, dscale_sum, ema_carry, twice_carry


@triton.jit
def _smoothing_dx_block(grad, rows, start, carry, alpha, scale, inv_sqrt_len, mix, BLOCK_R: tl.constexpr):
    """The reverse pass of the backward on one block of rows: dx, and the carry on of lam."""
    ema_factor = (1.0 - alpha) * inv_sqrt_len
    adjoint, carry = _ema_block(mix * ema_factor * scale * grad, rows, start, carry, alpha, BLOCK_R, True)
    return (1.0 - mix) * grad + adjoint, carry


@triton.jit
def _smoothing_params(logit_ptr, level_ptr, scale_ptr, cols, hidden):
    """alpha = sigmoid(logit) and the (1, BLOCK_H) init level and smoothed scale, float32."""
    col_ok = cols < hidden
    alpha = tl.sigmoid(tl.load(logit_ptr).to(tl.float32))
    level = tl.load(level_ptr + cols, mask=col_ok, other=0.0).to(tl.float32)
    scale = tl.load(scale_ptr + cols, mask=col_ok, other=0.0).to(tl.float32)
    return alpha, level, scale


@triton.jit
def _grad_and_next(grad_ptr, offsets, rows, col_ok, seq_len, hidden):
    """The output gradient of a tile and the same shifted up one row (zero past the end)."""
    grad = tl.load(grad_ptr + offsets, mask=(rows < seq_len) & col_ok, other=0.0).to(tl.float32)
    grad_next = tl.load(grad_ptr + offsets + hidden, mask=(rows + 1 < seq_len) & col_ok, other=0.0).to(tl.float32)
    return grad, grad_next


@triton.jit
def _fourier_smoothing_fwd_kernel(
    x_ptr, logit_ptr, level_ptr, scale_ptr, out_ptr,
    seq_len, hidden, inv_sqrt_len, mix,
    BLOCK_R: tl.constexpr, BLOCK_H: tl.constexpr,
):
    seq = tl.program_id(0).to(tl.int64)
    cols = tl.program_id(1) * BLOCK_H + tl.arange(0, BLOCK_H)[None, :]
    alpha, level, scale = _smoothing_params(logit_ptr, level_ptr, scale_ptr, cols, hidden)
    carry = tl.zeros((1, BLOCK_H), tl.float32)
    for start in range(0, seq_len, BLOCK_R):
        rows = start + tl.arange(0, BLOCK_R)[:, None]
        in_bounds = (rows < seq_len) & (cols < hidden)
        offsets = seq * seq_len * hidden + rows * hidden + cols
        x = tl.load(x_ptr + offsets, mask=in_bounds, other=0.0).to(tl.float32)
        out, carry = _smoothing_fwd_block(x, rows, start, carry, alpha, level, scale, inv_sqrt_len, mix, BLOCK_R)
        tl.store(out_ptr + offsets, out, mask=in_bounds)


@triton.jit
def _fourier_smoothing_bwd_kernel(
    x_ptr, grad_ptr, logit_ptr, level_ptr, scale_ptr,
    dx_ptr, dalpha_part_ptr, dlevel_part_ptr, dscale_part_ptr,
    seq_len, hidden, inv_sqrt_len, mix,
    BLOCK_R: tl.constexpr, BLOCK_H: tl.constexpr,
):
    seq = tl.program_id(0).to(tl.int64)
    cols = tl.program_id(1) * BLOCK_H + tl.arange(0, BLOCK_H)[None, :]
    col_ok = cols < hidden
    alpha, level, scale = _smoothing_params(logit_ptr, level_ptr, scale_ptr, cols, hidden)
    dalpha = tl.zeros((1, BLOCK_H), tl.float32)
    dlevel = tl.zeros((1, BLOCK_H), tl.float32)
    dscale = tl.zeros((1, BLOCK_H), tl.float32)
    ema_carry = tl.zeros((1, BLOCK_H), tl.float32)
    twice_carry = tl.zeros((1, BLOCK_H), tl.float32)
    for start in range(0, seq_len, BLOCK_R):
        rows = start + tl.arange(0, BLOCK_R)[:, None]
        offsets = seq * seq_len * hidden + rows * hidden + cols
        x = tl.load(x_ptr + offsets, mask=(rows < seq_len) & col_ok, other=0.0).to(tl.float32)
        grad, grad_next = _grad_and_next(grad_ptr, offsets, rows, col_ok, seq_len, hidden)
        block_dalpha, block_dlevel, block_dscale, ema_carry, twice_carry = _smoothing_param_grads_block(
            x, grad, grad_next, rows, start, ema_carry, twice_carry, alpha, level, scale, inv_sqrt_len, mix, BLOCK_R)
        dalpha += block_dalpha
        dlevel += block_dlevel
        dscale += block_dscale
    carry = tl.zeros((1, BLOCK_H), tl.float32)
    last = tl.cdiv(seq_len, BLOCK_R) - 1
    for step in range(0, last + 1):
        start = (last - step) * BLOCK_R
        rows = start + tl.arange(0, BLOCK_R)[:, None]
        in_bounds = (rows < seq_len) & col_ok
        offsets = seq * seq_len * hidden + rows * hidden + cols
        grad = tl.load(grad_ptr + offsets, mask=in_bounds, other=0.0).to(tl.float32)
        dx, carry = _smoothing_dx_block(grad, rows, start, carry, alpha, scale, inv_sqrt_len, mix, BLOCK_R)
        tl.store(dx_ptr + offsets, dx, mask=in_bounds)
    part = seq * hidden + cols
    tl.store(dalpha_part_ptr + part, dalpha, mask=col_ok)
    tl.store(dlevel_part_ptr + part, dlevel, mask=col_ok)
    tl.store(dscale_part_ptr + part, dscale, mask=col_ok)


def _fourier_smoothing_fwd(x, smoothing_logit, init_level, smoothed_scale, mix: float, inv_sqrt_len: float):
    """x: (B, N, H) contiguous -> (B, N, H) float32."""
    batch, seq_len, hidden = x.shape
    out = torch.empty(x.shape, device=x.device, dtype=torch.float32)
    block_r, block_h = smoothing_blocks(seq_len, hidden)
    grid = (batch, triton.cdiv(hidden, block_h))
    _fourier_smoothing_fwd_kernel[grid](x, smoothing_logit, init_level, smoothed_scale, out,
                                        seq_len, hidden, inv_sqrt_len, mix,
                                        BLOCK_R=block_r, BLOCK_H=block_h, num_warps=NUM_WARPS)
    return out


def _fourier_smoothing_bwd(x, grad, smoothing_logit, init_level, smoothed_scale, mix: float, inv_sqrt_len: float):
    """-> dx (B, N, H), d smoothing_logit (1,) and the (2, H) gradients of init_level and
    smoothed_scale, float32: the scan kernel, then the finish kernel over its (3, B, H) partials."""
    batch, seq_len, hidden = x.shape
    dx = torch.empty(x.shape, device=x.device, dtype=torch.float32)
    parts = torch.empty((3, batch, hidden), device=x.device, dtype=torch.float32)
    block_r, block_h = smoothing_blocks(seq_len, hidden)
    grid = (batch, triton.cdiv(hidden, block_h))
    _fourier_smoothing_bwd_kernel[grid](x, grad, smoothing_logit, init_level, smoothed_scale,
                                        dx, parts[0], parts[1], parts[2],
                                        seq_len, hidden, inv_sqrt_len, mix,
                                        BLOCK_R=block_r, BLOCK_H=block_h, num_warps=NUM_WARPS)
    return (dx, *_fourier_smoothing_finish(parts, smoothing_logit))


@triton.jit
def _batch_sum(part_ptr, batch, stride, columns, col_ok, BLOCK_B: tl.constexpr):
    """``sum_b part[b * stride + columns]`` for (1, BLOCK_C) columns (0 where not col_ok), in a
    fixed order: blocks of BLOCK_B rows in order, then a tree across the block (deterministic)."""
    acc = tl.zeros((BLOCK_B, columns.shape[1]), tl.float32)
    for start in range(0, batch, BLOCK_B):
        b = start + tl.arange(0, BLOCK_B)[:, None]
        acc += tl.load(part_ptr + b.to(tl.int64) * stride + columns, mask=(b < batch) & col_ok,
                       other=0.0).to(tl.float32)
    return tl.sum(acc, axis=0)[None, :]


@triton.jit
def _smoothing_param_finish(part_ptr, logit_ptr, dlogit_ptr, sums_ptr, group, batch, hidden,
                            BLOCK_B: tl.constexpr, BLOCK_C: tl.constexpr):
    """One group of the per-sequence parameter partials part (groups, batch, hidden): group 0
    (d alpha) -> ``dlogit[0] = alpha (1 - alpha) sum_{b, h} part[0]``; group g > 0 ->
    ``sums[g - 1, :] = sum_b part[g]``."""
    base = part_ptr + group * batch * hidden
    total = tl.zeros((1, BLOCK_C), tl.float32)
    for start in range(0, hidden, BLOCK_C):
        columns = start + tl.arange(0, BLOCK_C)[None, :]
        col_ok = columns < hidden
        column_sum = _batch_sum(base, batch, hidden, columns, col_ok, BLOCK_B)
        if group == 0:
            total += column_sum
        else:
            tl.store(sums_ptr + (group - 1) * hidden + columns, column_sum, mask=col_ok)
    if group == 0:
        alpha = tl.sigmoid(tl.load(logit_ptr).to(tl.float32))
        tl.store(dlogit_ptr, tl.sum(total) * alpha * (1.0 - alpha))


@triton.jit
def _fourier_smoothing_finish_kernel(part_ptr, logit_ptr, dlogit_ptr, sums_ptr, batch, hidden,
                                     BLOCK_B: tl.constexpr, BLOCK_C: tl.constexpr):
    """(3, batch, hidden) partials of d alpha, d init_level, d smoothed_scale -> d logit (1,) and
    the (2, hidden) sums; one program per group."""
    _smoothing_param_finish(part_ptr, logit_ptr, dlogit_ptr, sums_ptr, tl.program_id(0), batch, hidden,
                            BLOCK_B, BLOCK_C)


def _fourier_smoothing_finish(parts, smoothing_logit):
    """parts: (3, B, H) float32 partials of d alpha, d init_level, d smoothed_scale ->
    d smoothing_logit (1,) and (2, H) sums over the batch, float32, in one launch."""
    groups, batch, hidden = parts.shape
    dlogit = torch.empty((1,), device=parts.device, dtype=torch.float32)
    sums = torch.empty((groups - 1, hidden), device=parts.device, dtype=torch.float32)
    _fourier_smoothing_finish_kernel[(groups,)](parts, smoothing_logit, dlogit, sums, batch, hidden,
                                                BLOCK_B=FINISH_BLOCK_B, BLOCK_C=FINISH_BLOCK_C,
                                                num_warps=FINISH_WARPS)
    return dlogit, sums
