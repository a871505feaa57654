"""Fourier smoothing (SPEC section 2) as a Triton scan, forward and backward.

The published module computes, through an FFT cross-correlation, the causal EMA

    e[n] = alpha * e[n-1] + x[n]           s[n] = (1 - alpha) / sqrt(L) * e[n]
    out  = mix * (alpha^(n+1) * init_level + s[n] * smoothed_scale) + (1 - mix) * x

One program owns one sequence and a block of channels with the whole sequence axis in
registers, and runs the recurrence as a parallel associative scan: the input is read
once and the output written once, which is the least traffic any algorithm can have
(an rfft-filter-irfft or a Toeplitz GEMM reads and writes the same bytes and does more
arithmetic; the scan's rounding is that of the EMA itself).

Backward (``g`` = grad of out, ``G = mix * smoothed_scale * (1 - alpha)/sqrt(L) * g``):

    lam[n]  = sum_{m >= n} alpha^(m-n) G[m]     (reverse scan)
    dx      = (1 - mix) * g + lam
    dalpha  = sum mix*init_level*(n+1)*alpha^n*g - mix*smoothed_scale*g*e/sqrt(L) + lam[n+1]*e[n]
    d init_level = sum mix*alpha^(n+1)*g        d smoothed_scale = sum mix*s*g

``lam[n+1]`` is the reverse scan of G shifted by one row, read from memory one row on.
Per-channel sums over the sequence are written per (sequence, channel); the host-side sum
over the batch makes the reduction deterministic (no atomics).
"""

import torch
import triton
import triton.language as tl

from ._common import _ema_scan

MAX_TILE = 8192  # elements of one (BLOCK_N, BLOCK_H) register tile


def smoothing_blocks(seq_len: int, hidden: int) -> tuple:
    """(BLOCK_N, BLOCK_H): the whole sequence, as many channels as fit one tile (>= 16)."""
    block_n = max(16, triton.next_power_of_2(seq_len))
    block_h = max(16, min(triton.next_power_of_2(hidden), MAX_TILE // block_n))
    return block_n, block_h


@triton.jit
def _level_decay(rows, log_alpha):
    # alpha^rows for integer rows >= 0; alpha^0 = 1 even when alpha underflowed to 0
    return tl.where(rows == 0, 1.0, tl.exp(rows.to(tl.float32) * log_alpha))


@triton.jit
def _smoothing_fwd_tile(x, rows, alpha, level, scale, inv_sqrt_len, mix):
    """SPEC 2 on one (BLOCK_N, BLOCK_H) float32 tile holding whole sequences (zero past the end).

    rows: (BLOCK_N, 1) positions; level, scale: (1, BLOCK_H).
    """
    ema = _ema_scan(x, alpha, False)
    smoothed = ema * ((1.0 - alpha) * inv_sqrt_len)
    fsm = _level_decay(rows + 1, tl.log(alpha)) * level + smoothed * scale
    return mix * fsm + (1.0 - mix) * x


@triton.jit
def _smoothing_bwd_tile(x, grad, grad_next, rows, alpha, level, scale, inv_sqrt_len, mix):
    """Backward of ``_smoothing_fwd_tile``: dx (BLOCK_N, BLOCK_H) and the per-channel sums
    (1, BLOCK_H) of dalpha, d init_level and d smoothed_scale over the tile's rows.

    grad_next: grad shifted up one row (grad[n + 1], zero at the last position).
    """
    ema_factor = (1.0 - alpha) * inv_sqrt_len
    ema = _ema_scan(x, alpha, False)
    adjoint = _ema_scan(mix * ema_factor * scale * grad, alpha, True)
    adjoint_next = _ema_scan(mix * ema_factor * scale * grad_next, alpha, True)
    dx = (1.0 - mix) * grad + adjoint
    decay = _level_decay(rows, tl.log(alpha))  # alpha^n
    dalpha = (mix * level * (rows + 1).to(tl.float32) * decay * grad
              - mix * inv_sqrt_len * scale * grad * ema + adjoint_next * ema)
    dalpha_sum = tl.sum(dalpha, axis=0)[None, :]
    dlevel_sum = tl.sum(mix * decay * alpha * grad, axis=0)[None, :]
    dscale_sum = tl.sum(mix * ema_factor * ema * grad, axis=0)[None, :]
    return dx, dalpha_sum, dlevel_sum, dscale_sum


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
    BLOCK_N: tl.constexpr, BLOCK_H: tl.constexpr,
):
    seq = tl.program_id(0).to(tl.int64)
    rows = tl.arange(0, BLOCK_N)[:, None]
    cols = tl.program_id(1) * BLOCK_H + tl.arange(0, BLOCK_H)[None, :]
    in_bounds = (rows < seq_len) & (cols < hidden)
    offsets = seq * seq_len * hidden + rows * hidden + cols
    x = tl.load(x_ptr + offsets, mask=in_bounds, other=0.0).to(tl.float32)
    alpha, level, scale = _smoothing_params(logit_ptr, level_ptr, scale_ptr, cols, hidden)
    out = _smoothing_fwd_tile(x, rows, alpha, level, scale, inv_sqrt_len, mix)
    tl.store(out_ptr + offsets, out, mask=in_bounds)


@triton.jit
def _fourier_smoothing_bwd_kernel(
    x_ptr, grad_ptr, logit_ptr, level_ptr, scale_ptr,
    dx_ptr, dalpha_part_ptr, dlevel_part_ptr, dscale_part_ptr,
    seq_len, hidden, inv_sqrt_len, mix,
    BLOCK_N: tl.constexpr, BLOCK_H: tl.constexpr,
):
    seq = tl.program_id(0).to(tl.int64)
    rows = tl.arange(0, BLOCK_N)[:, None]
    cols = tl.program_id(1) * BLOCK_H + tl.arange(0, BLOCK_H)[None, :]
    col_ok = cols < hidden
    in_bounds = (rows < seq_len) & col_ok
    offsets = seq * seq_len * hidden + rows * hidden + cols
    x = tl.load(x_ptr + offsets, mask=in_bounds, other=0.0).to(tl.float32)
    grad, grad_next = _grad_and_next(grad_ptr, offsets, rows, col_ok, seq_len, hidden)
    alpha, level, scale = _smoothing_params(logit_ptr, level_ptr, scale_ptr, cols, hidden)
    dx, dalpha, dlevel, dscale = _smoothing_bwd_tile(x, grad, grad_next, rows, alpha, level, scale,
                                                     inv_sqrt_len, mix)
    tl.store(dx_ptr + offsets, dx, mask=in_bounds)
    part = seq * hidden + cols
    tl.store(dalpha_part_ptr + part, dalpha, mask=col_ok)
    tl.store(dlevel_part_ptr + part, dlevel, mask=col_ok)
    tl.store(dscale_part_ptr + part, dscale, mask=col_ok)


def _fourier_smoothing_fwd(x, smoothing_logit, init_level, smoothed_scale, mix: float, inv_sqrt_len: float):
    """x: (B, N, H) contiguous -> (B, N, H) float32."""
    batch, seq_len, hidden = x.shape
    out = torch.empty(x.shape, device=x.device, dtype=torch.float32)
    block_n, block_h = smoothing_blocks(seq_len, hidden)
    grid = (batch, triton.cdiv(hidden, block_h))
    _fourier_smoothing_fwd_kernel[grid](x, smoothing_logit, init_level, smoothed_scale, out,
                                        seq_len, hidden, inv_sqrt_len, mix,
                                        BLOCK_N=block_n, BLOCK_H=block_h, num_warps=4)
    return out


def _fourier_smoothing_bwd(x, grad, smoothing_logit, init_level, smoothed_scale, mix: float, inv_sqrt_len: float):
    """-> dx (B, N, H) float32 and per-sequence partial sums (B, H) for alpha, init_level, smoothed_scale."""
    batch, seq_len, hidden = x.shape
    dx = torch.empty(x.shape, device=x.device, dtype=torch.float32)
    parts = torch.empty((3, batch, hidden), device=x.device, dtype=torch.float32)
    block_n, block_h = smoothing_blocks(seq_len, hidden)
    grid = (batch, triton.cdiv(hidden, block_h))
    _fourier_smoothing_bwd_kernel[grid](x, grad, smoothing_logit, init_level, smoothed_scale,
                                        dx, parts[0], parts[1], parts[2],
                                        seq_len, hidden, inv_sqrt_len, mix,
                                        BLOCK_N=block_n, BLOCK_H=block_h, num_warps=4)
    return dx, parts[0], parts[1], parts[2]
