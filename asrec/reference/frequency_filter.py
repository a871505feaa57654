"""Adaptive high-energy frequency filter (SPEC section 3).

The published filter takes a complex FFT of length N over the sequence axis, keeps the
bins whose median-normalised energy is strictly above a quantile taken over the whole
batch, inverts, and adds a dropout-0.5 residual under a LayerNorm.

For real input the spectrum is Hermitian, so only the ``K = N//2 + 1`` half-spectrum bins
are computed and the full-spectrum energy multiset is rebuilt by mirroring (bin ``k`` and
``N-k`` carry the same energy). The keep-mask is then symmetric, and the real part of the
published ``ifft`` equals the real inverse of the masked half spectrum.

Short sequences use real DFT matrices applied as GEMMs along the sequence axis: a (2K, N)
matrix product runs at GEMM speed, needs no complex tensors, and lets the inverse fold the
keep-mask into its per-sequence matrix and the residual add into ``baddbmm``. The DFT
matrices are built in float64 and rounded once, so the transform error is that of a
length-N dot product in the compute dtype. From ``FFT_FROM_SEQ_LEN`` on, the O(N^2 H)
GEMMs cost more than ``torch.fft.rfft``/``irfft`` (O(N log N H)), which take over; both
are exact to the compute dtype's rounding.

Everything stays on the device: no ``.item()``, no boolean indexing, no host sync.
"""

import math

import torch
import torch.nn.functional as F

from ..distributed_filter import active_gather, keep_over_whole_batch
from ._constant_cache import ConstantCache
from ._dtypes import compute_dtype

THRESHOLD_SCOPES = ("batch", "sequence")
# Sequence length from which the filter transforms by FFT instead of DFT GEMMs: the CPU
# crossover recorded in BENCHMARKS.md (session 3, "the filter transforms").
FFT_FROM_SEQ_LEN = 96
FILTER_DROPOUT = 0.5  # fixed in the published code, independent of the model's dropout


def check_scope(scope, name: str = "scope") -> None:
    """The one check of a threshold scope (every layer that takes one calls it): one of
    ``THRESHOLD_SCOPES``; ``name`` is the argument as the caller's user knows it."""
    if scope not in THRESHOLD_SCOPES:
        raise ValueError(f"{name}: expected one of {THRESHOLD_SCOPES}, got {scope!r}")


_DFT_MATRICES = ConstantCache(size=64)


def real_dft_matrices(seq_len: int, dtype: torch.dtype, device: torch.device) -> tuple:
    """Forward (2K, N) and inverse (N, 2K) real DFT matrices over K = N//2 + 1 bins, cached
    per (seq_len, dtype, device) in eager mode (``ConstantCache``: never a traced tensor).

    Forward rows ``0..K-1`` give ``Re X[k] = sum_n cos(2 pi k n / N) x[n]`` and rows
    ``K..2K-1`` give ``Im X[k] = -sum_n sin(2 pi k n / N) x[n]``. The inverse is ``irfft``:
    bins other than 0 and N/2 count twice (they stand for ``k`` and ``N-k``), the
    imaginary parts of bins 0 and N/2 are ignored, and the result is divided by N.
    """
    return _DFT_MATRICES((seq_len, dtype, torch.device(device)), lambda: _build_dft_matrices(seq_len, dtype, device))


def _build_dft_matrices(seq_len: int, dtype: torch.dtype, device: torch.device) -> tuple:
    bins = seq_len // 2 + 1
    k = torch.arange(bins, dtype=torch.float64)
    n = torch.arange(seq_len, dtype=torch.float64)
    angle = 2.0 * math.pi * torch.outer(k, n).remainder(seq_len) / seq_len  # exact integer phase first
    cos, sin = torch.cos(angle), torch.sin(angle)
    forward = torch.cat([cos, -sin])
    multiplicity = torch.where((k == 0) | (2 * k == seq_len), 1.0, 2.0).to(torch.float64)
    inverse = torch.cat([cos * multiplicity[:, None], -sin * multiplicity[:, None]]).t() / seq_len
    return forward.to(dtype=dtype, device=device), inverse.contiguous().to(dtype=dtype, device=device)


def full_spectrum_index(seq_len: int, device: torch.device) -> torch.Tensor:
    """(N,) index mapping full-spectrum bin ``k`` to its half-spectrum bin ``min(k, N - k)``."""
    k = torch.arange(seq_len, device=device)
    return torch.minimum(k, seq_len - k)


def lower_median(values: torch.Tensor) -> torch.Tensor:
    """Lower median over the last axis, as ``torch.median``: sorted element ``(n - 1) // 2``
    (a selection, ``kthvalue``, not a sort: the same value for less work).

    values: (..., n) -> (...,)
    """
    n = values.shape[-1]
    return values.kthvalue((n - 1) // 2 + 1, dim=-1).values


def _quantile_ranks(q: torch.Tensor, n: int, dtype: torch.dtype) -> tuple:
    """torch.quantile's rank ``q * (n - 1)`` in the value dtype, and the (long) order
    statistics below and above it, clamped to [0, n - 1]."""
    rank = q.to(dtype) * (n - 1)
    return rank, rank.floor().long().clamp(0, n - 1), rank.ceil().long().clamp(0, n - 1)


def linear_quantile(sorted_values: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """``torch.quantile(..., q, interpolation='linear')`` over the last axis of sorted values.

    Written out so a tensor ``q`` needs no host check. Same arithmetic as torch: rank
    ``q * (n - 1)`` in the value dtype, ``lerp`` between the neighbouring order statistics.
    sorted_values: (..., n) ascending; q: () -> (...,)
    """
    n = sorted_values.shape[-1]
    rank, below, above = _quantile_ranks(q, n, sorted_values.dtype)
    index_shape = sorted_values.shape[:-1] + (1,)
    value_below = sorted_values.gather(-1, below.expand(index_shape))
    value_above = sorted_values.gather(-1, above.expand(index_shape))
    return torch.lerp(value_below, value_above, rank - below.to(rank.dtype)).squeeze(-1)


def quantile(values: torch.Tensor, q: torch.Tensor, host_ranks: bool = True) -> torch.Tensor:
    """``linear_quantile`` over the last axis of unsorted values (..., n) -> (...,).

    With ``host_ranks`` on the CPU in eager mode, the two order statistics come from two
    selections (``kthvalue``, cheaper than a sort of the batch's B*N energies) at ranks read
    from q, a CPU tensor (a read, not a device synchronisation, but host work that a captured
    step could not replay); otherwise (``host_ranks=False``, as the fused backends ask, a GPU,
    or torch.compile) from a sort, with no host read. Same values either way
    (tests/ops/test_frequency_filter.py).
    """
    if (not host_ranks or values.device.type != "cpu" or q.device.type != "cpu"
            or torch.compiler.is_compiling()):
        return linear_quantile(values.sort(dim=-1).values, q)
    rank, below, above = _quantile_ranks(q, values.shape[-1], values.dtype)
    below, above = int(below), int(above)
    value_below = values.kthvalue(below + 1, dim=-1).values
    value_above = value_below if above == below else values.kthvalue(above + 1, dim=-1).values
    return torch.lerp(value_below, value_above, rank - below)


def frequency_keep_mask(energy: torch.Tensor, seq_len: int, threshold: torch.Tensor,
                        scope: str = "batch", host_ranks: bool = True) -> torch.Tensor:
    """Bool keep-mask over half-spectrum bins, SPEC section 3.

    energy: (B, G, K) ``sum_h |X[b, g, k, h]|^2`` of G independent groups (K = N//2 + 1);
    threshold: () quantile level q. Each group takes its own quantile over all of its
    ``B * N`` full-spectrum normalised energies (``scope="batch"``, the published
    behaviour) or one quantile per sequence over its N energies (``scope="sequence"``).
    Returns (B, G, K) bool.

    Mirrored bins get one energy, so where the quantile falls between the two copies of
    one bin both are dropped (strict ``>``), the exact-arithmetic answer; the published
    full FFT may keep one copy of such a pair by rounding noise (SPEC section 3 allows the
    half-spectrum form; DESIGN.md on comparing hard thresholds).
    ``host_ranks=False`` takes the quantile without reading anything on the host (``quantile``).
    """
    to_full = full_spectrum_index(seq_len, energy.device)
    normalised = energy / (lower_median(energy[..., to_full])[..., None] + 1e-6)
    full_normalised = normalised[..., to_full]  # (B, G, N)
    if scope == "batch":
        pooled = full_normalised.transpose(0, 1).flatten(start_dim=1)  # (G, B*N)
        cutoff = quantile(pooled, threshold, host_ranks)[None, :, None]
    else:
        cutoff = quantile(full_normalised, threshold, host_ranks)[..., None]
    return normalised > cutoff


def half_spectrum(y: torch.Tensor) -> torch.Tensor:
    """Real and imaginary half spectrum along the sequence axis.

    y: (..., N, H) -> (..., 2K, H): rows 0..K-1 real parts, K..2K-1 imaginary parts.
    """
    forward, _ = real_dft_matrices(y.shape[-2], y.dtype, y.device)
    return torch.matmul(forward, y)


def spectrum_energy(spectrum: torch.Tensor) -> torch.Tensor:
    """(..., 2K, H) half spectrum -> (..., K) energies ``sum_h Re^2 + Im^2``."""
    squared_norms = torch.linalg.vector_norm(spectrum, dim=-1).square()
    real, imag = squared_norms.chunk(2, dim=-1)
    return real + imag


def fft_spectrum_energy(spectrum: torch.Tensor) -> torch.Tensor:
    """(B, K, H) complex rfft along the sequence -> (B, K) energies ``sum_h Re^2 + Im^2``.

    rfft along dim -2 lays its output out as (B, H, K): read that way, (Re, Im) pairs are
    contiguous and the sum over hidden is a reduction over an outer axis (vectorised over
    bins): contiguous reads, where summing the (H, 2) trailing axes of the logical view strides.
    """
    batch, bins, hidden = spectrum.shape
    parts = torch.view_as_real(spectrum.transpose(-1, -2)).reshape(batch, hidden, 2 * bins)
    return parts.square().sum(1).view(batch, bins, 2).sum(-1)


def _inverse_with_residual(spectrum: torch.Tensor, keep: torch.Tensor, residual: torch.Tensor,
                           add_residual: bool) -> torch.Tensor:
    """``irfft(keep * spectrum)`` (+ residual), the mask applied to the smaller GEMM operand.

    spectrum: (B, 2K, H); keep: (B, K) bool; residual: (B, N, H) in the compute dtype.
    Masking the inverse's columns costs N * 2K per sequence, masking the spectrum 2K * H.
    """
    batch, seq_len, hidden = residual.shape
    _, inverse = real_dft_matrices(seq_len, spectrum.dtype, spectrum.device)
    column_mask = keep.repeat(1, 2).to(spectrum.dtype)  # (B, 2K): same bit for Re and Im
    if seq_len <= hidden:
        left, right = inverse * column_mask[:, None, :], spectrum
    else:
        left, right = inverse.expand(batch, *inverse.shape), spectrum * column_mask[..., None]
    return torch.baddbmm(residual, left, right) if add_residual else torch.bmm(left, right)


def frequency_filter_groups_ref(
    groups,
    threshold: torch.Tensor,
    norm_weight: torch.Tensor,
    norm_bias: torch.Tensor,
    eps: float,
    dropout_p: float = 0.5,
    training: bool = False,
    scope: str = "batch",
):
    """SPEC section 3 for G same-shaped inputs, each with its own quantile, in one pass.

    groups: G tensors (batch, seq_len, hidden) -> G tensors of that shape and dtype, or one
    (G, batch, seq_len, hidden) tensor -> one tensor of that shape and dtype. The
    masks of all groups come from one batched median/quantile computation; the transforms
    run per group so that no intermediate is G times larger than an input (on the CPU,
    buffers above glibc's 32 MiB mmap ceiling are fresh pages on every call, and their
    page faults cost more than the arithmetic).
    """
    check_scope(scope, "frequency_filter_ref: scope")
    if torch.is_tensor(groups):
        return torch.stack(frequency_filter_groups_ref(list(groups.unbind(0)), threshold, norm_weight, norm_bias, eps,
                                                       dropout_p, training, scope))
    seq_len, hidden = groups[0].shape[-2:]
    dtype = compute_dtype(*groups)
    inputs = [g.to(dtype) for g in groups]
    # torch.export takes the DFT GEMMs at every length: AOTInductor's C++ wrapper cannot build the
    # complex tensors of the FFT path (torch 2.13: no c-shim for a complex aten.full)
    by_fft = seq_len >= FFT_FROM_SEQ_LEN and not torch.compiler.is_exporting()
    spectra = [torch.fft.rfft(g, dim=-2) if by_fft else half_spectrum(g) for g in inputs]  # G x (B, K, H) / (B, 2K, H)
    with torch.no_grad():  # the mask is a hard threshold: no gradient flows through the energies
        energy_of = fft_spectrum_energy if by_fft else spectrum_energy
        energy = torch.stack([energy_of(s) for s in spectra], dim=1)  # (B, G, K)
        # under asrec.distributed_filter (a training step of several processes) the quantile is the whole batch's
        keep = keep_over_whole_batch(energy, lambda e: frequency_keep_mask(e, seq_len, threshold, scope),
                                     active_gather(scope))
    dropping = training and dropout_p > 0
    outputs = []
    for index, (original, computed, spectrum) in enumerate(zip(groups, inputs, spectra)):
        if by_fft:
            # the mask applied in rfft's own (B, H, K) layout: contiguous, where masking across it strides
            masked = torch.where(keep[:, index, None, :], spectrum.transpose(-1, -2), 0).transpose(-1, -2)
            filtered = torch.fft.irfft(masked, n=seq_len, dim=-2)
            # irfft along dim -2 returns a (B, H, N)-strided layout; `computed + filtered` (the
            # row-major operand first) comes back row-major, and so must the dropout's input
            # (one mask draw order for both transforms)
            summed = filtered.contiguous() if dropping else computed + filtered
        else:  # in eval the residual add rides in the GEMM
            summed = _inverse_with_residual(spectrum, keep[:, index], computed, not dropping)
        summed = summed.to(original.dtype)
        if dropping:
            summed = F.dropout(summed, dropout_p, True) + original
        outputs.append(F.layer_norm(summed, (hidden,), norm_weight, norm_bias, eps))
    return outputs


def frequency_filter_ref(
    y: torch.Tensor,
    threshold: torch.Tensor,
    norm_weight: torch.Tensor,
    norm_bias: torch.Tensor,
    eps: float,
    dropout_p: float = 0.5,
    training: bool = False,
    scope: str = "batch",
) -> torch.Tensor:
    """``LN(drop(p)(real(ifft(fft(y) * keep))) + y)``.

    y: (batch, seq_len, hidden), or (batch, groups, seq_len, hidden) where each group takes
    its own quantile; threshold: () level q; norm_weight, norm_bias: (hidden,).
    Returns y's shape and dtype.
    """
    groups = [y] if y.dim() == 3 else list(y.unbind(1))
    out = frequency_filter_groups_ref(groups, threshold, norm_weight, norm_bias, eps, dropout_p, training, scope)
    return out[0] if y.dim() == 3 else torch.stack(out, dim=1)
