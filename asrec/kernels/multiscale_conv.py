"""The seasonal branch's three convolutions (SPEC section 4) as one op, forward and backward.

The published ``Conv1d(N, N, k)`` layers (k = 3, 5, 7, 'same' padding) treat the N
positions as channels and slide along the hidden axis:

    out_c[b, o, h] = bias_c[o] + sum_i sum_t W_c[o, i, t] * x[b, i, h + t - pad_c]

Forward: one program per (hidden block, output-channel block, sequence) (all on grid axis 0) computes all three
outputs as implicit GEMMs. The seven shifted input tiles (shift -3..3) are loaded once per
input-channel block and feed every convolution whose kernel reaches that shift (7 + 5 + 3
tile products for 7 tile loads), where three separate convolutions read the input three times.
Backward: dx in one kernel of the same shape (the transposed correlation; it reads the
three output gradients and sums their contributions in registers); the weight gradients
in one kernel whose programs each own one tap of one convolution and one (out, in) block,
reducing over a slice of the batch, and a second kernel that sums the slices in a fixed
order (no atomics: deterministic) straight into the (N, N, k) layouts. The bias gradients
ride in the same two launches: the weight kernel's programs of each convolution's first tap
and first input-channel block also sum the output-gradient tiles they load anyway over
(slice, hidden), and the second stage sums those partials over the slices in the same fixed
order (no separate reduction over the (3, B, N, H) gradient).
The products are ``tl.dot`` at ``dot_precision()`` (IEEE float32 under torch's "highest"
float32 matmul precision, TF32 under "high", as cuDNN's convolutions), accumulated in float32.

Layouts: x (B, N, H) contiguous; W_small (N, N, 3), W_middle (N, N, 5), W_large (N, N, 7)
contiguous; biases three (N,); outputs and their gradient stacked (3, B, N, H) in the
order small, middle, large.
"""

import torch
import triton
import triton.language as tl

from ._common import dot_precision

KERNEL_SIZES = (3, 5, 7)
TAPS = sum(KERNEL_SIZES)  # 15: the weight-gradient kernel's taps, small's first, then middle's, large's

BLOCKS = dict(BLOCK_O=32, BLOCK_I=32, BLOCK_H=64)
# Launch options, chosen by compiling for sm_90 and sm_80 (tests/triton_aot): the seven
# shifted loads per input block make the software pipeline's buffers large. Forward: two
# stages (86 KiB of shared memory) over 16-output-channel blocks and 8 warps: with IEEE
# products, 32-channel blocks and 4 warps spilled ~1.2 KB per thread on sm_90 (the three
# accumulators and the shifted tiles; 8 warps or 32-column blocks spilled more); 16-channel
# blocks spill nothing with either product. The reduction (over input channels, in blocks of
# BLOCK_I, tap by tap) is the same, so is every output element's summation order.
# Input gradient: fifteen loads per block, so one stage (12 KiB; two need 180 KiB) and 8
# warps (no register spills).
FORWARD_BLOCKS = dict(BLOCKS, BLOCK_O=16)
FORWARD_LAUNCH = dict(num_warps=8, num_stages=2)
INPUT_GRAD_LAUNCH = dict(num_warps=8, num_stages=1)
WEIGHT_GRAD_LAUNCH = dict(num_warps=4, num_stages=2)


def unsupported_shape(seq_len: int, hidden: int):
    """None: the kernels tile every axis, so any (seq_len, hidden) runs."""
    return None


@triton.jit
def _weight_tile(w_ptr, out_idx, in_idx, channels: tl.constexpr, KERNEL: tl.constexpr, tap: tl.constexpr, ok):
    """W[out_idx, in_idx, tap] of a (channels, channels, KERNEL) weight as a float32 tile."""
    return tl.load(w_ptr + (out_idx * channels + in_idx) * KERNEL + tap, mask=ok, other=0.0).to(tl.float32)


@triton.jit
def _shifted_rows(base, rows, row_ok, cols, shift, hidden: tl.constexpr):
    """Rows ``rows`` (R, 1) of a (rows, hidden) matrix at columns ``cols + shift`` (1, C); zero where
    ``row_ok`` is false and outside the columns (the convolutions' zero padding)."""
    src = cols + shift
    ok = row_ok & (src >= 0) & (src < hidden)
    return tl.load(base + rows * hidden + src, mask=ok, other=0.0).to(tl.float32)


@triton.jit
def _sequence_program(channels: tl.constexpr, hidden: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_H: tl.constexpr):
    """This program's (sequence (int64), channel block, hidden block) in a one-axis grid of
    batch * channel blocks * hidden blocks (``sequence_grid``), hidden blocks fastest, then
    channel blocks: the order of a (hidden blocks, channel blocks, batch) grid, with the batch
    on axis 0, which allows 2^31 - 1 programs (axis 2 stops at 65,535 sequences)."""
    program = tl.program_id(0)
    h_blocks = (hidden + BLOCK_H - 1) // BLOCK_H
    c_blocks = (channels + BLOCK_C - 1) // BLOCK_C
    return (program // (h_blocks * c_blocks)).to(tl.int64), (program // h_blocks) % c_blocks, program % h_blocks


@triton.jit
def _multiscale_conv_fwd_kernel(
    x_ptr, w_small_ptr, w_middle_ptr, w_large_ptr, b_small_ptr, b_middle_ptr, b_large_ptr, out_ptr, plane,
    channels: tl.constexpr, hidden: tl.constexpr,
    BLOCK_O: tl.constexpr, BLOCK_I: tl.constexpr, BLOCK_H: tl.constexpr, DOT_PRECISION: tl.constexpr,
):
    b, o_block, h_block = _sequence_program(channels, hidden, BLOCK_O, BLOCK_H)
    outs = o_block * BLOCK_O + tl.arange(0, BLOCK_O)[:, None]
    cols = h_block * BLOCK_H + tl.arange(0, BLOCK_H)[None, :]
    x_base = x_ptr + b * channels * hidden
    acc_small = tl.zeros((BLOCK_O, BLOCK_H), tl.float32)
    acc_middle = tl.zeros((BLOCK_O, BLOCK_H), tl.float32)
    acc_large = tl.zeros((BLOCK_O, BLOCK_H), tl.float32)
    for start in range(0, channels, BLOCK_I):
        in_rows = start + tl.arange(0, BLOCK_I)[:, None]
        in_cols = start + tl.arange(0, BLOCK_I)[None, :]
        w_ok = (outs < channels) & (in_cols < channels)
        for tap in tl.static_range(7):  # shift = tap - 3, the large kernel's tap
            x = _shifted_rows(x_base, in_rows, in_rows < channels, cols, tap - 3, hidden)
            w = _weight_tile(w_large_ptr, outs, in_cols, channels, 7, tap, w_ok)
            acc_large += tl.dot(w, x, input_precision=DOT_PRECISION)
            if tap >= 1:
                if tap <= 5:
                    w = _weight_tile(w_middle_ptr, outs, in_cols, channels, 5, tap - 1, w_ok)
                    acc_middle += tl.dot(w, x, input_precision=DOT_PRECISION)
            if tap >= 2:
                if tap <= 4:
                    w = _weight_tile(w_small_ptr, outs, in_cols, channels, 3, tap - 2, w_ok)
                    acc_small += tl.dot(w, x, input_precision=DOT_PRECISION)
    out_ok = (outs < channels) & (cols < hidden)
    offsets = (b * channels + outs) * hidden + cols
    dtype = out_ptr.dtype.element_ty
    o_ok = outs < channels
    acc_small += tl.load(b_small_ptr + outs, mask=o_ok, other=0.0).to(tl.float32)
    acc_middle += tl.load(b_middle_ptr + outs, mask=o_ok, other=0.0).to(tl.float32)
    acc_large += tl.load(b_large_ptr + outs, mask=o_ok, other=0.0).to(tl.float32)
    tl.store(out_ptr + offsets, acc_small.to(dtype), mask=out_ok)
    tl.store(out_ptr + plane + offsets, acc_middle.to(dtype), mask=out_ok)
    tl.store(out_ptr + offsets + plane + plane, acc_large.to(dtype), mask=out_ok)


@triton.jit
def _multiscale_conv_bwd_input_kernel(
    grad_ptr, w_small_ptr, w_middle_ptr, w_large_ptr, dx_ptr, plane,
    channels: tl.constexpr, hidden: tl.constexpr,
    BLOCK_O: tl.constexpr, BLOCK_I: tl.constexpr, BLOCK_H: tl.constexpr, DOT_PRECISION: tl.constexpr,
):
    """dx[b, i, h] = sum_c sum_o sum_t W_c[o, i, t] grad_c[b, o, h - (t - pad_c)]."""
    b, i_block, h_block = _sequence_program(channels, hidden, BLOCK_I, BLOCK_H)
    in_rows = i_block * BLOCK_I + tl.arange(0, BLOCK_I)[:, None]
    cols = h_block * BLOCK_H + tl.arange(0, BLOCK_H)[None, :]
    small_base = grad_ptr + b * channels * hidden
    middle_base = small_base + plane
    large_base = middle_base + plane
    acc = tl.zeros((BLOCK_I, BLOCK_H), tl.float32)
    for start in range(0, channels, BLOCK_O):
        out_rows = start + tl.arange(0, BLOCK_O)[:, None]
        out_cols = start + tl.arange(0, BLOCK_O)[None, :]
        w_ok = (in_rows < channels) & (out_cols < channels)
        out_ok = out_rows < channels
        for tap in tl.static_range(7):  # grad read at column h - shift, shift = tap - 3
            w_t = _weight_tile(w_large_ptr, out_cols, in_rows, channels, 7, tap, w_ok)
            acc += tl.dot(w_t, _shifted_rows(large_base, out_rows, out_ok, cols, 3 - tap, hidden),
                          input_precision=DOT_PRECISION)
            if tap >= 1:
                if tap <= 5:
                    w_t = _weight_tile(w_middle_ptr, out_cols, in_rows, channels, 5, tap - 1, w_ok)
                    acc += tl.dot(w_t, _shifted_rows(middle_base, out_rows, out_ok, cols, 3 - tap, hidden),
                                  input_precision=DOT_PRECISION)
            if tap >= 2:
                if tap <= 4:
                    w_t = _weight_tile(w_small_ptr, out_cols, in_rows, channels, 3, tap - 2, w_ok)
                    acc += tl.dot(w_t, _shifted_rows(small_base, out_rows, out_ok, cols, 3 - tap, hidden),
                                  input_precision=DOT_PRECISION)
    tl.store(dx_ptr + (b * channels + in_rows) * hidden + cols, acc, mask=(in_rows < channels) & (cols < hidden))


@triton.jit
def _multiscale_conv_bwd_weight_kernel(
    x_ptr, grad_ptr, part_ptr, bias_part_ptr, batch, plane,
    channels: tl.constexpr, hidden: tl.constexpr, BATCH_PER_SPLIT: tl.constexpr,
    BLOCK_O: tl.constexpr, BLOCK_I: tl.constexpr, BLOCK_H: tl.constexpr, DOT_PRECISION: tl.constexpr,
):
    """part[split, j, o, i] = sum over this split's sequences and every h of grad_c[b, o, h] x[b, i, h + shift],
    for tap j of the 15 (small's 3, middle's 5, large's 7): conv c, shift = tap - pad_c; and
    bias_part[split, c, o] = sum over this split's sequences and every h of grad_c[b, o, h], written
    by the programs of conv c's first tap and first input-channel block."""
    j = tl.program_id(0)
    conv = (j >= 3).to(tl.int32) + (j >= 8).to(tl.int32)
    first_tap = tl.where(conv == 0, 0, tl.where(conv == 1, 3, 8))
    shift = j - first_tap - (conv + 1)
    o_blocks = tl.cdiv(channels, BLOCK_O)
    outs = (tl.program_id(1) % o_blocks) * BLOCK_O + tl.arange(0, BLOCK_O)[:, None]
    ins = (tl.program_id(1) // o_blocks) * BLOCK_I + tl.arange(0, BLOCK_I)[:, None]
    split = tl.program_id(2)
    acc = tl.zeros((BLOCK_O, BLOCK_I), tl.float32)
    # every program sums its gradient tiles (one row reduction per tile, next to a BLOCK_I-deep
    # product: cheap, and no branch in the loop); only the bias owners store the sums
    bias_acc = tl.zeros((BLOCK_O,), tl.float32)
    for k in range(0, BATCH_PER_SPLIT):
        b = split * BATCH_PER_SPLIT + k
        seq = b.to(tl.int64) * channels * hidden
        # the last slice may be short: past the batch, no row is read (an integer bound, not a
        # scalar-bool mask, which some Triton interpreters reject)
        row_limit = tl.where(b < batch, channels, 0)
        for h_start in range(0, hidden, BLOCK_H):
            cols = h_start + tl.arange(0, BLOCK_H)[None, :]
            g = tl.load(grad_ptr + conv.to(tl.int64) * plane + seq + outs * hidden + cols,
                        mask=(outs < row_limit) & (cols < hidden), other=0.0).to(tl.float32)
            x = _shifted_rows(x_ptr + seq, ins, ins < row_limit, cols, shift, hidden)
            acc += tl.dot(g, tl.trans(x), input_precision=DOT_PRECISION)
            bias_acc += tl.sum(g, axis=1)
    out_cols = (tl.program_id(1) // o_blocks) * BLOCK_I + tl.arange(0, BLOCK_I)[None, :]
    base = part_ptr + (split * tl.num_programs(0) + j).to(tl.int64) * channels * channels  # (slice, tap, o, i)
    tl.store(base + outs * channels + out_cols, acc, mask=(outs < channels) & (out_cols < channels))
    # the bias owner: conv's first tap, first input block (an integer bound, not a scalar-bool mask)
    owner = (j == first_tap) & (tl.program_id(1) // o_blocks == 0)
    bias_rows = (tl.program_id(1) % o_blocks) * BLOCK_O + tl.arange(0, BLOCK_O)
    tl.store(bias_part_ptr + (split * 3 + conv) * channels + bias_rows, bias_acc,
             mask=bias_rows < tl.where(owner, channels, 0))  # (slice, conv, o)


@triton.jit
def _reduce_taps(part_ptr, dw_ptr, pairs, ok, slices, first_tap: tl.constexpr, KERNEL: tl.constexpr,
                 channels: tl.constexpr, TAP_COUNT: tl.constexpr):
    """dW[o, i, t] = sum over slices, in slice order, of part[slice, first_tap + t, o, i] for the
    (o, i) pairs ``pairs`` (flat o * channels + i) of one (channels, channels, KERNEL) weight."""
    for t in tl.static_range(KERNEL):
        acc = tl.zeros(pairs.shape, tl.float32)
        for split in range(0, slices):
            # slices * TAPS * N * N stays far below 2^31: weight_gradient_slices caps the programs
            acc += tl.load(part_ptr + (split * TAP_COUNT + first_tap + t) * channels * channels + pairs, mask=ok,
                           other=0.0)
        tl.store(dw_ptr + pairs * KERNEL + t, acc, mask=ok)


@triton.jit
def _multiscale_conv_weight_reduce_kernel(part_ptr, bias_part_ptr, dw_small_ptr, dw_middle_ptr, dw_large_ptr,
                                          dbias_ptr, slices, channels: tl.constexpr, TAP_COUNT: tl.constexpr,
                                          BLOCK: tl.constexpr):
    """The weight and bias gradients' second stage: one program per block of (o, i) pairs and
    convolution sums the slices' partials (slice, tap, o, i) in a fixed order and writes the
    (N, N, k) layout; the first program of each convolution also sums its bias partials
    (slice, conv, o), in slice order, into dbias (3, N)."""
    pairs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    ok = pairs < channels * channels
    conv = tl.program_id(1)
    if tl.program_id(0) == 0:
        for start in range(0, channels, BLOCK):
            outs = start + tl.arange(0, BLOCK)
            out_ok = outs < channels
            bias = tl.zeros((BLOCK,), tl.float32)
            for split in range(0, slices):
                bias += tl.load(bias_part_ptr + (split * 3 + conv) * channels + outs, mask=out_ok, other=0.0)
            tl.store(dbias_ptr + conv * channels + outs, bias, mask=out_ok)
    if conv == 0:
        _reduce_taps(part_ptr, dw_small_ptr, pairs, ok, slices, 0, 3, channels, TAP_COUNT)
    elif conv == 1:
        _reduce_taps(part_ptr, dw_middle_ptr, pairs, ok, slices, 3, 5, channels, TAP_COUNT)
    else:
        _reduce_taps(part_ptr, dw_large_ptr, pairs, ok, slices, 8, 7, channels, TAP_COUNT)


def sequence_grid(batch: int, channels: int, hidden: int, block_c: int, block_h: int) -> tuple:
    """The forward's and the input gradient's grid: one axis of batch * channel blocks * hidden
    blocks programs (``_sequence_program``)."""
    return (batch * triton.cdiv(channels, block_c) * triton.cdiv(hidden, block_h),)


def _multiscale_conv_fwd(x: torch.Tensor, weights: tuple, biases: tuple) -> torch.Tensor:
    """x: (B, N, H) contiguous; weights: the three contiguous (N, N, k); biases: the three (N,).
    -> (3, B, N, H) in x's dtype: small, middle, large."""
    batch, channels, hidden = x.shape
    out = torch.empty((3, batch, channels, hidden), device=x.device, dtype=x.dtype)
    grid = sequence_grid(batch, channels, hidden, FORWARD_BLOCKS["BLOCK_O"], FORWARD_BLOCKS["BLOCK_H"])
    _multiscale_conv_fwd_kernel[grid](x, *weights, *biases, out, out[0].numel(), channels=channels, hidden=hidden,
                                      **FORWARD_BLOCKS, DOT_PRECISION=dot_precision(), **FORWARD_LAUNCH)
    return out


def _channel_blocks(channels: int) -> int:
    """(output, input) channel tile pairs of one tap's (N, N) weight gradient."""
    return triton.cdiv(channels, BLOCKS["BLOCK_O"]) * triton.cdiv(channels, BLOCKS["BLOCK_I"])


def weight_gradient_slices(batch: int, channels: int) -> tuple:
    """(sequences per slice, slices) of the weight-gradient reduction: enough programs to
    fill a large GPU (about 1,000), each slice at least 8 sequences long (the last may be
    shorter). A function of the shape only, so the summation order (hence the result) is the
    same on every run."""
    wanted = max(1, min(triton.cdiv(batch, 8), triton.cdiv(1024, TAPS * _channel_blocks(channels))))
    per_slice = triton.cdiv(batch, wanted)
    return per_slice, triton.cdiv(batch, per_slice)


def _multiscale_conv_bwd(x: torch.Tensor, weights: tuple, grad: torch.Tensor) -> tuple:
    """x: (B, N, H), weights as forward, grad: (3, B, N, H) contiguous.
    -> dx (B, N, H), the three weight gradients (N, N, k) and the bias gradients (3, N), float32."""
    batch, channels, hidden = x.shape
    dx = torch.empty((batch, channels, hidden), device=x.device, dtype=torch.float32)
    grid = sequence_grid(batch, channels, hidden, BLOCKS["BLOCK_I"], BLOCKS["BLOCK_H"])
    _multiscale_conv_bwd_input_kernel[grid](grad, *weights, dx, dx.numel(), channels=channels, hidden=hidden, **BLOCKS,
                                            DOT_PRECISION=dot_precision(), **INPUT_GRAD_LAUNCH)
    per_slice, slices = weight_gradient_slices(batch, channels)
    parts = torch.empty((slices, TAPS, channels, channels), device=x.device, dtype=torch.float32)
    bias_parts = torch.empty((slices, 3, channels), device=x.device, dtype=torch.float32)
    grid = (TAPS, _channel_blocks(channels), slices)
    _multiscale_conv_bwd_weight_kernel[grid](x, grad, parts, bias_parts, batch, x.numel(), channels=channels,
                                             hidden=hidden, BATCH_PER_SPLIT=per_slice, **BLOCKS,
                                             DOT_PRECISION=dot_precision(), **WEIGHT_GRAD_LAUNCH)
    dweights = tuple(torch.empty((channels, channels, k), device=x.device, dtype=torch.float32) for k in KERNEL_SIZES)
    dbiases = torch.empty((3, channels), device=x.device, dtype=torch.float32)
    block = 1024
    _multiscale_conv_weight_reduce_kernel[(triton.cdiv(channels * channels, block), 3)](
        parts, bias_parts, *dweights, dbiases, slices, channels=channels, TAP_COUNT=TAPS, BLOCK=block, num_warps=4)
    return dx, *dweights, dbiases
