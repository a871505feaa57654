"""One row per sequence of up to four (B, N, H) tensors, ``t[b, rows[b]]``, in one launch each
way (aten's gather costs one kernel per tensor forward and new_zeros + scatter_add per tensor
backward).

Forward: one program per (sequence, column block) copies that sequence's row of every tensor
into its (B, 1, H) output. Backward: one program per (sequence, row block, column block)
writes every tensor's full (B, N, H) gradient over those rows: the incoming (B, 1, H)
gradient at row ``rows[b]``, zeros elsewhere (every element written once, so the output needs
no zero-fill launch and no atomics).

A row outside ``[0, N)`` (the model's positions come from checked lengths; checking here
would read the device) gives NaN forward and no gradient, rather than a read or write out of
bounds.
"""

import torch
import triton
import triton.language as tl

MAX_TENSORS = 4
# elements one program handles per tensor: forward at most a 1024-column block of one row,
# backward a (rows, columns) tile of 4096
FWD_BLOCK_H = 1024
BWD_TILE = 4096


@triton.jit
def _take_one(src, stride_b, stride_n, dst, sequence, row, valid, columns, col_ok, hidden):
    # row is clamped into range: the load stays in bounds, the NaN marks an invalid row (written
    # inline: a NaN global would fail Triton's per-launch check that globals are unchanged)
    values = tl.load(src + sequence * stride_b + row * stride_n + columns, mask=col_ok)
    tl.store(dst + sequence * hidden + columns, tl.where(valid, values, float("nan")), mask=col_ok)


@triton.jit
def _take_rows_fwd_kernel(rows_ptr, x0, x1, x2, x3, out0, out1, out2, out3,
                          stride_b0, stride_n0, stride_b1, stride_n1, stride_b2, stride_n2, stride_b3, stride_n3,
                          seq_len, hidden, COUNT: tl.constexpr, BLOCK_H: tl.constexpr):
    sequence = tl.program_id(0).to(tl.int64)
    columns = tl.program_id(1) * BLOCK_H + tl.arange(0, BLOCK_H)
    col_ok = columns < hidden
    row = tl.load(rows_ptr + sequence).to(tl.int64)
    valid = (row >= 0) & (row < seq_len)
    row = tl.where(valid, row, 0)
    _take_one(x0, stride_b0, stride_n0, out0, sequence, row, valid, columns, col_ok, hidden)
    if COUNT > 1:
        _take_one(x1, stride_b1, stride_n1, out1, sequence, row, valid, columns, col_ok, hidden)
    if COUNT > 2:
        _take_one(x2, stride_b2, stride_n2, out2, sequence, row, valid, columns, col_ok, hidden)
    if COUNT > 3:
        _take_one(x3, stride_b3, stride_n3, out3, sequence, row, valid, columns, col_ok, hidden)


@triton.jit
def _scatter_one(grad, stride_b, stride_h, dst, sequence, positions, at_row, columns, tile_ok, seq_len, hidden):
    # every program reads the incoming row (H elements beside its BLOCK_N * H stores) and
    # places it where its positions hold rows[b]
    incoming = tl.load(grad + sequence * stride_b + columns * stride_h, mask=columns < hidden, other=0.0)
    values = tl.where(at_row, incoming, 0.0).to(dst.dtype.element_ty)
    tl.store(dst + sequence * seq_len * hidden + positions * hidden + columns, values, mask=tile_ok)


@triton.jit
def _take_rows_bwd_kernel(rows_ptr, grad0, grad1, grad2, grad3, out0, out1, out2, out3,
                          stride_b0, stride_h0, stride_b1, stride_h1, stride_b2, stride_h2, stride_b3, stride_h3,
                          seq_len, hidden, COUNT: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_H: tl.constexpr):
    sequence = tl.program_id(0).to(tl.int64)
    positions = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)[:, None]
    columns = tl.program_id(2) * BLOCK_H + tl.arange(0, BLOCK_H)[None, :]
    tile_ok = (positions < seq_len) & (columns < hidden)
    row = tl.load(rows_ptr + sequence).to(tl.int64)
    at_row = positions == row  # (an out-of-range row matches no position: all zeros)
    _scatter_one(grad0, stride_b0, stride_h0, out0, sequence, positions, at_row, columns, tile_ok,
                 seq_len, hidden)
    if COUNT > 1:
        _scatter_one(grad1, stride_b1, stride_h1, out1, sequence, positions, at_row, columns, tile_ok,
                     seq_len, hidden)
    if COUNT > 2:
        _scatter_one(grad2, stride_b2, stride_h2, out2, sequence, positions, at_row, columns, tile_ok,
                     seq_len, hidden)
    if COUNT > 3:
        _scatter_one(grad3, stride_b3, stride_h3, out3, sequence, positions, at_row, columns, tile_ok,
                     seq_len, hidden)


def _padded(values: list, fill, per_tensor: int = 1) -> list:
    """One tensor's ``per_tensor`` values each, padded to MAX_TENSORS tensors with ``fill`` (the
    kernel never touches the padding)."""
    return list(values) + [fill] * (MAX_TENSORS * per_tensor - len(values))


def _take_rows_fwd(rows, tensors):
    """rows: (B,) integer, contiguous; tensors: 1 to 4 (B, N, H) tensors (each its own dtype), unit
    column stride -> their rows, (B, 1, H) contiguous each."""
    batch, seq_len, hidden = tensors[0].shape
    outs = [torch.empty((batch, 1, hidden), device=t.device, dtype=t.dtype) for t in tensors]
    if batch == 0 or hidden == 0:
        return outs
    strides = [s for t in tensors for s in (t.stride(0), t.stride(1))]
    block_h = min(FWD_BLOCK_H, max(16, triton.next_power_of_2(hidden)))
    _take_rows_fwd_kernel[(batch, triton.cdiv(hidden, block_h))](
        rows, *_padded(tensors, tensors[0]), *_padded(outs, outs[0]), *_padded(strides, 0, 2), seq_len, hidden,
        COUNT=len(tensors), BLOCK_H=block_h, num_warps=1 if block_h <= 256 else 4)
    return outs


def _take_rows_bwd(rows, grads, seq_len):
    """grads: 1 to 4 (B, 1, H) gradients, each its own dtype (any strides) -> each input's (B, seq_len,
    H) gradient, contiguous: the gradient at row rows[b], zeros elsewhere."""
    batch, _, hidden = grads[0].shape
    outs = [torch.empty((batch, seq_len, hidden), device=g.device, dtype=g.dtype) for g in grads]
    if batch == 0 or seq_len == 0 or hidden == 0:
        return outs
    strides = [s for g in grads for s in (g.stride(0), g.stride(2))]
    block_h = min(512, max(16, triton.next_power_of_2(hidden)))
    block_n = min(max(1, triton.next_power_of_2(seq_len)), BWD_TILE // block_h)
    grid = (batch, triton.cdiv(seq_len, block_n), triton.cdiv(hidden, block_h))
    _take_rows_bwd_kernel[grid](rows, *_padded(grads, grads[0]), *_padded(outs, outs[0]), *_padded(strides, 0, 2),
                                seq_len, hidden, COUNT=len(grads), BLOCK_N=block_n, BLOCK_H=block_h, num_warps=4)
    return outs
