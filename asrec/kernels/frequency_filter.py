"""Adaptive high-energy frequency filter (SPEC section 3) in Triton, forward and backward.

Data flow for G groups of B sequences (B*G programs, one per sequence of a group, each
holding the sequence's whole half spectrum in registers):

1. ``_frequency_energy_kernel``: real-DFT GEMMs along the sequence axis (``tl.dot`` in
   IEEE float32 at every precision setting: they decide the mask), the K = N//2 + 1 bin
   energies ``sum_h |Y[k, h]|^2`` divided by the sequence's lower median (or, with
   ``scope="sequence"``, the finished keep-mask).
2. ``_frequency_keep_mask_kernel`` (kernels/frequency_keep_mask.py), one program per group:
   the linear quantile over the group's whole batch, the strict keep-mask, in place. The
   batch-wide quantile is the one global dependency, so it splits the op in two passes over
   the input; these B*G*K floats are under 1% of the op's bytes.
3. ``_frequency_filter_fwd_kernel``: recomputes the spectrum (cheaper than storing it),
   masks it, inverts it row block by row block, applies dropout (counter-based RNG), the
   residual and the LayerNorm over the hidden axis, and writes the output once. Its DFT
   products (and backward's) are ``tl.dot`` at ``dot_precision()``: IEEE float32 under
   torch's "highest" float32 matmul precision, TF32 under "high".

HBM traffic: the input is read twice (passes 1 and 3) and the output written once.

Backward (the filter is linear given the mask, ``z = M y`` with ``M = iDFT diag(keep) DFT``):
``du = LN_bwd(grad)``, ``dy = du + M^T (drop * du)``. One program per sequence recomputes
the masked spectrum and ``u``, accumulates ``DFT^{-T} (drop * du)`` over row blocks, masks
it and transforms back with ``DFT^T``. LayerNorm weight/bias gradients are per-program
partial sums, reduced by one fixed-order second-stage kernel (``_common.column_sums``:
deterministic, no atomics). With ``HAS_EXTRA`` the kernel also adds a gradient that reached y
by another path (the seasonal branch's contrast reads the filter's input too) where it writes
dy, so autograd has no second gradient of y to add.
"""

import torch
import triton
import triton.language as tl

from ..reference._constant_cache import ConstantCache
from ._common import _dropout_scale, _layer_norm_rows, dot_precision
from .frequency_keep_mask import _frequency_keep_mask, _normalised_energy_rows, _sequence_keep_rows

MAX_SPECTRUM_TILE = 8192  # BLOCK_K * BLOCK_H: the register budget for one (bins, hidden) tile
# The energies decide the keep-mask, a hard threshold: their DFT is IEEE float32 at every
# precision setting, so "high" moves no bin across it. The filter's own transforms follow
# dot_precision(). (Measured on an H200: 3xTF32 put the LayerNorm weight gradient at
# (N, H) = (200, 64), batch 256, outside 2e-5 of float64, and saved only ~10% of the filter's
# time: these kernels are bound by one program per sequence holding whole spectra.)
ENERGY_PRECISION: tl.constexpr = tl.constexpr("ieee")


def filter_blocks(seq_len: int, hidden: int) -> dict:
    """Block sizes for a (seq_len, hidden) sequence; BLOCK_H covers the whole hidden axis."""
    bins = seq_len // 2 + 1
    return dict(BLOCK_K=max(16, triton.next_power_of_2(bins)), BLOCK_H=max(16, triton.next_power_of_2(hidden)),
                BLOCK_N=32, BLOCK_M=32)


def unsupported_shape(seq_len: int, hidden: int):
    """None if the kernels take this shape, else the reason."""
    blocks = filter_blocks(seq_len, hidden)
    if blocks["BLOCK_K"] * blocks["BLOCK_H"] > MAX_SPECTRUM_TILE:
        return (f"the Triton frequency filter holds one sequence's half spectrum in registers: "
                f"next_pow2(seq_len//2+1) * next_pow2(hidden) must be <= {MAX_SPECTRUM_TILE}, "
                f"got seq_len={seq_len}, hidden={hidden}")
    return None


@triton.jit
def _half_spectrum(y_ptr, cos_ptr, sin_ptr, seq_len: tl.constexpr, hidden: tl.constexpr, bins: tl.constexpr,
                   BLOCK_K: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_H: tl.constexpr,
                   DOT_PRECISION: tl.constexpr):
    """(Re, Im), each (BLOCK_K, BLOCK_H) float32, of one (seq_len, hidden) sequence at y_ptr.

    cos_ptr, sin_ptr: (bins, seq_len) forward DFT rows ``cos(2 pi k n / N)``, ``-sin(...)``.
    """
    bin_idx = tl.arange(0, BLOCK_K)[:, None]
    cols = tl.arange(0, BLOCK_H)[None, :]
    real = tl.zeros((BLOCK_K, BLOCK_H), dtype=tl.float32)
    imag = tl.zeros((BLOCK_K, BLOCK_H), dtype=tl.float32)
    for start in range(0, seq_len, BLOCK_N):
        positions = start + tl.arange(0, BLOCK_N)
        y = tl.load(y_ptr + positions[:, None] * hidden + cols,
                    mask=(positions[:, None] < seq_len) & (cols < hidden), other=0.0).to(tl.float32)
        basis_offsets = bin_idx * seq_len + positions[None, :]
        basis_mask = (bin_idx < bins) & (positions[None, :] < seq_len)
        cos = tl.load(cos_ptr + basis_offsets, mask=basis_mask, other=0.0)
        sin = tl.load(sin_ptr + basis_offsets, mask=basis_mask, other=0.0)
        real += tl.dot(cos, y, input_precision=DOT_PRECISION)
        imag += tl.dot(sin, y, input_precision=DOT_PRECISION)
    return real, imag


@triton.jit
def _masked_half_spectrum(y_ptr, keep_ptr, cos_ptr, sin_ptr, seq_len: tl.constexpr, hidden: tl.constexpr,
                          bins: tl.constexpr,
                          BLOCK_K: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_H: tl.constexpr,
                          DOT_PRECISION: tl.constexpr):
    real, imag = _half_spectrum(y_ptr, cos_ptr, sin_ptr, seq_len, hidden, bins, BLOCK_K, BLOCK_N, BLOCK_H,
                                DOT_PRECISION)
    bin_idx = tl.arange(0, BLOCK_K)
    keep = tl.load(keep_ptr + bin_idx, mask=bin_idx < bins, other=0.0)[:, None]
    return real * keep, imag * keep


@triton.jit
def _inverse_rows(real, imag, icos_ptr, isin_ptr, rows, seq_len: tl.constexpr, bins: tl.constexpr,
                  BLOCK_K: tl.constexpr, DOT_PRECISION: tl.constexpr):
    """Rows ``rows`` (BLOCK_M, 1) of irfft of the (BLOCK_K, BLOCK_H) half spectrum.

    icos_ptr, isin_ptr: (seq_len, bins) inverse DFT columns (multiplicity / N folded in).
    """
    bin_idx = tl.arange(0, BLOCK_K)[None, :]
    basis_mask = (rows < seq_len) & (bin_idx < bins)
    icos = tl.load(icos_ptr + rows * bins + bin_idx, mask=basis_mask, other=0.0)
    isin = tl.load(isin_ptr + rows * bins + bin_idx, mask=basis_mask, other=0.0)
    return tl.dot(icos, real, input_precision=DOT_PRECISION) + tl.dot(isin, imag, input_precision=DOT_PRECISION)


@triton.jit
def _residual_rows(real, imag, icos_ptr, isin_ptr, y_ptr, rows, cols, base, eps, rng_ptr, dropout_p,
                   seq_len: tl.constexpr, hidden: tl.constexpr, bins: tl.constexpr, TRAINING: tl.constexpr,
                   BLOCK_K: tl.constexpr, DOT_PRECISION: tl.constexpr):
    """Rows of ``drop(irfft(masked spectrum)) + y`` normalised over hidden: (normalised rows, rstd,
    dropout factors, in_bounds, element offsets)."""
    col_ok = cols < hidden
    in_bounds = (rows < seq_len) & col_ok
    offsets = base + rows * hidden + cols
    filtered = _inverse_rows(real, imag, icos_ptr, isin_ptr, rows, seq_len, bins, BLOCK_K, DOT_PRECISION)
    drop = tl.full(filtered.shape, 1.0, tl.float32)  # a tensor either way: one return type
    if TRAINING:
        drop = _dropout_scale(rng_ptr, offsets, dropout_p)
        filtered = filtered * drop
    summed = filtered + tl.load(y_ptr + offsets, mask=in_bounds, other=0.0).to(tl.float32)
    normed, rstd = _layer_norm_rows(summed, col_ok, hidden, eps)
    return normed, rstd, drop, in_bounds, offsets


# what _frequency_energy_kernel writes per bin
ENERGY, NORMALISED, SEQUENCE_KEEP = tl.constexpr(0), tl.constexpr(1), tl.constexpr(2)


@triton.jit
def _frequency_energy_kernel(y_ptr, cos_ptr, sin_ptr, threshold_ptr, out_ptr,
                             seq_len: tl.constexpr, hidden: tl.constexpr, bins: tl.constexpr, OUTPUT: tl.constexpr,
                             BLOCK_K: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_H: tl.constexpr):
    """One program per sequence: its K bin energies ``sum_h |Y[k, h]|^2`` (OUTPUT=ENERGY), those
    divided by the sequence's lower median (NORMALISED), or its 0/1 keep-mask against its own
    quantile (SEQUENCE_KEEP, ``scope="sequence"``): (S, K) float32."""
    sequence = tl.program_id(0).to(tl.int64)
    real, imag = _half_spectrum(y_ptr + sequence * seq_len * hidden, cos_ptr, sin_ptr, seq_len, hidden, bins,
                                BLOCK_K, BLOCK_N, BLOCK_H, ENERGY_PRECISION)
    out = tl.sum(real * real + imag * imag, axis=1)[None, :]
    bin_idx = tl.arange(0, BLOCK_K)[None, :]
    if OUTPUT != ENERGY:
        out = _normalised_energy_rows(out, bin_idx, seq_len, bins)
    if OUTPUT == SEQUENCE_KEEP:
        out = _sequence_keep_rows(out, bin_idx, threshold_ptr, seq_len, bins)
    tl.store(out_ptr + sequence * bins + bin_idx, out, mask=bin_idx < bins)


@triton.jit
def _frequency_filter_fwd_kernel(
    y_ptr, keep_ptr, cos_ptr, sin_ptr, icos_ptr, isin_ptr, weight_ptr, bias_ptr, out_ptr,
    eps, rng_ptr, dropout_p,
    seq_len: tl.constexpr, hidden: tl.constexpr, bins: tl.constexpr,
    TRAINING: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_H: tl.constexpr,
    BLOCK_M: tl.constexpr, DOT_PRECISION: tl.constexpr,
):
    sequence = tl.program_id(0).to(tl.int64)
    base = sequence * seq_len * hidden
    real, imag = _masked_half_spectrum(y_ptr + base, keep_ptr + sequence * bins, cos_ptr, sin_ptr,
                                       seq_len, hidden, bins, BLOCK_K, BLOCK_N, BLOCK_H, DOT_PRECISION)
    cols = tl.arange(0, BLOCK_H)[None, :]
    col_ok = cols < hidden
    weight = tl.load(weight_ptr + cols, mask=col_ok, other=0.0).to(tl.float32)
    bias = tl.load(bias_ptr + cols, mask=col_ok, other=0.0).to(tl.float32)
    for start in range(0, seq_len, BLOCK_M):
        rows = start + tl.arange(0, BLOCK_M)[:, None]
        normed, _, _, in_bounds, offsets = _residual_rows(real, imag, icos_ptr, isin_ptr, y_ptr, rows, cols, base,
                                                          eps, rng_ptr, dropout_p, seq_len, hidden, bins,
                                                          TRAINING, BLOCK_K, DOT_PRECISION)
        out = normed * weight + bias
        tl.store(out_ptr + offsets, out.to(out_ptr.dtype.element_ty), mask=in_bounds)


@triton.jit
def _frequency_filter_bwd_kernel(
    y_ptr, grad_ptr, keep_ptr, cos_ptr, sin_ptr, icos_ptr, isin_ptr, weight_ptr, extra_ptr,
    dy_ptr, dweight_part_ptr, dbias_part_ptr,
    eps, rng_ptr, dropout_p,
    seq_len: tl.constexpr, hidden: tl.constexpr, bins: tl.constexpr,
    TRAINING: tl.constexpr, HAS_EXTRA: tl.constexpr,
    BLOCK_K: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_H: tl.constexpr,
    BLOCK_M: tl.constexpr, DOT_PRECISION: tl.constexpr,
):
    sequence = tl.program_id(0).to(tl.int64)
    base = sequence * seq_len * hidden
    keep_seq_ptr = keep_ptr + sequence * bins
    real, imag = _masked_half_spectrum(y_ptr + base, keep_seq_ptr, cos_ptr, sin_ptr,
                                       seq_len, hidden, bins, BLOCK_K, BLOCK_N, BLOCK_H, DOT_PRECISION)
    bin_row = tl.arange(0, BLOCK_K)[:, None]
    bin_col = tl.arange(0, BLOCK_K)[None, :]
    cols = tl.arange(0, BLOCK_H)[None, :]
    col_ok = cols < hidden
    weight = tl.load(weight_ptr + cols, mask=col_ok, other=0.0).to(tl.float32)
    grad_real = tl.zeros((BLOCK_K, BLOCK_H), dtype=tl.float32)
    grad_imag = tl.zeros((BLOCK_K, BLOCK_H), dtype=tl.float32)
    dweight = tl.zeros((1, BLOCK_H), dtype=tl.float32)
    dbias = tl.zeros((1, BLOCK_H), dtype=tl.float32)
    # pass A: LayerNorm backward row block by row block, and the spectrum of d(filtered)
    for start in range(0, seq_len, BLOCK_M):
        rows = start + tl.arange(0, BLOCK_M)[:, None]
        normed, rstd, drop, in_bounds, offsets = _residual_rows(real, imag, icos_ptr, isin_ptr, y_ptr, rows, cols,
                                                                base, eps, rng_ptr, dropout_p, seq_len,
                                                                hidden, bins, TRAINING, BLOCK_K, DOT_PRECISION)
        grad = tl.load(grad_ptr + offsets, mask=in_bounds, other=0.0).to(tl.float32)
        dweight += tl.sum(grad * normed, axis=0)[None, :]
        dbias += tl.sum(grad, axis=0)[None, :]
        dnormed = grad * weight
        dsummed = rstd * (dnormed - tl.sum(dnormed, axis=1)[:, None] / hidden
                          - normed * (tl.sum(dnormed * normed, axis=1)[:, None] / hidden))
        dsummed = tl.where(in_bounds, dsummed, 0.0)
        tl.store(dy_ptr + offsets, dsummed, mask=in_bounds)
        dfiltered = dsummed * drop
        # (BLOCK_K, BLOCK_M) transposed inverse basis: icos[rows, k] read as [k, rows]
        basis_offsets = rows.trans() * bins + bin_row
        basis_mask = (rows.trans() < seq_len) & (bin_row < bins)
        icos_t = tl.load(icos_ptr + basis_offsets, mask=basis_mask, other=0.0)
        isin_t = tl.load(isin_ptr + basis_offsets, mask=basis_mask, other=0.0)
        grad_real += tl.dot(icos_t, dfiltered, input_precision=DOT_PRECISION)
        grad_imag += tl.dot(isin_t, dfiltered, input_precision=DOT_PRECISION)
    keep = tl.load(keep_seq_ptr + bin_row, mask=bin_row < bins, other=0.0)
    grad_real = grad_real * keep
    grad_imag = grad_imag * keep
    tl.debug_barrier()  # pass B reads the rows pass A stored, possibly from other threads
    # pass B: dy = dsummed + DFT^T (keep * DFT^{-T} dfiltered)
    for start in range(0, seq_len, BLOCK_M):
        rows = start + tl.arange(0, BLOCK_M)[:, None]
        in_bounds = (rows < seq_len) & col_ok
        offsets = base + rows * hidden + cols
        basis_offsets = bin_col * seq_len + rows
        basis_mask = (rows < seq_len) & (bin_col < bins)
        cos_t = tl.load(cos_ptr + basis_offsets, mask=basis_mask, other=0.0)
        sin_t = tl.load(sin_ptr + basis_offsets, mask=basis_mask, other=0.0)
        dy = tl.load(dy_ptr + offsets, mask=in_bounds, other=0.0)
        dy += tl.dot(cos_t, grad_real, input_precision=DOT_PRECISION)
        dy += tl.dot(sin_t, grad_imag, input_precision=DOT_PRECISION)
        if HAS_EXTRA:  # y's gradient from its other consumer (extra_ptr: y's layout)
            dy += tl.load(extra_ptr + offsets, mask=in_bounds, other=0.0).to(tl.float32)
        tl.store(dy_ptr + offsets, dy, mask=in_bounds)
    part = sequence * hidden + cols
    tl.store(dweight_part_ptr + part, dweight, mask=col_ok)
    tl.store(dbias_part_ptr + part, dbias, mask=col_ok)


_DFT_BASES = ConstantCache(size=64)


def dft_bases(seq_len: int, device: torch.device) -> tuple:
    """float32 (cos, -sin) forward rows (bins, N) and inverse columns (N, bins), contiguous.

    Cached per (seq_len, device), as real_dft_matrices is (in eager mode, never a traced
    tensor): the inverse halves are column slices, and copying them contiguous on every call
    would be two kernels per launch.
    """
    return _DFT_BASES((seq_len, torch.device(device)), lambda: _build_dft_bases(seq_len, device))


def _build_dft_bases(seq_len: int, device: torch.device) -> tuple:
    from asrec.reference.frequency_filter import real_dft_matrices

    forward, inverse = real_dft_matrices(seq_len, torch.float32, device)
    bins = seq_len // 2 + 1
    return (forward[:bins].contiguous(), forward[bins:].contiguous(),
            inverse[:, :bins].contiguous(), inverse[:, bins:].contiguous())


def _energy_launch(y, threshold, output: int):
    sequences, seq_len, hidden = y.shape
    bins = seq_len // 2 + 1
    cos, sin, _, _ = dft_bases(seq_len, y.device)
    out = torch.empty((sequences, bins), device=y.device, dtype=torch.float32)
    blocks = filter_blocks(seq_len, hidden)
    blocks.pop("BLOCK_M")
    _frequency_energy_kernel[(sequences,)](y, cos, sin, threshold, out, seq_len=seq_len, hidden=hidden, bins=bins,
                                           OUTPUT=output.value, **blocks, num_warps=8)
    return out


def _frequency_energy(y):
    """y: (S, N, H) contiguous (S = batch * groups sequences) -> (S, N//2 + 1) float32 energies."""
    return _energy_launch(y, y, ENERGY)  # (threshold unread)


def _frequency_keep(y, batch: int, groups: int, threshold, scope: str, group_major: bool = False):
    """y: (B*G, N, H) contiguous, rows ``b * G + g`` (``g * B + b`` with ``group_major``);
    threshold: one-element tensor -> (B*G, N//2 + 1) float32 0/1 keep-mask of
    asrec.reference.frequency_filter.frequency_keep_mask, rows as y's: one launch with
    ``scope="sequence"``, two with ``"batch"`` (the group quantile needs every sequence's energies)."""
    if scope == "sequence":
        return _energy_launch(y, threshold, SEQUENCE_KEEP)
    return _frequency_keep_mask(_energy_launch(y, threshold, NORMALISED), batch, groups, threshold, y.shape[1],
                                group_major)


def _frequency_filter_fwd(y, keep, weight, bias, eps: float, rng: torch.Tensor, dropout_p: float, training: bool):
    """y: (S, N, H); keep: (S, N//2 + 1) float32 0/1 -> (S, N, H) in y's dtype."""
    sequences, seq_len, hidden = y.shape
    cos, sin, icos, isin = dft_bases(seq_len, y.device)
    out = torch.empty_like(y)
    _frequency_filter_fwd_kernel[(sequences,)](
        y, keep, cos, sin, icos, isin, weight, bias, out, eps, rng, dropout_p,
        seq_len=seq_len, hidden=hidden, bins=seq_len // 2 + 1, TRAINING=training, **filter_blocks(seq_len, hidden),
        DOT_PRECISION=dot_precision(), num_warps=8)
    return out


def _frequency_filter_bwd(y, grad, keep, weight, eps: float, rng: torch.Tensor, dropout_p: float, training: bool,
                          extra=None):
    """-> dy (S, N, H) float32 (plus ``extra``, a gradient of y from elsewhere, (S, N, H)
    contiguous, when given), and (2, S, H) partial sums of the LayerNorm weight and bias gradients."""
    sequences, seq_len, hidden = y.shape
    cos, sin, icos, isin = dft_bases(seq_len, y.device)
    dy = torch.empty(y.shape, device=y.device, dtype=torch.float32)
    parts = torch.empty((2, sequences, hidden), device=y.device, dtype=torch.float32)
    # four (bins, hidden) float32 tiles live at once here; software pipelining of the basis
    # loads (num_stages > 1) would overflow shared memory at the published shapes
    blocks = dict(filter_blocks(seq_len, hidden), BLOCK_M=16)
    _frequency_filter_bwd_kernel[(sequences,)](
        y, grad, keep, cos, sin, icos, isin, weight, y if extra is None else extra, dy, parts[0], parts[1], eps, rng,
        dropout_p, seq_len=seq_len, hidden=hidden, bins=seq_len // 2 + 1, TRAINING=training,
        HAS_EXTRA=extra is not None,
        **blocks, DOT_PRECISION=dot_precision(), num_warps=8, num_stages=1)
    return dy, parts
