"""Dropout + residual + LayerNorm (SPEC sections 4-6: the norm after each dense projection),
one Triton kernel forward and one backward.

    out = LN(drop(p)(x + b) + residual)    over the hidden axis
    out = lerp(LN_o(drop(p)(x_o + b_o) + residual), LN(drop(p)(x + b) + residual), w)
                                           with MIX: the hybrid layer's two branch norms (the
                                           seasonal one LN_o, the dynamic one LN, one shared
                                           residual) and their mix, in one pass

b, b_o: optional (H,) biases of the dense projections before the norm (X_BIAS, OTHER_BIAS):
added here, the projection runs as a plain mm, and their gradients (column sums of d(x + b))
join the norm's partial sums (no bias-gradient reduction of its own).

One program normalises BLOCK_R whole rows. Forward reads x and the residual once and
writes the output once; backward recomputes the sum and its statistics from x and the
residual (regenerating the dropout mask from its Philox state) instead of storing them, and writes
the gradients of x and of the residual (with MIX also of x_o; the residual's gradient is both
norms' sum, added here instead of by autograd); the LayerNorm weight and bias gradients (and
the mix weight's, the biases') are per-program partial sums reduced by one fixed-order
second-stage launch (deterministic). The second norm's dropout draws at counters ``numel + i`` (a mask of its own).
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
def _normalise_rows(x_ptr, x_bias_ptr, residual, offsets, cols, in_bounds, col_ok, hidden, eps, rng_ptr, dropout_p,
                    counter_shift, TRAINING: tl.constexpr, BIAS: tl.constexpr):
    """(normalised rows, rstd, dropout factors) of ``drop(x [+ x_bias]) + residual`` (residual:
    the loaded float32 rows; BIAS: add the (H,) x_bias); the dropout draws at counters
    ``counter_shift + offsets`` (both int64: the second norm's shift rows * hidden passes 2^31
    from 8.4M rows at H = 256, e.g. B = 42,000 at N = 200)."""
    x = tl.load(x_ptr + offsets, mask=in_bounds, other=0.0).to(tl.float32)
    if BIAS:
        # float32 addition, as the reference's x + x_bias promotes (masked rows stay 0 after
        # the norm: their gradient is 0, so they add nothing to the bias' column sums)
        x += tl.load(x_bias_ptr + cols, mask=col_ok, other=0.0).to(tl.float32)
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
                              other_bias_ptr, mix_ptr, x_bias_ptr, other_x_bias_ptr, out_ptr, rows, hidden, eps,
                              rng_ptr, dropout_p, TRAINING: tl.constexpr, MIX: tl.constexpr, X_BIAS: tl.constexpr,
                              OTHER_BIAS: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_H: tl.constexpr):
    row = tl.program_id(0).to(tl.int64) * BLOCK_R + tl.arange(0, BLOCK_R)[:, None]
    cols = tl.arange(0, BLOCK_H)[None, :]
    col_ok = cols < hidden
    in_bounds = (row < rows) & col_ok
    offsets = row * hidden + cols
    residual = tl.load(residual_ptr + offsets, mask=in_bounds, other=0.0).to(tl.float32)
    normed, _, _ = _normalise_rows(x_ptr, x_bias_ptr, residual, offsets, cols, in_bounds, col_ok, hidden, eps,
                                   rng_ptr, dropout_p, 0, TRAINING, X_BIAS)
    out = _affine(normed, weight_ptr, bias_ptr, cols, col_ok)
    if MIX:
        other_normed, _, _ = _normalise_rows(other_ptr, other_x_bias_ptr, residual, offsets, cols, in_bounds, col_ok,
                                             hidden, eps, rng_ptr, dropout_p, tl.cast(rows, tl.int64) * hidden,
                                             TRAINING, OTHER_BIAS)
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
                              other_bias_ptr, mix_ptr, x_bias_ptr, other_x_bias_ptr, grad_ptr, grad2_ptr, dx_ptr,
                              dresidual_ptr, dother_ptr, part_ptr, rows, hidden, eps, rng_ptr, dropout_p,
                              TRAINING: tl.constexpr, MIX: tl.constexpr, X_BIAS: tl.constexpr,
                              OTHER_BIAS: tl.constexpr, HAS_GRAD2: tl.constexpr, BLOCK_R: tl.constexpr,
                              BLOCK_H: tl.constexpr):
    """part: (>= 2 + 3 * MIX + X_BIAS + OTHER_BIAS, programs, hidden) float32 partial sums, these
    groups first: the LayerNorm weight and bias gradients, with MIX then the other norm's two and
    the mix weight's (in column 0, zeros after), then with X_BIAS x_bias' gradient, with
    OTHER_BIAS other_x_bias' (the column sums of d(x + x_bias), d(other + its bias)). Groups past
    these are the caller's (a buffer shared with another kernel's partial sums over the same row
    blocks, reduced in the same second-stage launch). HAS_GRAD2: the output has a second handle
    whose gradient grad2 is added to grad as it is read (no autograd add of the two)."""
    program = tl.program_id(0).to(tl.int64)
    programs = tl.num_programs(0)
    row = program * BLOCK_R + tl.arange(0, BLOCK_R)[:, None]
    cols = tl.arange(0, BLOCK_H)[None, :]
    col_ok = cols < hidden
    in_bounds = (row < rows) & col_ok
    offsets = row * hidden + cols
    residual = tl.load(residual_ptr + offsets, mask=in_bounds, other=0.0).to(tl.float32)
    normed, rstd, drop = _normalise_rows(x_ptr, x_bias_ptr, residual, offsets, cols, in_bounds, col_ok, hidden,
                                         eps, rng_ptr, dropout_p, 0, TRAINING, X_BIAS)
    grad = tl.load(grad_ptr + offsets, mask=in_bounds, other=0.0).to(tl.float32)
    if HAS_GRAD2:
        grad += tl.load(grad2_ptr + offsets, mask=in_bounds, other=0.0).to(tl.float32)
    dresidual = tl.zeros_like(grad)
    if MIX:
        # out = lerp(other, this, w): other gets grad (1 - w), this grad w, w the sum of
        # grad (this - other) (torch.lerp's backward)
        mix = tl.load(mix_ptr).to(tl.float32)
        other_normed, other_rstd, other_drop = _normalise_rows(other_ptr, other_x_bias_ptr, residual, offsets, cols,
                                                               in_bounds, col_ok, hidden, eps, rng_ptr, dropout_p,
                                                               tl.cast(rows, tl.int64) * hidden, TRAINING,
                                                               OTHER_BIAS)
        other = _affine(other_normed, other_weight_ptr, other_bias_ptr, cols, col_ok)
        this = _affine(normed, weight_ptr, bias_ptr, cols, col_ok)
        dmix = tl.sum(tl.sum(tl.where(in_bounds, grad * (this - other), 0.0), axis=1), axis=0)
        tl.store(part_ptr + (4 * programs + program) * hidden + cols, tl.where(cols == 0, dmix, 0.0), mask=col_ok)
        dother_summed, dother_weight, dother_bias = _norm_backward_rows(grad * (1.0 - mix), other_normed, other_rstd,
                                                                        other_weight_ptr, cols, col_ok, hidden)
        dother = dother_summed * other_drop
        tl.store(dother_ptr + offsets, dother.to(dother_ptr.dtype.element_ty), mask=in_bounds)
        tl.store(part_ptr + (2 * programs + program) * hidden + cols, dother_weight, mask=col_ok)
        tl.store(part_ptr + (3 * programs + program) * hidden + cols, dother_bias, mask=col_ok)
        if OTHER_BIAS:
            tl.store(part_ptr + ((5 + X_BIAS) * programs + program) * hidden + cols,
                     tl.sum(dother, axis=0)[None, :], mask=col_ok)
        dresidual = dother_summed
        grad = grad * mix
    dsummed, dweight, dbias = _norm_backward_rows(grad, normed, rstd, weight_ptr, cols, col_ok, hidden)
    tl.store(dresidual_ptr + offsets, (dresidual + dsummed).to(dresidual_ptr.dtype.element_ty), mask=in_bounds)
    dx = dsummed * drop
    tl.store(dx_ptr + offsets, dx.to(dx_ptr.dtype.element_ty), mask=in_bounds)
    tl.store(part_ptr + program * hidden + cols, dweight, mask=col_ok)
    tl.store(part_ptr + (programs + program) * hidden + cols, dbias, mask=col_ok)
    if X_BIAS:
        tl.store(part_ptr + ((2 + 3 * MIX) * programs + program) * hidden + cols, tl.sum(dx, axis=0)[None, :],
                 mask=col_ok)


def _mix_arguments(x, weight, bias, mix):
    """The kernels' other-norm pointers: mix's (other_x, other_weight, other_bias, mix_weight), or
    unread stand-ins without it."""
    return tuple(mix) if mix is not None else (x, weight, bias, weight)


def _bias_arguments(weight, x_bias, other_x_bias):
    """The kernels' (x_bias, other_x_bias) pointers, an unread stand-in for a missing one."""
    return (x_bias if x_bias is not None else weight, other_x_bias if other_x_bias is not None else weight)


def partial_groups(mixing: bool, x_bias: bool, other_x_bias: bool) -> int:
    """How many (programs, H) groups of partial sums the backward kernel writes."""
    return 2 + 3 * mixing + x_bias + other_x_bias


def backward_blocks(hidden: int, mixing: bool) -> dict:
    """The backward kernel's (BLOCK_R, BLOCK_H): programs = cdiv(rows, BLOCK_R)."""
    # the two-norm backward holds twice the row tiles: half the rows (at H = 256 a 16-row
    # block spills ~700 B per thread on sm_90, an 8-row one nothing)
    return row_blocks(hidden, max_rows=8 if mixing else 16)


def _residual_norm_fwd(x, residual, weight, bias, eps: float, rng: torch.Tensor, dropout_p: float, dropping: bool,
                       out_dtype: torch.dtype, mix=None, x_bias=None, other_x_bias=None):
    """x, residual: (..., H) contiguous, same shape -> LN(drop(x [+ x_bias]) + residual) in
    out_dtype, or with ``mix = (other_x, other_weight, other_bias, mix_weight)`` (other_x
    contiguous, x's shape) ``lerp(LN_o(drop(other_x [+ other_x_bias]) + residual), LN(drop(x
    [+ x_bias]) + residual), mix_weight)``. x_bias, other_x_bias: (H,) or None."""
    hidden = x.shape[-1]
    rows = x.numel() // hidden
    out = torch.empty(x.shape, device=x.device, dtype=out_dtype)
    blocks = row_blocks(hidden)
    _residual_norm_fwd_kernel[(triton.cdiv(rows, blocks["BLOCK_R"]),)](
        x, residual, weight, bias, *_mix_arguments(x, weight, bias, mix),
        *_bias_arguments(weight, x_bias, other_x_bias), out, rows, hidden, eps, rng, dropout_p, TRAINING=dropping,
        MIX=mix is not None, X_BIAS=x_bias is not None, OTHER_BIAS=other_x_bias is not None, **blocks, num_warps=4)
    return out


def _residual_norm_bwd(x, residual, weight, bias, grad, eps: float, rng: torch.Tensor, dropout_p: float,
                       dropping: bool, mix=None, x_bias=None, other_x_bias=None, parts=None, grad2=None):
    """-> dx (x's dtype), dresidual (residual's dtype), d other_x (its dtype; an empty tensor
    without mix), and the float32 partial sums ``parts`` (partial_groups(...), programs, H): the
    LayerNorm weight and bias gradients, then the other norm's and the mix weight's (in column
    0), then x_bias' and other_x_bias' (each where given). dx is d(x + x_bias) (x's gradient and,
    summed over rows, x_bias').

    parts: optional (groups >= partial_groups(...), programs, H) float32 contiguous buffer whose
    leading groups this kernel fills (programs: cdiv(rows, backward_blocks(H, mixing)["BLOCK_R"]));
    the caller writes the rest and reduces all in one ``column_sums`` launch.
    grad2: optional second gradient of the output (grad's layout), added to grad as it is read."""
    hidden = x.shape[-1]
    rows = x.numel() // hidden
    mixing = mix is not None
    blocks = backward_blocks(hidden, mixing)
    programs = triton.cdiv(rows, blocks["BLOCK_R"])
    groups = partial_groups(mixing, x_bias is not None, other_x_bias is not None)
    if parts is None:
        parts = torch.empty((groups, programs, hidden), device=x.device, dtype=torch.float32)
    elif parts.dim() != 3 or parts.shape[0] < groups or parts.shape[1:] != (programs, hidden) \
            or parts.dtype != torch.float32 or not parts.is_contiguous():
        raise ValueError(f"residual norm backward: parts must be float32 contiguous (>= {groups}, {programs}, "
                         f"{hidden}), got {parts.dtype} {tuple(parts.shape)}")
    dx = torch.empty_like(x)
    dresidual = torch.empty_like(residual)
    dother = torch.empty_like(mix[0]) if mixing else x.new_empty(0)
    _residual_norm_bwd_kernel[(programs,)](
        x, residual, weight, bias, *_mix_arguments(x, weight, bias, mix),
        *_bias_arguments(weight, x_bias, other_x_bias), grad, grad if grad2 is None else grad2, dx, dresidual,
        dother if mixing else dx, parts, rows, hidden, eps, rng, dropout_p, TRAINING=dropping, MIX=mixing,
        X_BIAS=x_bias is not None, OTHER_BIAS=other_x_bias is not None, HAS_GRAD2=grad2 is not None, **blocks,
        num_warps=4)
    return dx, dresidual, dother, parts
