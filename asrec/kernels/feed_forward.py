"""The feed-forward block's activation (SPEC section 6), forward and backward, for the fused
``feed_forward`` (asrec.ops.feed_forward): ``a = act(h + b)`` with h the bias-free
``x @ W_in^T`` (an mm), and its backward ``d_h = act'(h + b) * d_a`` with the bias gradient's
per-program column partial sums.

The backward's partial sums go into the residual norm backward's buffer (groups of
(programs, hidden) rows, one program per BLOCK_R rows in both kernels): the inner axis is cut
into ceil(inner / hidden) chunks of ``hidden`` columns, chunk j written as group ``group0 + j``
(columns past ``inner`` as zeros), so one ``column_sums`` launch reduces the norm's sums and
this bias gradient together; the (chunks * hidden,) result's first ``inner`` entries are it.

Activations (asrec.reference.ACTIVATIONS), with torch's exact derivatives:
gelu (the erf form), relu, swish (silu), tanh, sigmoid. Everything in float32.
"""

import torch
import triton
import triton.language as tl

from ._common import INV_SQRT_2PI, SQRT_HALF

ACTIVATION_CODES = {"gelu": 0, "relu": 1, "swish": 2, "tanh": 3, "sigmoid": 4}

# |z| below which tanh is its Taylor series: exp(-2|z|) cancels in (1 - e) / (1 + e) there
TANH_SERIES_BELOW = tl.constexpr(0.25)


@triton.jit
def _tanh(z):
    """tanh in float32 without libdevice (the CPU interpreter has none): the odd Taylor series
    to z^11 for |z| < 0.25 (the next term is < 1e-9 relative), else sign(z) (1 - e) / (1 + e)
    with e = exp(-2|z|) (1 - e >= 0.39: no cancellation)."""
    magnitude = tl.abs(z)
    e = tl.exp(-2.0 * magnitude)
    far = (1.0 - e) / (1.0 + e)
    far = tl.where(z < 0, -far, far)
    z2 = z * z
    series = -1382.0 / 155925.0
    series = series * z2 + 62.0 / 2835.0
    series = series * z2 - 17.0 / 315.0
    series = series * z2 + 2.0 / 15.0
    series = series * z2 - 1.0 / 3.0
    near = z + z * z2 * series
    return tl.where(magnitude < TANH_SERIES_BELOW, near, far)


@triton.jit
def _activate(z, ACT: tl.constexpr):
    if ACT == 0:
        out = 0.5 * z * (1.0 + tl.erf(z * SQRT_HALF))
    elif ACT == 1:
        out = tl.where(z > 0, z, 0.0)
    elif ACT == 2:
        out = z * tl.sigmoid(z)
    elif ACT == 3:
        out = _tanh(z)
    else:
        out = tl.sigmoid(z)
    return out


@triton.jit
def _activation_grad(z, grad, ACT: tl.constexpr):
    """grad * act'(z), each as torch's backward computes it."""
    if ACT == 0:
        # d/dz 0.5 z (1 + erf(z / sqrt 2)) = Phi(z) + z phi(z)
        out = grad * (0.5 * (1.0 + tl.erf(z * SQRT_HALF)) + z * INV_SQRT_2PI * tl.exp(-0.5 * z * z))
    elif ACT == 1:
        out = tl.where(z > 0, grad, 0.0)  # threshold_backward: 0 at z = 0
    elif ACT == 2:
        s = tl.sigmoid(z)
        out = grad * (s * (1.0 + z * (1.0 - s)))  # silu_backward
    elif ACT == 3:
        t = _tanh(z)
        out = grad * (1.0 - t * t)  # tanh_backward
    else:
        s = tl.sigmoid(z)
        out = grad * ((1.0 - s) * s)  # sigmoid_backward
    return out


@triton.jit
def _activation_fwd_kernel(h_ptr, bias_ptr, out_ptr, rows, inner, ACT: tl.constexpr, BLOCK_R: tl.constexpr,
                           BLOCK_C: tl.constexpr):
    """out = act(h + bias); h, out: (rows, inner); bias: (inner,). One (BLOCK_R, BLOCK_C) tile a program."""
    row = tl.program_id(0).to(tl.int64) * BLOCK_R + tl.arange(0, BLOCK_R)[:, None]
    cols = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)[None, :]
    col_ok = cols < inner
    in_bounds = (row < rows) & col_ok
    offsets = row * inner + cols
    z = tl.load(h_ptr + offsets, mask=in_bounds, other=0.0).to(tl.float32)
    z += tl.load(bias_ptr + cols, mask=col_ok, other=0.0).to(tl.float32)
    tl.store(out_ptr + offsets, _activate(z, ACT).to(out_ptr.dtype.element_ty), mask=in_bounds)


@triton.jit
def _activation_bwd_kernel(h_ptr, bias_ptr, grad_ptr, dh_ptr, part_ptr, rows, inner, hidden, group0,
                           ACT: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_H: tl.constexpr):
    """dh = act'(h + bias) * grad ((rows, inner)), and per program the column sums of its BLOCK_R
    rows of dh (the bias gradient's partial sums): chunk j of ``hidden`` columns into
    part[group0 + j, program, :] (part: (groups, programs, hidden) float32; zeros past inner)."""
    program = tl.program_id(0).to(tl.int64)
    programs = tl.num_programs(0)
    row = program * BLOCK_R + tl.arange(0, BLOCK_R)[:, None]
    lanes = tl.arange(0, BLOCK_H)[None, :]
    lane_ok = lanes < hidden
    for chunk in range(0, tl.cdiv(inner, hidden)):
        cols = chunk * hidden + lanes
        col_ok = lane_ok & (cols < inner)
        in_bounds = (row < rows) & col_ok
        offsets = row * inner + cols
        z = tl.load(h_ptr + offsets, mask=in_bounds, other=0.0).to(tl.float32)
        z += tl.load(bias_ptr + cols, mask=col_ok, other=0.0).to(tl.float32)
        grad = tl.load(grad_ptr + offsets, mask=in_bounds, other=0.0).to(tl.float32)
        dh = _activation_grad(z, grad, ACT)  # 0 where masked: grad is
        tl.store(dh_ptr + offsets, dh.to(dh_ptr.dtype.element_ty), mask=in_bounds)
        tl.store(part_ptr + ((group0 + chunk) * programs + program) * hidden + lanes, tl.sum(dh, axis=0)[None, :],
                 mask=lane_ok)


def _activation_fwd(h: torch.Tensor, bias: torch.Tensor, activation: str) -> torch.Tensor:
    """h: (rows, inner) contiguous; bias: (inner,) -> act(h + bias) in h's dtype."""
    rows, inner = h.shape
    out = torch.empty_like(h)
    block_c = min(128, max(16, triton.next_power_of_2(inner)))
    block_r = 16
    _activation_fwd_kernel[(triton.cdiv(rows, block_r), triton.cdiv(inner, block_c))](
        h, bias, out, rows, inner, ACT=ACTIVATION_CODES[activation], BLOCK_R=block_r, BLOCK_C=block_c, num_warps=4)
    return out


def bias_chunks(inner: int, hidden: int) -> int:
    """How many (programs, hidden) groups the bias gradient's partial sums take."""
    return triton.cdiv(inner, hidden)


def _activation_bwd(h: torch.Tensor, bias: torch.Tensor, grad: torch.Tensor, activation: str, parts: torch.Tensor,
                    group0: int, block_r: int) -> torch.Tensor:
    """h, grad: (rows, inner) contiguous; bias: (inner,) -> dh = act'(h + bias) * grad in h's
    dtype; fills parts[group0 : group0 + bias_chunks(inner, hidden)] (parts: (groups,
    cdiv(rows, block_r), hidden) float32 contiguous) with the bias gradient's partial sums."""
    rows, inner = h.shape
    groups, programs, hidden = parts.shape
    if programs != triton.cdiv(rows, block_r) or group0 + bias_chunks(inner, hidden) > groups:
        raise ValueError(f"activation backward: parts {tuple(parts.shape)} must hold {group0} + "
                         f"{bias_chunks(inner, hidden)} groups of {triton.cdiv(rows, block_r)} programs")
    dh = torch.empty_like(h)
    _activation_bwd_kernel[(programs,)](h, bias, grad, dh, parts, rows, inner, hidden, group0,
                                        ACT=ACTIVATION_CODES[activation], BLOCK_R=block_r,
                                        BLOCK_H=max(16, triton.next_power_of_2(hidden)), num_warps=4)
    return dh
