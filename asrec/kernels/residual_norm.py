"""Dropout + residual + LayerNorm (SPEC sections 4-6: the norm after each dense projection),
one Triton kernel forward and one backward.

    out = LN(drop(p)(x) + residual)        over the hidden axis
    out = lerp(other, LN(...), w)          with MIX: the hybrid layer's branch mix, folded in


One program normalises BLOCK_R whole rows. Forward reads x and the residual once and
writes the output once; backward recomputes the sum and its statistics from x and the
residual (regenerating the dropout mask from its Philox state) instead of storing them, and writes
the gradients of x and of the residual; the LayerNorm weight and bias gradients are
per-program partial sums reduced on the host (deterministic). With MIX, backward also writes
the gradient of ``other`` and per-program partial sums of the mix weight's gradient.
"""

import torch
import triton
import triton.language as tl

from ._common import _dropout_scale, _layer_norm_rows
from .frequency_keep_mask import _lerp

MAX_ROW_TILE = 8192  # BLOCK_R * BLOCK_H elements per program


def row_blocks(hidden: int) -> dict:
    block_h = max(16, triton.next_power_of_2(hidden))
    return dict(BLOCK_R=max(1, min(16, MAX_ROW_TILE // block_h)), BLOCK_H=block_h)


def unsupported_shape(hidden: int):
    if triton.next_power_of_2(hidden) > MAX_ROW_TILE:
        return f"the Triton residual norm holds whole rows: hidden must be <= {MAX_ROW_TILE}, got {hidden}"
    return None


@triton.jit
def _normalise_rows(x_ptr, residual_ptr, offsets, in_bounds, col_ok, hidden, eps, rng_ptr, dropout_p,
                    TRAINING: tl.constexpr):
    """(normalised rows, rstd, dropout factors or None) of ``drop(x) + residual``."""
    x = tl.load(x_ptr + offsets, mask=in_bounds, other=0.0).to(tl.float32)
    drop = tl.full(x.shape, 1.0, tl.float32)  # a tensor either way: one return type
    if TRAINING:
        drop = _dropout_scale(rng_ptr, offsets, dropout_p)
    summed = x * drop + tl.load(residual_ptr + offsets, mask=in_bounds, other=0.0).to(tl.float32)
    normed, rstd = _layer_norm_rows(summed, col_ok, hidden, eps)
    return normed, rstd, drop


@triton.jit
def _residual_norm_fwd_kernel(x_ptr, residual_ptr, weight_ptr, bias_ptr, other_ptr, mix_ptr, out_ptr, rows, hidden,
                              eps, rng_ptr, dropout_p, TRAINING: tl.constexpr, MIX: tl.constexpr,
                              BLOCK_R: tl.constexpr, BLOCK_H: tl.constexpr):
    row = tl.program_id(0).to(tl.int64) * BLOCK_R + tl.arange(0, BLOCK_R)[:, None]
    cols = tl.arange(0, BLOCK_H)[None, :]
    col_ok = cols < hidden
    in_bounds = (row < rows) & col_ok
    offsets = row * hidden + cols
    normed, _, _ = _normalise_rows(x_ptr, residual_ptr, offsets, in_bounds, col_ok, hidden, eps, rng_ptr, dropout_p,
                                   TRAINING)
    weight = tl.load(weight_ptr + cols, mask=col_ok, other=0.0).to(tl.float32)
    bias = tl.load(bias_ptr + cols, mask=col_ok, other=0.0).to(tl.float32)
    out = normed * weight + bias
    if MIX:
        other = tl.load(other_ptr + offsets, mask=in_bounds, other=0.0).to(tl.float32)
        out = _lerp(other, out, tl.load(mix_ptr).to(tl.float32))
    tl.store(out_ptr + offsets, out.to(out_ptr.dtype.element_ty), mask=in_bounds)


@triton.jit
def _residual_norm_bwd_kernel(x_ptr, residual_ptr, weight_ptr, bias_ptr, other_ptr, mix_ptr, grad_ptr, dx_ptr,
                              dresidual_ptr, dother_ptr, part_ptr, rows, hidden, eps, rng_ptr, dropout_p,
                              TRAINING: tl.constexpr, MIX: tl.constexpr, BLOCK_R: tl.constexpr,
                              BLOCK_H: tl.constexpr):
    """part: (2 + MIX, programs, hidden) float32 partial sums: the LayerNorm weight and bias
    gradients, and with MIX the mix weight's gradient (in column 0, zeros after it)."""
    program = tl.program_id(0).to(tl.int64)
    programs = tl.num_programs(0)
    row = program * BLOCK_R + tl.arange(0, BLOCK_R)[:, None]
    cols = tl.arange(0, BLOCK_H)[None, :]
    col_ok = cols < hidden
    in_bounds = (row < rows) & col_ok
    offsets = row * hidden + cols
    normed, rstd, drop = _normalise_rows(x_ptr, residual_ptr, offsets, in_bounds, col_ok, hidden, eps, rng_ptr,
                                         dropout_p, TRAINING)
    weight = tl.load(weight_ptr + cols, mask=col_ok, other=0.0).to(tl.float32)
    grad = tl.load(grad_ptr + offsets, mask=in_bounds, other=0.0).to(tl.float32)
    if MIX:
        # torch.lerp's backward: other gets grad (1 - w), the norm's output grad w, and w the
        # sum of grad (out_norm - other)
        mix = tl.load(mix_ptr).to(tl.float32)
        other = tl.load(other_ptr + offsets, mask=in_bounds, other=0.0).to(tl.float32)
        bias = tl.load(bias_ptr + cols, mask=col_ok, other=0.0).to(tl.float32)
        mixed_in = tl.where(in_bounds, normed * weight + bias - other, 0.0)
        tl.store(dother_ptr + offsets, (grad * (1.0 - mix)).to(dother_ptr.dtype.element_ty), mask=in_bounds)
        dmix = tl.sum(tl.sum(grad * mixed_in, axis=1), axis=0)
        tl.store(part_ptr + (2 * programs + program) * hidden + cols, tl.where(cols == 0, dmix, 0.0), mask=col_ok)
        grad = grad * mix
    dnormed = grad * weight
    dsummed = rstd * (dnormed - tl.sum(dnormed, axis=1)[:, None] / hidden
                      - normed * (tl.sum(dnormed * normed, axis=1)[:, None] / hidden))
    tl.store(dresidual_ptr + offsets, dsummed.to(dresidual_ptr.dtype.element_ty), mask=in_bounds)
    tl.store(dx_ptr + offsets, (dsummed * drop).to(dx_ptr.dtype.element_ty), mask=in_bounds)
    tl.store(part_ptr + program * hidden + cols, tl.sum(grad * normed, axis=0)[None, :], mask=col_ok)
    tl.store(part_ptr + (programs + program) * hidden + cols, tl.sum(grad, axis=0)[None, :], mask=col_ok)


def _residual_norm_fwd(x, residual, weight, bias, eps: float, rng: torch.Tensor, dropout_p: float, dropping: bool,
                       out_dtype: torch.dtype, other=None, mix=None):
    """x, residual: (..., H) contiguous, same shape -> LN(drop(x) + residual) in out_dtype, or with
    ``other`` (x's shape, contiguous) and ``mix`` (one element) ``lerp(other, LN(...), mix)``."""
    hidden = x.shape[-1]
    rows = x.numel() // hidden
    out = torch.empty(x.shape, device=x.device, dtype=out_dtype)
    blocks = row_blocks(hidden)
    mixing = other is not None
    _residual_norm_fwd_kernel[(triton.cdiv(rows, blocks["BLOCK_R"]),)](
        x, residual, weight, bias, other if mixing else x, mix if mixing else weight, out, rows, hidden, eps, rng,
        dropout_p, TRAINING=dropping, MIX=mixing, **blocks, num_warps=4)
    return out


def _residual_norm_bwd(x, residual, weight, bias, grad, eps: float, rng: torch.Tensor, dropout_p: float,
                       dropping: bool, other=None, mix=None):
    """-> dx (x's dtype), dresidual (residual's dtype), d other (other's dtype; an empty tensor
    without mixing), and (2 + mixing, programs, H) float32 partial sums of the LayerNorm weight
    and bias gradients and of the mix weight's (in column 0)."""
    hidden = x.shape[-1]
    rows = x.numel() // hidden
    blocks = row_blocks(hidden)
    programs = triton.cdiv(rows, blocks["BLOCK_R"])
    mixing = other is not None
    dx = torch.empty_like(x)
    dresidual = torch.empty_like(residual)
    dother = torch.empty_like(other) if mixing else x.new_empty(0)
    parts = torch.empty((2 + mixing, programs, hidden), device=x.device, dtype=torch.float32)
    _residual_norm_bwd_kernel[(programs,)](
        x, residual, weight, bias, other if mixing else x, mix if mixing else weight, grad, dx, dresidual,
        dother if mixing else dx, parts, rows, hidden, eps, rng, dropout_p, TRAINING=dropping, MIX=mixing, **blocks,
        num_warps=4)
    return dx, dresidual, dother, parts
