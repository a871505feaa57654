"""The seasonal branch's combination, over-smoothing contrast and gelu (SPEC section 4) as
one Triton kernel forward and one backward.

    c   = sum_i scale_i[n] * (filtered_i + conv_i)              i = small, middle, large
    xn  = c / max(||c[n, :]||_2, 1e-12);   e = exp(xn^2)
    sim = e / sum_H(e) + e / sum_N(e)      (softmax over hidden + over positions, all N positions,
                                            padded ones too; xn^2 lies in [0, 1], so exp needs no
                                            max subtraction, as in the reference)
    out = gelu(origin * c - contrast * sim * c)

One program owns one sequence and walks it in blocks of whole rows (BLOCK_R x BLOCK_H, of
ROW_TILE elements): the softmax over hidden is local to a row, the one over positions needs
the column sums S = sum_N e of the whole sequence, so the forward walks twice (the column
sums, then the activation, recomputing c from the inputs), and hands S on to backward (a
(batch, hidden) float32 tensor). (A whole (64, 256) or (256, 64) sequence tile per live value
spilled up to 7 KB of registers per thread.) The output is stored in its own dtype. With
``ROWS`` (the model's last layer: one position ``rows[b]`` per sequence is read) the second
walk is one block of rows starting at rows[b], and only that row is stored, into a
(batch, 1, hidden) output (no aten gather after the kernel).

Backward walks twice more, recomputing the forward from the same six inputs and S: first for
the other column sum the softmax over positions needs, T = sum_N dsim * e / S, with the two
scalars' per-sequence sums; then for the gradient of the combination, written for each
branch (``scale_i[n] * dc``, which is both the filtered and the conv input's gradient), and
the position scales' per-sequence sums. The per-sequence sums (batch, 3 N + 2) are reduced
over the batch by one deterministic second-stage launch (_common.column_sums).
With ``ROWS`` the incoming gradient is (batch, 1, hidden), read at row rows[b] only (zero
elsewhere: no new_zeros + scatter_add to widen it), and the first walk is the one block of rows
starting there: every other row's gelu gradient is zero, so its sums gather nothing there.

A position outside ``[0, N)`` (the model's come from checked lengths; checking here would
read the device) gives a NaN row forward and no gradient, rather than a read or write out of
bounds (as kernels/take_rows.py).
"""

import torch
import triton
import triton.language as tl

from ._common import INV_SQRT_2PI, SQRT_HALF, column_sums, whole_sequence_blocks

# next_pow2(seq_len) * next_pow2(hidden) at most: the shapes the kernels are tested and tuned for
# (the row walk itself needs only one (BLOCK_R, BLOCK_H) block of whole rows in registers)
MAX_SEQUENCE_TILE = 16384
# elements of one forward (BLOCK_R, BLOCK_H) register tile; backward's are half that: it holds
# about twice the live tiles (at 4096 it spilled 140-236 B per thread at 255 registers, at 2048
# none at about 220, sm_90 and sm_80, 8 warps)
ROW_TILE = 4096
NUM_WARPS = 8


def contrast_blocks(seq_len: int, hidden: int, backward: bool = False) -> dict:
    """(BLOCK_R, BLOCK_H): rows per step of the walk along the sequence, and all of hidden."""
    block_h = whole_sequence_blocks(seq_len, hidden)["BLOCK_H"]
    tile = ROW_TILE // 2 if backward else ROW_TILE
    return dict(BLOCK_R=max(8, min(triton.next_power_of_2(seq_len), tile // block_h)), BLOCK_H=block_h)


def unsupported_shape(seq_len: int, hidden: int):
    """None if the kernels take a (seq_len, hidden) sequence, else the reason."""
    blocks = whole_sequence_blocks(seq_len, hidden)
    if blocks["BLOCK_N"] * blocks["BLOCK_H"] > MAX_SEQUENCE_TILE:
        return (f"the Triton contrast takes next_pow2(seq_len) * next_pow2(hidden) <= {MAX_SEQUENCE_TILE}, "
                f"got seq_len={seq_len}, hidden={hidden}")
    return None


@triton.jit
def _branch_sum(filtered_ptr, conv_ptr, scale_ptr, rows, inner, in_bounds, seq_len):
    """(filtered + conv) of one branch and its per-position scale (BLOCK_R, 1)."""
    pair = (tl.load(filtered_ptr + inner, mask=in_bounds, other=0.0).to(tl.float32)
            + tl.load(conv_ptr + inner, mask=in_bounds, other=0.0).to(tl.float32))
    return pair, tl.load(scale_ptr + rows, mask=rows < seq_len, other=0.0).to(tl.float32)


@triton.jit
def _block_combination(f0_ptr, f1_ptr, f2_ptr, c0_ptr, c1_ptr, c2_ptr, f_base, c_base, scale_ptr, rows, cols,
                       seq_len, hidden):
    """One block of rows of the sequence at f_base / c_base: masks, element offsets within the
    sequence, the three (filtered + conv) pairs, their (BLOCK_R, 1) position scales and c."""
    row_ok = rows < seq_len
    in_bounds = row_ok & (cols < hidden)
    inner = rows * hidden + cols
    pair0, scale0 = _branch_sum(f0_ptr + f_base, c0_ptr + c_base, scale_ptr, rows, inner, in_bounds, seq_len)
    pair1, scale1 = _branch_sum(f1_ptr + f_base, c1_ptr + c_base, scale_ptr + seq_len, rows, inner, in_bounds,
                                seq_len)
    pair2, scale2 = _branch_sum(f2_ptr + f_base, c2_ptr + c_base, scale_ptr + 2 * seq_len, rows, inner, in_bounds,
                                seq_len)
    c = scale0 * pair0 + scale1 * pair1 + scale2 * pair2
    return row_ok, in_bounds, inner, pair0, pair1, pair2, scale0, scale1, scale2, c


@triton.jit
def _squared_exp(c, in_bounds):
    """-> (xn, ||c[n, :]||_2 (BLOCK_R, 1), e = exp(xn^2), zero outside the sequence)."""
    norm = tl.sqrt(tl.sum(c * c, axis=1))[:, None]
    xn = c / tl.maximum(norm, 1e-12)
    return xn, norm, tl.where(in_bounds, tl.exp(xn * xn), 0.0)


@triton.jit
def _contrast_block(c, row_ok, in_bounds, inv_column_sum, origin, contrast):
    """The contrast of one block of rows, given 1 / sum_N e (1, BLOCK_H; zero past hidden) ->
    (xn, norm, softmax over hidden, softmax over positions, V)."""
    xn, norm, e = _squared_exp(c, in_bounds)
    over_hidden = e * (1.0 / tl.where(row_ok, tl.sum(e, axis=1)[:, None], 1.0))
    over_positions = e * inv_column_sum
    value = origin * c - contrast * (over_hidden + over_positions) * c
    return xn, norm, over_hidden, over_positions, value


@triton.jit
def _column_sum_walk(f0_ptr, f1_ptr, f2_ptr, c0_ptr, c1_ptr, c2_ptr, f_base, c_base, scale_ptr, cols, seq_len,
                     hidden, BLOCK_R: tl.constexpr, BLOCK_H: tl.constexpr):
    """sum_N exp(xn^2) of the sequence (1, BLOCK_H), zero past hidden."""
    column_sum = tl.zeros((1, BLOCK_H), tl.float32)
    for start in range(0, seq_len, BLOCK_R):
        rows = start + tl.arange(0, BLOCK_R)[:, None]
        _, in_bounds, _, _, _, _, _, _, _, c = _block_combination(
            f0_ptr, f1_ptr, f2_ptr, c0_ptr, c1_ptr, c2_ptr, f_base, c_base, scale_ptr, rows, cols, seq_len, hidden)
        _, _, e = _squared_exp(c, in_bounds)
        column_sum += tl.sum(e, axis=0)[None, :]
    return column_sum


@triton.jit
def _output_row(rows_ptr, seq, seq_len):
    """rows[seq] clamped into [0, seq_len) (loads stay in bounds) and whether it was in range."""
    row = tl.load(rows_ptr + seq).to(tl.int64)
    valid = (row >= 0) & (row < seq_len)
    return tl.where(valid, row, 0), valid


@triton.jit
def _gelu(value):
    return 0.5 * value * (1.0 + tl.erf(value * SQRT_HALF))


@triton.jit
def _contrast_gelu_fwd_kernel(
    f0_ptr, f1_ptr, f2_ptr, c0_ptr, c1_ptr, c2_ptr, f_stride, c_stride, scale_ptr, origin_ptr, contrast_ptr,
    rows_ptr, out_ptr, column_sum_ptr, seq_len, hidden, ROWS: tl.constexpr, BLOCK_R: tl.constexpr,
    BLOCK_H: tl.constexpr,
):
    seq = tl.program_id(0).to(tl.int64)
    f_base, c_base, out_base = seq * f_stride, seq * c_stride, seq * seq_len * hidden
    cols = tl.arange(0, BLOCK_H)[None, :]
    col_ok = cols < hidden
    origin = tl.load(origin_ptr).to(tl.float32)
    contrast = tl.load(contrast_ptr).to(tl.float32)
    column_sum = _column_sum_walk(f0_ptr, f1_ptr, f2_ptr, c0_ptr, c1_ptr, c2_ptr, f_base, c_base, scale_ptr, cols,
                                  seq_len, hidden, BLOCK_R, BLOCK_H)
    tl.store(column_sum_ptr + seq * hidden + cols, column_sum, mask=col_ok)
    inv_column_sum = tl.where(col_ok, 1.0 / tl.where(col_ok, column_sum, 1.0), 0.0)
    if ROWS:
        # one block of rows from rows[b] (every step is row-wise given the column sums): its
        # first row into out (B, 1, H), the rest of the block unused
        row, valid = _output_row(rows_ptr, seq, seq_len)
        rows = row + tl.arange(0, BLOCK_R)[:, None]
        row_ok, in_bounds, _, _, _, _, _, _, _, c = _block_combination(
            f0_ptr, f1_ptr, f2_ptr, c0_ptr, c1_ptr, c2_ptr, f_base, c_base, scale_ptr, rows, cols, seq_len, hidden)
        _, _, _, _, value = _contrast_block(c, row_ok, in_bounds, inv_column_sum, origin, contrast)
        # NaN marks a position out of range (written inline: Triton checks that globals stay unchanged)
        activated = tl.where(valid, _gelu(value), float("nan"))
        tl.store(out_ptr + seq * hidden + (rows - row) * hidden + cols, activated.to(out_ptr.dtype.element_ty),
                 mask=(rows == row) & col_ok)
    else:
        # the second walk from the last block back: the blocks just read are the likeliest still in cache
        last = tl.cdiv(seq_len, BLOCK_R) - 1
        for step in range(0, last + 1):
            rows = (last - step) * BLOCK_R + tl.arange(0, BLOCK_R)[:, None]
            row_ok, in_bounds, inner, _, _, _, _, _, _, c = _block_combination(
                f0_ptr, f1_ptr, f2_ptr, c0_ptr, c1_ptr, c2_ptr, f_base, c_base, scale_ptr, rows, cols, seq_len,
                hidden)
            _, _, _, _, value = _contrast_block(c, row_ok, in_bounds, inv_column_sum, origin, contrast)
            tl.store(out_ptr + out_base + inner, _gelu(value).to(out_ptr.dtype.element_ty), mask=in_bounds)


@triton.jit
def _value_gradient(grad_ptr, offsets, grad_ok, value):
    """d V = grad * gelu'(V), zero where grad_ok is false (outside the sequence; with ROWS, off the row)."""
    grad = tl.load(grad_ptr + offsets, mask=grad_ok, other=0.0).to(tl.float32)
    gelu_slope = 0.5 * (1.0 + tl.erf(value * SQRT_HALF)) + value * INV_SQRT_2PI * tl.exp(-0.5 * value * value)
    return tl.where(grad_ok, grad * gelu_slope, 0.0)


@triton.jit
def _grad_at(seq, rows, row, target, cols, inner, in_bounds, out_base, hidden, ROWS: tl.constexpr):
    """Offsets into the incoming gradient and where it is nonzero: (B, N, H) at every in-bounds
    element, or with ROWS (B, 1, H) at row ``target`` only (-1 for a position out of range:
    nowhere; an integer, not a scalar bool in the mask, which Triton's interpreter rejects)."""
    if ROWS:
        return seq * hidden + (rows - row) * hidden + cols, in_bounds & (rows == target)
    else:
        return out_base + inner, in_bounds


@triton.jit
def _contrast_gelu_bwd_kernel(
    f0_ptr, f1_ptr, f2_ptr, c0_ptr, c1_ptr, c2_ptr, f_stride, c_stride, scale_ptr, origin_ptr, contrast_ptr,
    rows_ptr, column_sum_ptr, grad_ptr, dpair_ptr, part_ptr, batch, seq_len, hidden,
    ROWS: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_H: tl.constexpr,
):
    seq = tl.program_id(0).to(tl.int64)
    f_base, c_base, out_base = seq * f_stride, seq * c_stride, seq * seq_len * hidden
    cols = tl.arange(0, BLOCK_H)[None, :]
    col_ok = cols < hidden
    origin = tl.load(origin_ptr).to(tl.float32)
    contrast = tl.load(contrast_ptr).to(tl.float32)
    column_sum = tl.load(column_sum_ptr + seq * hidden + cols, mask=col_ok, other=1.0)
    inv_column_sum = tl.where(col_ok, 1.0 / column_sum, 0.0)

    # walk 1: sum_N dsim * softmax over positions (per column), and the scalars' sums; with ROWS
    # only row rows[b] has a nonzero gelu gradient: the walk is the one block starting there
    row, target = 0, 0
    walk_start, walk_stop = 0, seq_len
    if ROWS:
        row, valid = _output_row(rows_ptr, seq, seq_len)
        target = tl.where(valid, row, -1)
        walk_start, walk_stop = row, row + 1
    column_dot = tl.zeros((1, BLOCK_H), tl.float32)
    dorigin = tl.zeros((1, BLOCK_H), tl.float32)
    dcontrast = tl.zeros((1, BLOCK_H), tl.float32)
    for start in range(walk_start, walk_stop, BLOCK_R):
        rows = start + tl.arange(0, BLOCK_R)[:, None]
        row_ok, in_bounds, inner, _, _, _, _, _, _, c = _block_combination(
            f0_ptr, f1_ptr, f2_ptr, c0_ptr, c1_ptr, c2_ptr, f_base, c_base, scale_ptr, rows, cols, seq_len, hidden)
        _, _, over_hidden, over_positions, value = _contrast_block(c, row_ok, in_bounds, inv_column_sum, origin,
                                                                   contrast)
        grad_offsets, grad_ok = _grad_at(seq, rows, row, target, cols, inner, in_bounds, out_base, hidden, ROWS)
        dvalue = _value_gradient(grad_ptr, grad_offsets, grad_ok, value)
        column_dot += tl.sum(-contrast * dvalue * c * over_positions, axis=0)[None, :]
        dorigin += tl.sum(dvalue * c, axis=0)[None, :]
        dcontrast += tl.sum(dvalue * (over_hidden + over_positions) * c, axis=0)[None, :]

    # walk 2 (from the last block back): dc, the branches' gradients and the position scales' sums
    # 64-bit: B * N * H passes 2^31 from B = 42,000 at N = 200, H = 256 (the i32 arguments' product would wrap)
    plane = tl.cast(batch, tl.int64) * seq_len * hidden
    part = part_ptr + seq * (3 * seq_len + 2)
    last = tl.cdiv(seq_len, BLOCK_R) - 1
    for step in range(0, last + 1):
        rows = (last - step) * BLOCK_R + tl.arange(0, BLOCK_R)[:, None]
        row_ok, in_bounds, inner, pair0, pair1, pair2, scale0, scale1, scale2, c = _block_combination(
            f0_ptr, f1_ptr, f2_ptr, c0_ptr, c1_ptr, c2_ptr, f_base, c_base, scale_ptr, rows, cols, seq_len, hidden)
        xn, norm, over_hidden, over_positions, value = _contrast_block(c, row_ok, in_bounds, inv_column_sum, origin,
                                                                       contrast)
        grad_offsets, grad_ok = _grad_at(seq, rows, row, target, cols, inner, in_bounds, out_base, hidden, ROWS)
        dvalue = _value_gradient(grad_ptr, grad_offsets, grad_ok, value)
        similarity = over_hidden + over_positions
        dsimilarity = -contrast * dvalue * c
        dq = (over_hidden * (dsimilarity - tl.sum(dsimilarity * over_hidden, axis=1)[:, None])
              + over_positions * (dsimilarity - column_dot))
        dq = tl.where(in_bounds, dq, 0.0)
        dxn = 2.0 * xn * dq
        denominator = tl.maximum(norm, 1e-12)
        # F.normalize divides by max(norm, eps): below eps the denominator is a constant
        dnormalised = tl.where(norm > 1e-12, dxn - xn * tl.sum(dxn * xn, axis=1)[:, None], dxn) / denominator
        dc = tl.where(in_bounds, (origin - contrast * similarity) * dvalue + dnormalised, 0.0)
        out = out_base + inner
        dtype = dpair_ptr.dtype.element_ty
        tl.store(dpair_ptr + out, (scale0 * dc).to(dtype), mask=in_bounds)
        tl.store(dpair_ptr + plane + out, (scale1 * dc).to(dtype), mask=in_bounds)
        tl.store(dpair_ptr + 2 * plane + out, (scale2 * dc).to(dtype), mask=in_bounds)
        tl.store(part + rows, tl.sum(dc * pair0, axis=1)[:, None], mask=row_ok)
        tl.store(part + seq_len + rows, tl.sum(dc * pair1, axis=1)[:, None], mask=row_ok)
        tl.store(part + 2 * seq_len + rows, tl.sum(dc * pair2, axis=1)[:, None], mask=row_ok)
    tl.store(part + 3 * seq_len, tl.sum(tl.sum(dorigin, axis=1), axis=0))
    tl.store(part + 3 * seq_len + 1, -tl.sum(tl.sum(dcontrast, axis=1), axis=0))


def _strides(filtered, convs):
    """Batch strides of the three filtered and three conv inputs (each must share one)."""
    return filtered[0].stride(0), convs[0].stride(0)


def branch_grad_dtype(filtered: list, convs: list) -> torch.dtype:
    """The dtype of d(pair): the inputs' own when all six share one, else float32."""
    dtypes = {t.dtype for t in list(filtered) + list(convs)}
    return dtypes.pop() if len(dtypes) == 1 else torch.float32


def _contrast_gelu_fwd(filtered: list, convs: list, position_scales, origin_scale, contrast_scale, rows=None):
    """filtered, convs: three (B, N, H) each, rows contiguous, one batch stride per list; rows:
    None or (B,) contiguous integer positions -> ((B, N, H), or (B, 1, H) with rows, in convs'
    dtype, the column sums sum_N exp(xn^2) (B, H) float32 for backward)."""
    batch, seq_len, hidden = convs[0].shape
    out = torch.empty((batch, 1 if rows is not None else seq_len, hidden), device=convs[0].device,
                      dtype=convs[0].dtype)
    column_sums_out = torch.empty((batch, hidden), device=convs[0].device, dtype=torch.float32)
    _contrast_gelu_fwd_kernel[(batch,)](*filtered, *convs, *_strides(filtered, convs), position_scales, origin_scale,
                                        contrast_scale, out if rows is None else rows, out, column_sums_out, seq_len,
                                        hidden, ROWS=rows is not None, **contrast_blocks(seq_len, hidden),
                                        num_warps=NUM_WARPS)
    return out, column_sums_out


def _contrast_gelu_bwd(filtered: list, convs: list, position_scales, origin_scale, contrast_scale, column_sum, grad,
                       rows=None):
    """column_sum: the forward's (B, H); grad: (B, N, H), or (B, 1, H) with rows (B,) -> d(pair)
    (3, B, N, H) (the gradient of filtered_i and of conv_i; in branch_grad_dtype) and the batch
    sums (3 N + 2,) float32: d position_scales (3, N), then d origin_scale, d contrast_scale. Two
    launches: the kernel and one column_sums."""
    batch, seq_len, hidden = convs[0].shape
    device = convs[0].device
    dpair = torch.empty((3, batch, seq_len, hidden), device=device, dtype=branch_grad_dtype(filtered, convs))
    parts = torch.empty((1, batch, 3 * seq_len + 2), device=device, dtype=torch.float32)
    _contrast_gelu_bwd_kernel[(batch,)](*filtered, *convs, *_strides(filtered, convs), position_scales, origin_scale,
                                        contrast_scale, grad if rows is None else rows, column_sum, grad, dpair, parts,
                                        batch, seq_len, hidden, ROWS=rows is not None,
                                        **contrast_blocks(seq_len, hidden, backward=True), num_warps=NUM_WARPS)
    return dpair, column_sums(parts)[0]
