"""Dropout + residual + LayerNorm (SPEC sections 4-6: the norm after each dense projection),
one Triton kernel forward and one backward.

    out = LN(drop(p)(x) + residual)        over the hidden axis
    out = lerp(LN_o(drop(p)(x_o) + residual), LN(drop(p)(x) + residual), w)
                                           with MIX: the hybrid layer's two branch norms (the
                                           seasonal one LN_o, the dynamic one LN, one shared
                                           residual) and their mix, in one pass

One program normalises BLOCK_R whole rows. Forward reads x and the residual once and
writes the output once; backward recomputes the sum and its statistics from x and the
residual (regenerating the dropout mask from its Philox state) instead of storing them, and writes
the gradients of x and of the residual (with MIX also of x_o; the residual's gradient is both
norms' sum, added here instead of by autograd); the LayerNorm weight and bias gradients (and
the mix weight's) are per-program partial sums reduced by one fixed-order second-stage launch
(deterministic). The second norm's dropout draws at counters ``numel + i`` (a mask of its own).
"""

import torch
import triton
import triton.language as tl

from ._common import _dropout_scale, _layer_norm_rows, _lerp

MAX_ROW_TILE = 8192  # BLOCK_R * BLOCK_H elements per program


def row_blocks(hidden: int, max_rows: int = 16) -> dict:
    block_h = max(16, triton.next_power_of_2(hidden))
    return dict(BLOCK_R=max(1, min(max_rows, MAX_ROW_TILE // block_h)), BLOCK_H=block_h)


def unsupported_shape(hidden: int):
    if triton.next_power_of_2(hidden) > MAX_ROW_TILE:
        return f"the Triton residual norm holds whole rows: hidden must be <= {MAX_ROW_TILE}, got {hidden}"
    return None


@triton.jit
def _normalise_rows(x_ptr, residual, offsets, in_bounds, col_ok, hidden, eps, rng_ptr, dropout_p, counter_shift,
                    TRAINING: tl.constexpr):
    """(normalised rows, rstd, dropout factors) of ``drop(x) + residual`` (residual: the loaded
    float32 rows); the dropout draws at counters ``counter_shift + offsets``."""
    x = tl.load(x_ptr + offsets, mask=in_bounds, other=0.0).to(tl.float32)
    drop = tl.full(x.shape, 1.0, tl.float32)  # a tensor either way: one return type
    if TRAINING:
        drop = _dropout_scale(rng_ptr, offsets + counter_shift, dropout_p)
    summed = x * drop + residual
    normed, rstd = _layer_norm_rows(summed, col_ok, hidden, eps)
    return normed, rstd, drop


@triton.jit
def _affine(normed, weight_ptr, bias_ptr, cols, col_ok):
    weight = tl.load(weight_ptr + cols, mask=col_ok, other=0.0).to(tl.float32)
    return normed * weight + tl.load(bias_ptr + cols, mask=col_ok, other=0.0).to(tl.float32)


@triton.jit
def _residual_norm_fwd_kernel(x_ptr, residual_ptr, weight_ptr, bias_ptr, other_ptr, other_weight_ptr,
                              other_bias_ptr, mix_ptr, out_ptr, rows, hidden, eps, rng_ptr, dropout_p,
                              TRAINING: tl.constexpr, MIX: tl.constexpr, BLOCK_R: tl.constexpr,
                              BLOCK_H: tl.constexpr):
    row = tl.program_id(0).to(tl.int64) * BLOCK_R + tl.arange(0, BLOCK_R)[:, None]
    cols = tl.arange(0, BLOCK_H)[None, :]
    col_ok = cols < hidden
    in_bounds = (row < rows) & col_ok
    offsets = row * hidden + cols
    residual = tl.load(residual_ptr + offsets, mask=in_bounds, other=0.0).to(tl.float32)
    normed, _, _ = _normalise_rows(x_ptr, residual, offsets, in_bounds, col_ok, hidden, eps, rng_ptr, dropout_p, 0,
                                   TRAINING)
    out = _affine(normed, weight_ptr, bias_ptr, cols, col_ok)
    if MIX:
        other_normed, _, _ = _normalise_rows(other_ptr, residual, offsets, in_bounds, col_ok, hidden, eps, rng_ptr,
                                             dropout_p, rows * hidden, TRAINING)
        other = _affine(other_normed, other_weight_ptr, other_bias_ptr, cols, col_ok)
        out = _lerp(other, out, tl.load(mix_ptr).to(tl.float32))
    tl.store(out_ptr + offsets, out.to(out_ptr.dtype.element_ty), mask=in_bounds)


@triton.jit
def _norm_backward_rows(grad, normed, rstd, weight_ptr, cols, col_ok, hidden):
    """LayerNorm backward of rows: (d of the normalised sum, weight and bias partial sums (1, BLOCK_H))."""
    weight = tl.load(weight_ptr + cols, mask=col_ok, other=0.0).to(tl.float32)
    dnormed = grad * weight
    dsummed = rstd * (dnormed - tl.sum(dnormed, axis=1)[:, None] / hidden
                      - normed * (tl.sum(dnormed * normed, axis=1)[:, None] / hidden))
    return dsummed, tl.sum(grad * normed, axis=0)[None, :], tl.sum(grad, axis=0)[None, :]


@triton.jit
def _residual_norm_bwd_kernel(x_ptr, residual_ptr, weight_ptr, bias_ptr, other_ptr, other_weight_ptr,
                              other_bias_ptr, mix_ptr, grad_ptr, dx_ptr, dresidual_ptr, dother_ptr, part_ptr, rows,
                              hidden, eps, rng_ptr, dropout_p, TRAINING: tl.constexpr, MIX: tl.constexpr,
                              BLOCK_R: tl.constexpr, BLOCK_H: tl.constexpr):
    """part: (2 + 3 * MIX, programs, hidden) float32 partial sums: the LayerNorm weight and bias
    gradients, with MIX then the other norm's two and the mix weight's (in column 0, zeros after)."""
    program = tl.program_id(0).to(tl.int64)
    programs = tl.num_programs(0)
    row = program * BLOCK_R + tl.arange(0, BLOCK_R)[:, None]
    cols = tl.arange(0, BLOCK_H)[None, :]
    col_ok = cols < hidden
    in_bounds = (row < rows) & col_ok
    offsets = row * hidden + cols
    residual = tl.load(residual_ptr + offsets, mask=in_bounds, other=0.0).to(tl.float32)
    normed, rstd, drop = _normalise_rows(x_ptr, residual, offsets, in_bounds, col_ok, hidden, eps, rng_ptr,
                                         dropout_p, 0, TRAINING)
    grad = tl.load(grad_ptr + offsets, mask=in_bounds, other=0.0).to(tl.float32)
    dresidual = tl.zeros_like(grad)
    if MIX:
        # out = lerp(other, this, w): other gets grad (1 - w), this grad w, w the sum of
        # grad (this - other) (torch.lerp's backward)
        mix = tl.load(mix_ptr).to(tl.float32)
        other_normed, other_rstd, other_drop = _normalise_rows(other_ptr, residual, offsets, in_bounds, col_ok,
                                                               hidden, eps, rng_ptr, dropout_p, rows * hidden,
                                                               TRAINING)
        other = _affine(other_normed, other_weight_ptr, other_bias_ptr, cols, col_ok)
        this = _affine(normed, weight_ptr, bias_ptr, cols, col_ok)
        dmix = tl.sum(tl.sum(tl.where(in_bounds, grad * (this - other), 0.0), axis=1), axis=0)
        tl.store(part_ptr + (4 * programs + program) * hidden + cols, tl.where(cols == 0, dmix, 0.0), mask=col_ok)
        dother_summed, dother_weight, dother_bias = _norm_backward_rows(grad * (1.0 - mix), other_normed, other_rstd,
                                                                        other_weight_ptr, cols, col_ok, hidden)
        tl.store(dother_ptr + offsets, (dother_summed * other_drop).to(dother_ptr.dtype.element_ty), mask=in_bounds)
        tl.store(part_ptr + (2 * programs + program) * hidden + cols, dother_weight, mask=col_ok)
        tl.store(part_ptr + (3 * programs + program) * hidden + cols, dother_bias, mask=col_ok)
        dresidual = dother_summed
        grad = grad * mix
    dsummed, dweight, dbias = _norm_backward_rows(grad, normed, rstd, weight_ptr, cols, col_ok, hidden)
    tl.store(dresidual_ptr + offsets, (dresidual + dsummed).to(dresidual_ptr.dtype.element_ty), mask=in_bounds)
    tl.store(dx_ptr + offsets, (dsummed * drop).to(dx_ptr.dtype.element_ty), mask=in_bounds)
    tl.store(part_ptr + program * hidden + cols, dweight, mask=col_ok)
    tl.store(part_ptr + (programs + program) * hidden + cols, dbias, mask=col_ok)


def _mix_arguments(x, weight, bias, mix):
    """The kernels' other-norm pointers: mix's (other_x, other_weight, other_bias, mix_weight), or
    unread stand-ins without it."""
    return tuple(mix) if mix is not None else (x, weight, bias, weight)


def _residual_norm_fwd(x, residual, weight, bias, eps: float, rng: torch.Tensor, dropout_p: float, dropping: bool,
                       out_dtype: torch.dtype, mix=None):
    """x, residual: (..., H) contiguous, same shape -> LN(drop(x) + residual) in out_dtype, or with
    ``mix = (other_x, other_weight, other_bias, mix_weight)`` (other_x contiguous, x's shape)
    ``lerp(LN_o(drop(other_x) + residual), LN(drop(x) + residual), mix_weight)``."""
    hidden = x.shape[-1]
    rows = x.numel() // hidden
    out = torch.empty(x.shape, device=x.device, dtype=out_dtype)
    blocks = row_blocks(hidden)
    _residual_norm_fwd_kernel[(triton.cdiv(rows, blocks["BLOCK_R"]),)](
        x, residual, weight, bias, *_mix_arguments(x, weight, bias, mix), out, rows, hidden, eps, rng, dropout_p,
        TRAINING=dropping, MIX=mix is not None, **blocks, num_warps=4)
    return out


def _residual_norm_bwd(x, residual, weight, bias, grad, eps: float, rng: torch.Tensor, dropout_p: float,
                       dropping: bool, mix=None):
    """-> dx (x's dtype), dresidual (residual's dtype), d other_x (its dtype; an empty tensor
    without mix), and (2 + 3 * mixing, programs, H) float32 partial sums: the LayerNorm weight
    and bias gradients, then the other norm's and the mix weight's (in column 0)."""
    hidden = x.shape[-1]
    rows = x.numel() // hidden
    mixing = mix is not None
    # the two-norm backward holds twice the row tiles: half the rows (at H = 256 a 16-row
    # block spills ~700 B per thread on sm_90, an 8-row one nothing)
    blocks = row_blocks(hidden, max_rows=8 if mixing else 16)
    programs = triton.cdiv(rows, blocks["BLOCK_R"])
    dx = torch.empty_like(x)
    dresidual = torch.empty_like(residual)
    dother = torch.empty_like(mix[0]) if mixing else x.new_empty(0)
    parts = torch.empty((2 + 3 * mixing, programs, hidden), device=x.device, dtype=torch.float32)
    _residual_norm_bwd_kernel[(programs,)](
        x, residual, weight, bias, *_mix_arguments(x, weight, bias, mix), grad, dx, dresidual,
        dother if mixing else dx, parts, rows, hidden, eps, rng, dropout_p, TRAINING=dropping, MIX=mixing, **blocks,
        num_warps=4)
    return dx, dresidual, dother, parts
