"""Device helpers shared by the kernels: the linear-recurrence scan, dropout, torch's lerp.

Dropout is counter-based (Philox via ``tl.rand``): the keep bit of element ``i`` is a pure
function of ``(seed, offset + i)``, so backward regenerates the forward mask instead of
storing it. ``seed`` and ``offset`` are read from a (2,) int64 device tensor (``rng_ptr``),
never passed as numbers: a launch captured in a CUDA graph then reads whatever state the
tensor holds at replay (asrec.ops._common.dropout_rng).
"""

import torch
import triton
import triton.language as tl

# the exact gelu's constants; tl.constexpr, as compiled kernels may read no other globals
# (the CPU interpreter reads any, so only a compile for a GPU target catches a plain float here)
SQRT_HALF = tl.constexpr(0.7071067811865476)
INV_SQRT_2PI = tl.constexpr(0.3989422804014327)


@triton.jit
def _recurrence_combine(decay_left, value_left, decay_right, value_right):
    # composes e -> decay_left * e + value_left, then e -> decay_right * e + value_right
    return decay_left * decay_right, decay_right * value_left + value_right


@triton.jit
def _ema_scan(values, alpha, REVERSE: tl.constexpr):
    """``e[n] = alpha * e[n-1] + values[n]`` along axis 0 (``REVERSE``: from the last row back).

    values: (BLOCK_N, BLOCK_H) float32 with zero rows past the sequence end; alpha: scalar.
    """
    decay = tl.zeros_like(values) + alpha
    _, scanned = tl.associative_scan((decay, values), 0, _recurrence_combine, reverse=REVERSE)
    return scanned


@triton.jit
def _load_rows_f32(ptr, rows, row_ok, cols, col_ok, width):
    """(R, C) float32: rows ``rows`` (R,) of a row-major (n, width) tensor, columns ``cols``
    (C,), zero where ``row_ok`` or ``col_ok`` is False. Pass int64 ``rows`` where
    rows * width may pass 2^31 (item tables); the hidden rows of a batch stay int32."""
    return tl.load(ptr + rows[:, None] * width + cols[None, :], mask=row_ok[:, None] & col_ok[None, :],
                   other=0.0).to(tl.float32)


@triton.jit
def _layer_norm_rows(x, col_ok, hidden, eps):
    """LayerNorm statistics over axis 1 of a (rows, BLOCK_H) float32 tile whose columns past
    ``hidden`` are masked by col_ok: (normalised x, zero in masked columns; rstd (rows, 1))."""
    mean = tl.sum(tl.where(col_ok, x, 0.0), axis=1)[:, None] / hidden
    centred = tl.where(col_ok, x - mean, 0.0)
    rstd = 1.0 / tl.sqrt(tl.sum(centred * centred, axis=1)[:, None] / hidden + eps)
    return centred * rstd, rstd


@triton.jit
def _lerp(start, end, weight):
    """torch.lerp's arithmetic (ATen's vectorised CPU and CUDA kernels): one fused multiply-add
    from the nearer end, ``start + w (end - start)`` for |w| < 0.5, else ``end - (1 - w)(end - start)``."""
    small = tl.abs(weight) < 0.5
    coefficient = tl.where(small, weight, weight - 1.0)
    base = tl.where(small, start, end)
    return tl.fma(coefficient, end - start, base)


@triton.jit
def _dropout_scale(rng_ptr, offsets, p):
    """Inverted-dropout factor per element: ``1/(1-p)`` where kept, 0 where dropped.

    rng_ptr: (2,) int64 (seed, offset); offsets: the elements' integer counters relative to
    ``offset`` (the sum is 64-bit: tl.rand draws Philox4x32 at counter (lo, hi, 0, 0), as
    csrc/common/philox.h does).
    """
    seed = tl.load(rng_ptr)
    base = tl.load(rng_ptr + 1)
    keep = tl.rand(seed, base + offsets) >= p
    return tl.where(keep, 1.0 / (1.0 - p), 0.0)


def whole_sequence_blocks(seq_len: int, hidden: int) -> dict:
    """(BLOCK_N, BLOCK_H) covering one whole (seq_len, hidden) sequence."""
    return dict(BLOCK_N=max(16, triton.next_power_of_2(seq_len)), BLOCK_H=max(16, triton.next_power_of_2(hidden)))


def whole_sequence_unsupported(seq_len: int, hidden: int, limit: int, what: str):
    """None if one sequence fits a ``limit``-element register tile, else the reason."""
    blocks = whole_sequence_blocks(seq_len, hidden)
    if blocks["BLOCK_N"] * blocks["BLOCK_H"] > limit:
        return (f"the Triton {what} holds one whole sequence in registers: next_pow2(seq_len) * next_pow2(hidden) "
                f"must be <= {limit}, got seq_len={seq_len}, hidden={hidden}")
    return None


def dot_precision() -> str:
    """``input_precision`` of the GEMM-like ``tl.dot`` products (attention, convolutions, DFTs),
    following ``torch.get_float32_matmul_precision()`` as cuBLAS and cuDNN do: "highest" -> IEEE
    float32 products (exact parity with the reference), "high" or "medium" -> TF32 tensor cores
    (float32 accumulation either way). Read at launch time, so it is a constexpr of the launch."""
    return "ieee" if torch.get_float32_matmul_precision() == "highest" else "tf32"


@triton.jit
def _fixed_order_column_sum(base, rows, cols, columns, col_ok, BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr):
    """(1, BLOCK_C) sums over the rows of a (rows, cols) float32 array at ``base`` for the columns
    ``columns`` (1, BLOCK_C): row blocks in order, then a tree sum across the block, so the result
    is the same on every run (no atomics). Every deterministic second stage uses it."""
    acc = tl.zeros((BLOCK_R, BLOCK_C), tl.float32)
    for start in range(0, rows, BLOCK_R):
        row = start + tl.arange(0, BLOCK_R)[:, None]
        acc += tl.load(base + row * cols + columns, mask=(row < rows) & col_ok, other=0.0)
    return tl.sum(acc, axis=0)[None, :]


@triton.jit
def _column_sums_kernel(part_ptr, out_ptr, rows, cols, BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr):
    """``out[g, c] = sum_r part[g, r, c]``: the second stage of a deterministic two-stage reduction
    (part: (groups, rows, cols) per-program partial results, contiguous). One program per
    (column block, group) adds the rows in a fixed order (``_fixed_order_column_sum``)."""
    group = tl.program_id(1).to(tl.int64)
    columns = tl.program_id(0) * BLOCK_C + tl.arange(0, BLOCK_C)[None, :]
    col_ok = columns < cols
    total = _fixed_order_column_sum(part_ptr + group * rows * cols, rows, cols, columns, col_ok, BLOCK_R, BLOCK_C)
    tl.store(out_ptr + group * cols + columns, total, mask=col_ok)


def column_sums(parts: torch.Tensor) -> torch.Tensor:
    """parts: (groups, rows, cols) float32 contiguous -> (groups, cols) float32 sums over rows, in
    one launch for every group (where ``parts.sum(1)`` per group would be one kernel each)."""
    groups, rows, cols = parts.shape
    out = torch.empty((groups, cols), device=parts.device, dtype=torch.float32)
    block_c = min(128, max(16, triton.next_power_of_2(cols)))
    _column_sums_kernel[(triton.cdiv(cols, block_c), groups)](parts, out, rows, cols, BLOCK_R=32, BLOCK_C=block_c,
                                                               num_warps=4)
    return out
