"""Masked attention with the seasonal gate in its epilogue (SPEC sections 4-5), flash style,
forward and backward in Triton, for one branch or for both branches of a layer in one launch.

    c   = drop(softmax(q k^T / sqrt(d) + key_bias)) v        (bidirectional, additive padding bias)
    out = (1 - sig(i)) c + sig(i) gelu(c + sig(r) v)   with  [r, i] = [v, c] W^T + b
                                                     (GATE: on branch 0 only, the seasonal one)

Every tensor is addressed as a (branch, batch, head, row, head_dim) view with its own
strides (unit stride along head_dim), so the kernels read q, k, v straight out of one
stacked projection (batch, N, 6H) and write the output merged-heads (branch, batch, N, H)
and the gradients back into the stacked layout: no split, transpose or merge copies.
Forward: one program per (query block, batch*head, branch) (grid axis 0: the (batch*head,
query block) pairs; axis 1: the branch) streams the keys in blocks with
an online softmax, so the (N, N) probabilities never reach HBM; it writes the output, the
ungated context c (the gate's backward needs it) and the row log-sum-exp.
Backward, deterministic (no atomics): a preprocessing kernel reads each branch's output
gradient (one tensor per branch, no stacking) and runs the gate backward per query block
(writing dc, the gate's contribution to dv, the rows of dz = [dr, di] and [v, c] whose product
dz^T [v, c] is the gate's weight gradient, one GEMM, the block's column sums of dz, and
delta = rowsum(dc * c)); one kernel per key block accumulates dk and dv over the query blocks
(adding the gate's dv), and a few of its programs add the column sums up into the gate's bias
gradient in a fixed order; one per query block accumulates dq over the key blocks. Attention
dropout is counter-based on the (branch*batch*head, query, key) index, regenerated in backward.
The products are ``tl.dot`` at ``dot_precision()`` (IEEE float32 under torch's "highest"
float32 matmul precision, TF32 under "high"), accumulated in float32.
"""

import torch
import triton
import triton.language as tl

from ._common import INV_SQRT_2PI, SQRT_HALF, _dropout_scale, _fixed_order_column_sum, dot_precision

# With the gate, the forward and the backward preprocessing hold its four (d, d) weight tiles
# besides the attention tiles: 8 warps spread them over twice the threads (at d = 64 with IEEE
# products, 4 warps spill ~2 KB per thread in the forward; 8 warps ~0.5 KB, tests/triton_aot).
# The gated preprocessing runs eight (rows, d) x (d, d) products (the gate's forward again and
# its backward): with 32-row blocks the FMA products' operand fragments spill ~16 KB per thread
# even over 8 warps; 16-row blocks (PREPROCESS_GATE_BLOCK_M) halve every (rows, d) tile and
# the threads each output element needs, and spill at most a few bytes. Each row's arithmetic is
# the same at any block height (the products reduce over d only), so the results are too.
PREPROCESS_GATE_BLOCK_M = 16
# The gate's bias gradient db = sum over rows of dz: the preprocessing programs write their
# blocks' column sums ((q blocks * batch*heads, 2d) partials), and the dk/dv launch after it adds
# them up (its first programs, one 16-column slab each, rows in 128-row blocks in order): the
# second stage of the reduction rides in a launch that runs anyway instead of one of its own.
# 16 columns: at d = 64 the 128 columns spread over 8 programs (each reading its slab of the
# ~2 MB of partials at the published shapes, while the grid's other programs run).
GATE_BIAS_SUM_ROWS = 128
GATE_BIAS_SUM_COLS = 16


def attention_blocks(head_dim: int) -> dict:
    return dict(BLOCK_M=32, BLOCK_N=32, BLOCK_D=max(16, triton.next_power_of_2(head_dim)))


def attention_grid(rows: int, block: int, batch_heads: int, branches: int) -> tuple:
    """The launch grid of every attention kernel: (row blocks * batch*heads, branches), the
    (batch*head, row block) pairs on axis 0 (``_program_coordinates``)."""
    return (triton.cdiv(rows, block) * batch_heads, branches)


def unsupported_shape(head_dim: int):
    if head_dim > 128:
        return f"the Triton attention takes head_dim <= 128, got {head_dim}"
    return None


@triton.jit
def _scores(q, k_t, bias_ptr, keys, k_len: tl.constexpr, scale, DOT_PRECISION: tl.constexpr):
    """(BLOCK_M, BLOCK_N) scores of q (BLOCK_M, BLOCK_D) against k_t (BLOCK_D, BLOCK_N), -inf past k_len."""
    key_ok = keys < k_len
    s = tl.dot(q, k_t, input_precision=DOT_PRECISION) * scale + tl.load(bias_ptr + keys, mask=key_ok, other=0.0)
    return tl.where(key_ok, s, float("-inf"))


@triton.jit
def _gate_weights(w_ptr, head_dim: tl.constexpr, TRANSPOSED: tl.constexpr, BLOCK_D: tl.constexpr):
    """The four (d, d) blocks of W (2d, 2d): W_rv, W_rc, W_iv, W_ic (rows: r/i outputs; columns:
    v/c inputs), each loaded as [out, in] or, TRANSPOSED, as [in, out]."""
    a = tl.arange(0, BLOCK_D)[:, None]
    b = tl.arange(0, BLOCK_D)[None, :]
    ok = (a < head_dim) & (b < head_dim)
    if TRANSPOSED:
        out_idx, in_idx = b, a
    else:
        out_idx, in_idx = a, b
    width = 2 * head_dim
    w_rv = tl.load(w_ptr + out_idx * width + in_idx, mask=ok, other=0.0).to(tl.float32)
    w_rc = tl.load(w_ptr + out_idx * width + head_dim + in_idx, mask=ok, other=0.0).to(tl.float32)
    w_iv = tl.load(w_ptr + (head_dim + out_idx) * width + in_idx, mask=ok, other=0.0).to(tl.float32)
    w_ic = tl.load(w_ptr + (head_dim + out_idx) * width + head_dim + in_idx, mask=ok, other=0.0).to(tl.float32)
    return w_rv, w_rc, w_iv, w_ic


@triton.jit
def _gate_preactivations(value, context, w_ptr, b_ptr, head_dim: tl.constexpr, BLOCK_D: tl.constexpr,
                         DOT_PRECISION: tl.constexpr):
    w_rv, w_rc, w_iv, w_ic = _gate_weights(w_ptr, head_dim, True, BLOCK_D)
    cols = tl.arange(0, BLOCK_D)[None, :]
    col_ok = cols < head_dim
    reset = (tl.dot(value, w_rv, input_precision=DOT_PRECISION) + tl.dot(context, w_rc, input_precision=DOT_PRECISION)
             + tl.load(b_ptr + cols, mask=col_ok, other=0.0).to(tl.float32))
    update = (tl.dot(value, w_iv, input_precision=DOT_PRECISION) + tl.dot(context, w_ic, input_precision=DOT_PRECISION)
              + tl.load(b_ptr + head_dim + cols, mask=col_ok, other=0.0).to(tl.float32))
    return reset, update


@triton.jit
def _program_coordinates(heads, batch_heads, blocks: tl.constexpr):
    """This program's (branch, batch, head, bh, gbh, block) in a (blocks * batch_heads, branches)
    grid: bh = batch * heads + head, gbh = branch * batch_heads + bh indexes the float32 buffers
    the kernels share (context, lse, dcontext, delta); block: its row block of ``blocks``.
    Axis 0 runs over every (batch*head, row block), row blocks fastest: CUDA allows 2^31 - 1
    programs there but only 65,535 on axes 1 and 2, which batch * heads passes from a batch of
    32,768 at two heads (see ``attention_grid``)."""
    program = tl.program_id(0)
    bh = (program // blocks).to(tl.int64)
    branch = tl.program_id(1).to(tl.int64)
    return branch, bh // heads, bh % heads, bh, branch * batch_heads + bh, program % blocks


@triton.jit
def _head_offset(branch, batch, head, s_r, s_b, s_h):
    """Element offset of one (branch, batch, head) slice of a strided (branch, batch, head, row, d) view."""
    return branch * s_r + batch * s_b + head * s_h


@triton.jit
def _query_block(q_base, q_sn, block, q_len: tl.constexpr, head_dim: tl.constexpr, BLOCK_M: tl.constexpr,
                 BLOCK_D: tl.constexpr):
    """Query block ``block``'s rows (BLOCK_M, 1), the head-dim columns (1, BLOCK_D) and rows
    (BLOCK_D, 1), their masks, and the float32 query block."""
    rows = block * BLOCK_M + tl.arange(0, BLOCK_M)[:, None]
    dcols = tl.arange(0, BLOCK_D)[None, :]
    drows = tl.arange(0, BLOCK_D)[:, None]
    row_ok, d_ok = rows < q_len, dcols < head_dim
    q = tl.load(q_base + rows * q_sn + dcols, mask=row_ok & d_ok, other=0.0)
    return rows, dcols, drows, row_ok, d_ok, q.to(tl.float32)


@triton.jit
def _attention_fwd_kernel(
    q_ptr, k_ptr, v_ptr, bias_ptr, w_ptr, b_ptr, out_ptr, context_ptr, lse_ptr,
    q_sr, q_sb, q_sh, q_sn, k_sr, k_sb, k_sh, k_sn, v_sr, v_sb, v_sh, v_sn, o_sr, o_sb, o_sh, o_sn,
    heads, batch_heads, scale, rng_ptr, dropout_p,
    q_len: tl.constexpr, k_len: tl.constexpr, head_dim: tl.constexpr, GATE: tl.constexpr, DROPOUT: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr, DOT_PRECISION: tl.constexpr,
):
    branch, batch, head, bh, gbh, block = _program_coordinates(heads, batch_heads, (q_len + BLOCK_M - 1) // BLOCK_M)
    q_base = q_ptr + _head_offset(branch, batch, head, q_sr, q_sb, q_sh)
    rows, dcols, drows, row_ok, d_ok, q = _query_block(q_base, q_sn, block, q_len, head_dim, BLOCK_M, BLOCK_D)
    k_base = k_ptr + _head_offset(branch, batch, head, k_sr, k_sb, k_sh)
    v_base = v_ptr + _head_offset(branch, batch, head, v_sr, v_sb, v_sh)
    bias_base = bias_ptr + batch * k_len
    m_i = tl.full((BLOCK_M, 1), float("-inf"), tl.float32)
    l_i = tl.zeros((BLOCK_M, 1), tl.float32)
    acc = tl.zeros((BLOCK_M, BLOCK_D), tl.float32)
    for start in range(0, k_len, BLOCK_N):
        keys = start + tl.arange(0, BLOCK_N)[None, :]
        k_t = tl.load(k_base + keys * k_sn + drows, mask=(keys < k_len) & (drows < head_dim), other=0.0)
        s = _scores(q, k_t.to(tl.float32), bias_base, keys, k_len, scale, DOT_PRECISION)
        m_new = tl.maximum(m_i, tl.max(s, axis=1)[:, None])
        rescale = tl.exp(m_i - m_new)
        p = tl.exp(s - m_new)
        l_i = l_i * rescale + tl.sum(p, axis=1)[:, None]
        if DROPOUT:
            p = p * _dropout_scale(rng_ptr, (gbh * q_len + rows) * k_len + keys, dropout_p)
        key_rows = start + tl.arange(0, BLOCK_N)[:, None]
        v = tl.load(v_base + key_rows * v_sn + dcols, mask=(key_rows < k_len) & d_ok, other=0.0).to(tl.float32)
        acc = acc * rescale + tl.dot(p, v, input_precision=DOT_PRECISION)
        m_i = m_new
    context = acc / l_i
    tl.store(lse_ptr + gbh * q_len + rows, m_i + tl.log(l_i), mask=row_ok)
    tl.store(context_ptr + (gbh * q_len + rows) * head_dim + dcols, context, mask=row_ok & d_ok)
    out = context
    if GATE:
        if branch == 0:
            value = tl.load(v_base + rows * v_sn + dcols, mask=row_ok & d_ok, other=0.0).to(tl.float32)
            reset, update = _gate_preactivations(value, context, w_ptr, b_ptr, head_dim, BLOCK_D, DOT_PRECISION)
            candidate = context + tl.sigmoid(reset) * value
            candidate = 0.5 * candidate * (1.0 + tl.erf(candidate * SQRT_HALF))
            out = context + tl.sigmoid(update) * (candidate - context)
    out_base = out_ptr + _head_offset(branch, batch, head, o_sr, o_sb, o_sh)
    tl.store(out_base + rows * o_sn + dcols, out.to(out_ptr.dtype.element_ty), mask=row_ok & d_ok)


@triton.jit
def _attention_bwd_preprocess_kernel(
    v_ptr, w_ptr, b_ptr, context_ptr, grad0_ptr, grad1_ptr, dcontext_ptr, dvalue_ptr, delta_ptr, dz_ptr, vc_ptr,
    db_part_ptr, v_sr, v_sb, v_sh, v_sn, g_sb, g_sh, g_sn, heads, batch_heads,
    q_len: tl.constexpr, head_dim: tl.constexpr, GATE: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_D: tl.constexpr,
    DOT_PRECISION: tl.constexpr,
):
    """grad0_ptr / grad1_ptr: branch 0's / branch 1's output gradient, (batch, head, row, d)
    views with the same strides g_* (one tensor per branch, so the caller stacks nothing)."""
    blocks = (q_len + BLOCK_M - 1) // BLOCK_M
    branch, batch, head, bh, gbh, block = _program_coordinates(heads, batch_heads, blocks)
    rows = block * BLOCK_M + tl.arange(0, BLOCK_M)[:, None]
    dcols = tl.arange(0, BLOCK_D)[None, :]
    row_ok, d_ok = rows < q_len, dcols < head_dim
    in_bounds = row_ok & d_ok
    offsets = (gbh * q_len + rows) * head_dim + dcols
    context = tl.load(context_ptr + offsets, mask=in_bounds, other=0.0)
    if branch == 0:
        grad_ptr = grad0_ptr
    else:
        grad_ptr = grad1_ptr
    grad_base = grad_ptr + batch * g_sb + head * g_sh
    grad = tl.load(grad_base + rows * g_sn + dcols, mask=in_bounds, other=0.0).to(tl.float32)
    dcontext = grad
    if GATE:
        if branch == 0:
            value_base = v_ptr + _head_offset(branch, batch, head, v_sr, v_sb, v_sh)
            value = tl.load(value_base + rows * v_sn + dcols, mask=in_bounds, other=0.0)
            value = value.to(tl.float32)
            reset, update = _gate_preactivations(value, context, w_ptr, b_ptr, head_dim, BLOCK_D, DOT_PRECISION)
            s_reset, s_update = tl.sigmoid(reset), tl.sigmoid(update)
            pre = context + s_reset * value
            activated = 0.5 * pre * (1.0 + tl.erf(pre * SQRT_HALF))
            slope = 0.5 * (1.0 + tl.erf(pre * SQRT_HALF)) + pre * INV_SQRT_2PI * tl.exp(-0.5 * pre * pre)
            dpre = grad * s_update * slope
            dreset = tl.where(in_bounds, dpre * value * s_reset * (1.0 - s_reset), 0.0)
            dupdate = tl.where(in_bounds, grad * (activated - context) * s_update * (1.0 - s_update), 0.0)
            w_rv, w_rc, w_iv, w_ic = _gate_weights(w_ptr, head_dim, False, BLOCK_D)
            dcontext = (grad * (1.0 - s_update) + dpre + tl.dot(dreset, w_rc, input_precision=DOT_PRECISION)
                        + tl.dot(dupdate, w_ic, input_precision=DOT_PRECISION))
            dvalue = (dpre * s_reset + tl.dot(dreset, w_rv, input_precision=DOT_PRECISION)
                      + tl.dot(dupdate, w_iv, input_precision=DOT_PRECISION))
            tl.store(dvalue_ptr + (bh * q_len + rows) * head_dim + dcols, dvalue, mask=in_bounds)
            # the gate's dW (2d, 2d) = dz^T [v, c] and db = sum dz, over all batch*heads*q_len rows,
            # are one GEMM and one sum on the launcher's side: rows of dz = [dreset, dupdate] and
            # [v, c] go to (batch*heads*q_len, 2d) buffers
            width = 2 * head_dim
            gate_rows = (bh * q_len + rows) * width + dcols
            tl.store(dz_ptr + gate_rows, dreset, mask=in_bounds)
            tl.store(dz_ptr + gate_rows + head_dim, dupdate, mask=in_bounds)
            tl.store(vc_ptr + gate_rows, value, mask=in_bounds)
            tl.store(vc_ptr + gate_rows + head_dim, context, mask=in_bounds)
            # db's first stage: this block's column sums of dz (rows past q_len are zero)
            part = db_part_ptr + (bh * blocks + block) * width + tl.arange(0, BLOCK_D)
            col_ok = tl.arange(0, BLOCK_D) < head_dim
            tl.store(part, tl.sum(dreset, axis=0), mask=col_ok)
            tl.store(part + head_dim, tl.sum(dupdate, axis=0), mask=col_ok)
    dcontext = tl.where(in_bounds, dcontext, 0.0)
    tl.store(dcontext_ptr + offsets, dcontext, mask=in_bounds)
    tl.store(delta_ptr + gbh * q_len + rows, tl.sum(dcontext * context, axis=1)[:, None], mask=row_ok)


@triton.jit
def _column_slab_sums(part_ptr, out_ptr, rows, cols: tl.constexpr, program, programs, SUM_ROWS: tl.constexpr,
                      SUM_COLS: tl.constexpr):
    """out[c] = sum_r part[r, c] of a (rows, cols) float32 array, program ``program`` of
    ``programs`` taking the SUM_COLS-column slabs program, program + programs, ... (none if
    program >= the slab count), each in ``column_sums``' fixed order: the same result on every
    run, no atomics."""
    for slab in range(program, tl.cdiv(cols, SUM_COLS), programs):
        columns = slab * SUM_COLS + tl.arange(0, SUM_COLS)[None, :]
        col_ok = columns < cols
        tl.store(out_ptr + columns,
                 _fixed_order_column_sum(part_ptr, rows, cols, columns, col_ok, SUM_ROWS, SUM_COLS), mask=col_ok)


@triton.jit
def _attention_bwd_dkdv_kernel(
    q_ptr, k_ptr, v_ptr, bias_ptr, dcontext_ptr, lse_ptr, delta_ptr, dvalue_ptr, dk_ptr, dv_ptr, db_part_ptr, db_ptr,
    q_sr, q_sb, q_sh, q_sn, k_sr, k_sb, k_sh, k_sn, v_sr, v_sb, v_sh, v_sn, d_sr, d_sb, d_sh, d_sn,
    heads, batch_heads, scale, rng_ptr, dropout_p, db_part_rows,
    q_len: tl.constexpr, k_len: tl.constexpr, head_dim: tl.constexpr, GATE: tl.constexpr, DROPOUT: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr, DOT_PRECISION: tl.constexpr,
    SUM_ROWS: tl.constexpr, SUM_COLS: tl.constexpr,
):
    """dk, dv of one key block; strides d_*: dk's and dv's (branch, batch, head, key) layout. With
    the gate, branch 0's programs also finish its bias gradient: db (2d,) = the column sums of the
    (db_part_rows, 2d) partials the preprocessing wrote, one SUM_COLS-column slab per program."""
    branch, batch, head, bh, gbh, block = _program_coordinates(heads, batch_heads, (k_len + BLOCK_N - 1) // BLOCK_N)
    key_rows = block * BLOCK_N + tl.arange(0, BLOCK_N)[:, None]
    keys = block * BLOCK_N + tl.arange(0, BLOCK_N)[None, :]
    dcols = tl.arange(0, BLOCK_D)[None, :]
    drows = tl.arange(0, BLOCK_D)[:, None]
    d_ok = dcols < head_dim
    key_mask = (keys < k_len) & (drows < head_dim)
    k_base = k_ptr + _head_offset(branch, batch, head, k_sr, k_sb, k_sh)
    v_base = v_ptr + _head_offset(branch, batch, head, v_sr, v_sb, v_sh)
    k_t = tl.load(k_base + keys * k_sn + drows, mask=key_mask, other=0.0).to(tl.float32)
    v_t = tl.load(v_base + keys * v_sn + drows, mask=key_mask, other=0.0).to(tl.float32)
    q_base = q_ptr + _head_offset(branch, batch, head, q_sr, q_sb, q_sh)
    dk = tl.zeros((BLOCK_N, BLOCK_D), tl.float32)
    dv = tl.zeros((BLOCK_N, BLOCK_D), tl.float32)
    for start in range(0, q_len, BLOCK_M):
        rows = start + tl.arange(0, BLOCK_M)[:, None]
        row_ok = rows < q_len
        q = tl.load(q_base + rows * q_sn + dcols, mask=row_ok & d_ok, other=0.0).to(tl.float32)
        dcontext = tl.load(dcontext_ptr + (gbh * q_len + rows) * head_dim + dcols, mask=row_ok & d_ok, other=0.0)
        lse = tl.load(lse_ptr + gbh * q_len + rows, mask=row_ok, other=0.0)
        delta = tl.load(delta_ptr + gbh * q_len + rows, mask=row_ok, other=0.0)
        s = _scores(q, k_t, bias_ptr + batch * k_len, keys, k_len, scale, DOT_PRECISION)
        p = tl.where(row_ok, tl.exp(s - lse), 0.0)
        dp = tl.dot(dcontext, v_t, input_precision=DOT_PRECISION)
        if DROPOUT:
            drop = _dropout_scale(rng_ptr, (gbh * q_len + rows) * k_len + keys, dropout_p)
            dv += tl.dot(tl.trans(p * drop), dcontext, input_precision=DOT_PRECISION)
            dp = dp * drop
        else:
            dv += tl.dot(tl.trans(p), dcontext, input_precision=DOT_PRECISION)
        ds = p * (dp - delta)
        dk += tl.dot(tl.trans(ds), q, input_precision=DOT_PRECISION) * scale
    key_ok = (key_rows < k_len) & d_ok
    if GATE:
        if branch == 0:  # the gate reads v at every query row (q_len == k_len): its dv joins here
            dv += tl.load(dvalue_ptr + (bh * k_len + key_rows) * head_dim + dcols, mask=key_ok, other=0.0)
    out = _head_offset(branch, batch, head, d_sr, d_sb, d_sh) + key_rows * d_sn + dcols
    tl.store(dk_ptr + out, dk, mask=key_ok)
    tl.store(dv_ptr + out, dv, mask=key_ok)
    if GATE:
        if branch == 0:
            _column_slab_sums(db_part_ptr, db_ptr, db_part_rows, 2 * head_dim, tl.program_id(0), tl.num_programs(0),
                              SUM_ROWS, SUM_COLS)


@triton.jit
def _attention_bwd_dq_kernel(
    q_ptr, k_ptr, v_ptr, bias_ptr, dcontext_ptr, lse_ptr, delta_ptr, dq_ptr,
    q_sr, q_sb, q_sh, q_sn, k_sr, k_sb, k_sh, k_sn, v_sr, v_sb, v_sh, v_sn, d_sr, d_sb, d_sh, d_sn,
    heads, batch_heads, scale, rng_ptr, dropout_p,
    q_len: tl.constexpr, k_len: tl.constexpr, head_dim: tl.constexpr, DROPOUT: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr, DOT_PRECISION: tl.constexpr,
):
    """dq of one query block; strides d_*: dq's (branch, batch, head, query) layout."""
    branch, batch, head, bh, gbh, block = _program_coordinates(heads, batch_heads, (q_len + BLOCK_M - 1) // BLOCK_M)
    q_base = q_ptr + _head_offset(branch, batch, head, q_sr, q_sb, q_sh)
    rows, dcols, drows, row_ok, d_ok, q = _query_block(q_base, q_sn, block, q_len, head_dim, BLOCK_M, BLOCK_D)
    k_base = k_ptr + _head_offset(branch, batch, head, k_sr, k_sb, k_sh)
    v_base = v_ptr + _head_offset(branch, batch, head, v_sr, v_sb, v_sh)
    dcontext = tl.load(dcontext_ptr + (gbh * q_len + rows) * head_dim + dcols, mask=row_ok & d_ok, other=0.0)
    lse = tl.load(lse_ptr + gbh * q_len + rows, mask=row_ok, other=0.0)
    delta = tl.load(delta_ptr + gbh * q_len + rows, mask=row_ok, other=0.0)
    dq = tl.zeros((BLOCK_M, BLOCK_D), tl.float32)
    for start in range(0, k_len, BLOCK_N):
        keys = start + tl.arange(0, BLOCK_N)[None, :]
        key_rows = start + tl.arange(0, BLOCK_N)[:, None]
        key_mask = (keys < k_len) & (drows < head_dim)
        k_t = tl.load(k_base + keys * k_sn + drows, mask=key_mask, other=0.0)
        v_t = tl.load(v_base + keys * v_sn + drows, mask=key_mask, other=0.0)
        s = _scores(q, k_t.to(tl.float32), bias_ptr + batch * k_len, keys, k_len, scale, DOT_PRECISION)
        p = tl.where(row_ok, tl.exp(s - lse), 0.0)
        dp = tl.dot(dcontext, v_t.to(tl.float32), input_precision=DOT_PRECISION)
        if DROPOUT:
            dp = dp * _dropout_scale(rng_ptr, (gbh * q_len + rows) * k_len + keys, dropout_p)
        ds = p * (dp - delta)
        k = tl.load(k_base + key_rows * k_sn + dcols, mask=(key_rows < k_len) & d_ok, other=0.0).to(tl.float32)
        dq += tl.dot(ds, k, input_precision=DOT_PRECISION) * scale
    out = _head_offset(branch, batch, head, d_sr, d_sb, d_sh) + rows * d_sn + dcols
    tl.store(dq_ptr + out, dq, mask=row_ok & d_ok)


def _strides(t):
    """A (branch, batch, head, row, head_dim) view's first four strides."""
    assert t.dim() == 5 and t.stride(-1) == 1, "attention views must be 5-d with a unit head_dim stride"
    return t.stride()[:4]


def _attention_fwd(q, k, v, key_bias, gate_weight, gate_bias, rng: torch.Tensor, dropout_p: float, dropping: bool, out):
    """q: (R, B, h, Nq, d), k, v: (R, B, h, Nk, d) views (unit stride along d) of R branches;
    key_bias: (B, Nk) float32; gate_weight (2d, 2d) / gate_bias (2d,) or None (with them, branch 0
    is gated); out: a (R, B, h, Nq, d) view the output is written into.
    -> ungated context (R*B*h, Nq, d) and row log-sum-exp (R*B*h, Nq), float32."""
    branches, batch, heads, q_len, head_dim = q.shape
    k_len = k.shape[3]
    context = torch.empty((branches * batch * heads, q_len, head_dim), device=q.device, dtype=torch.float32)
    lse = torch.empty((branches * batch * heads, q_len), device=q.device, dtype=torch.float32)
    gate = gate_weight is not None
    blocks = attention_blocks(head_dim)
    _attention_fwd_kernel[attention_grid(q_len, blocks["BLOCK_M"], batch * heads, branches)](
        q, k, v, key_bias, gate_weight if gate else q, gate_bias if gate else q, out, context, lse,
        *_strides(q), *_strides(k), *_strides(v), *_strides(out), heads, batch * heads, head_dim ** -0.5, rng,
        dropout_p, q_len=q_len, k_len=k_len, head_dim=head_dim, GATE=gate, DROPOUT=dropping, **blocks,
        DOT_PRECISION=dot_precision(), num_warps=8 if gate else 4)
    return context, lse


def _grad_strides(grads):
    """The (batch, head, row) strides the preprocessing reads every branch's gradient with: one
    set, so the branches' (B, h, Nq, d) views must agree (a size-1 dimension's stride is never
    multiplied by a nonzero index, so it may differ)."""
    first = grads[0]
    for g in grads:
        assert g.dim() == 4 and g.stride(-1) == 1 and g.shape == first.shape and g.dtype == first.dtype, \
            "gradient views must be (B, h, Nq, d), unit stride along d, one shape and dtype"
        assert all(a == b or n == 1 for a, b, n in zip(g.stride(), first.stride(), g.shape)), \
            "every branch's gradient view must have the same strides"
    return first.stride()[:3]


def _attention_bwd(q, k, v, key_bias, gate_weight, gate_bias, context, lse, grads, dq, dk, dv, rng: torch.Tensor,
                   dropout_p: float, dropping: bool):
    """Views as ``_attention_fwd``; grads: each branch's output gradient, R (B, h, Nq, d) views
    with the same strides (read where they are: the caller stacks nothing); dq, dk, dv: float32
    (R, B, h, N, d) views the gradients are written into. -> dW (2d, 2d), db (2d,) of the gate,
    float32, or (None, None) without it."""
    branches, batch, heads, q_len, head_dim = q.shape
    assert len(grads) == branches, "one gradient per branch"
    k_len = k.shape[3]
    blocks = attention_blocks(head_dim)
    gate = gate_weight is not None
    device = q.device
    precision = dot_precision()
    dcontext = torch.empty((branches * batch * heads, q_len, head_dim), device=device, dtype=torch.float32)
    delta = torch.empty((branches * batch * heads, q_len), device=device, dtype=torch.float32)
    preprocess_block_m = PREPROCESS_GATE_BLOCK_M if gate else blocks["BLOCK_M"]
    preprocess_blocks = triton.cdiv(q_len, preprocess_block_m)
    dvalue_gate = torch.empty((batch * heads, q_len, head_dim), device=device, dtype=torch.float32) if gate else delta
    gate_rows = batch * heads * q_len if gate else 1
    dz = torch.empty((gate_rows, 2 * head_dim), device=device, dtype=torch.float32)
    vc = torch.empty((gate_rows, 2 * head_dim), device=device, dtype=torch.float32)
    # db's first stage: one row of column sums of dz per preprocessing program of branch 0
    db_part_rows = preprocess_blocks * batch * heads if gate else 0
    db_part = torch.empty((db_part_rows, 2 * head_dim), device=device, dtype=torch.float32) if gate else delta
    db = torch.empty((2 * head_dim,), device=device, dtype=torch.float32) if gate else delta
    _attention_bwd_preprocess_kernel[attention_grid(q_len, preprocess_block_m, batch * heads, branches)](
        v, gate_weight if gate else q, gate_bias if gate else q, context, grads[0], grads[-1], dcontext, dvalue_gate,
        delta, dz, vc, db_part, *_strides(v), *_grad_strides(grads), heads, batch * heads, q_len=q_len,
        head_dim=head_dim, GATE=gate, BLOCK_M=preprocess_block_m, BLOCK_D=blocks["BLOCK_D"],
        DOT_PRECISION=precision, num_warps=8 if gate else 4)
    inputs = (*_strides(q), *_strides(k), *_strides(v))
    settings = (heads, batch * heads, head_dim ** -0.5, rng, dropout_p)
    sizes = dict(q_len=q_len, k_len=k_len, head_dim=head_dim, DROPOUT=dropping, **blocks, DOT_PRECISION=precision)
    assert dk.stride() == dv.stride(), "dk and dv share one layout"
    _attention_bwd_dkdv_kernel[attention_grid(k_len, blocks["BLOCK_N"], batch * heads, branches)](
        q, k, v, key_bias, dcontext, lse, delta, dvalue_gate, dk, dv, db_part, db, *inputs, *_strides(dk), *settings,
        db_part_rows, GATE=gate, **sizes, SUM_ROWS=GATE_BIAS_SUM_ROWS, SUM_COLS=GATE_BIAS_SUM_COLS, num_warps=4)
    _attention_bwd_dq_kernel[attention_grid(q_len, blocks["BLOCK_M"], batch * heads, branches)](
        q, k, v, key_bias, dcontext, lse, delta, dq, *inputs, *_strides(dq), *settings, **sizes, num_warps=4)
    if not gate:
        return None, None
    # one GEMM over every (batch, head, query) row; cuBLAS follows the same precision setting
    return dz.t() @ vc, db


def stacked_projection_views(qkv: torch.Tensor, heads: int) -> tuple:
    """q, k, v of both branches as (2, B, h, N, d) views of one stacked projection (B, N, 6H)
    whose columns are [branch][q | k | v][head][d]."""
    batch, seq_len, width = qkv.shape
    hidden = width // 6
    split = qkv.view(batch, seq_len, 2, 3, heads, hidden // heads).permute(3, 2, 0, 4, 1, 5)
    return split[0], split[1], split[2]


def heads_view(t: torch.Tensor, heads: int) -> torch.Tensor:
    """A (..., N, H) tensor, heads contiguous along H, as its (..., h, N, d) view: (B, N, H) ->
    (B, h, N, d), (R, B, N, H) -> (R, B, h, N, d)."""
    *leading, seq_len, hidden = t.shape
    return t.view(*leading, seq_len, heads, hidden // heads).transpose(-3, -2)
