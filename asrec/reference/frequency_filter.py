"""Adaptive high-energy frequency filter (SPEC section 3).

The published filter takes a complex FFT of length N over the sequence axis, keeps the
bins whose median-normalised energy is strictly above a quantile taken over the whole
batch, inverts, and adds a dropout-0.5 residual under a LayerNorm. For real input the
spectrum is Hermitian, so this reference works on the ``N//2 + 1`` rfft bins and rebuilds
the full-spectrum energy multiset by mirroring (bin ``k`` and ``N-k`` carry the same
energy). The keep-mask is then symmetric, so ``irfft`` of the masked half spectrum equals
the real part of the published ``ifft``.

Everything stays on the device: no ``.item()``, no boolean indexing, no host sync.
"""

import torch
import torch.nn.functional as F

from ._dtypes import compute_dtype

THRESHOLD_SCOPES = ("batch", "sequence")


def full_spectrum_index(seq_len: int, device: torch.device) -> torch.Tensor:
    """(N,) index mapping full-spectrum bin ``k`` to its rfft bin ``min(k, N - k)``."""
    k = torch.arange(seq_len, device=device)
    return torch.minimum(k, seq_len - k)


def lower_median(values: torch.Tensor) -> torch.Tensor:
    """Lower median over the last axis, as ``torch.median``: sorted element ``(n - 1) // 2``.

    values: (..., n) -> (...,)
    """
    n = values.shape[-1]
    return values.sort(dim=-1).values[..., (n - 1) // 2]


def linear_quantile(sorted_values: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """``torch.quantile(..., q, interpolation='linear')`` over the last axis of sorted values.

    Written out so a tensor ``q`` needs no host check. Same arithmetic as torch: rank
    ``q * (n - 1)`` in the value dtype, ``lerp`` between the neighbouring order statistics.
    sorted_values: (..., n) ascending; q: () -> (...,)
    """
    n = sorted_values.shape[-1]
    rank = q.to(sorted_values.dtype) * (n - 1)
    below = rank.floor().long().clamp(0, n - 1)
    above = rank.ceil().long().clamp(0, n - 1)
    index_shape = sorted_values.shape[:-1] + (1,)
    value_below = sorted_values.gather(-1, below.expand(index_shape))
    value_above = sorted_values.gather(-1, above.expand(index_shape))
    return torch.lerp(value_below, value_above, rank - below.to(rank.dtype)).squeeze(-1)


def frequency_keep_mask(spectrum: torch.Tensor, seq_len: int, threshold: torch.Tensor,
                        scope: str = "batch") -> torch.Tensor:
    """Bool keep-mask over rfft bins, SPEC section 3.

    spectrum: (B, G, K, H) complex rfft of G independent groups (K = N//2 + 1);
    threshold: () quantile level q. Each group takes its own quantile over all of its
    ``B * N`` full-spectrum normalised energies (``scope="batch"``, the published
    behaviour) or one quantile per sequence over its N energies (``scope="sequence"``).
    Returns (B, G, K) bool.

    Mirrored bins get one energy, so where the quantile falls between the two copies of
    one bin both are dropped (strict ``>``), the exact-arithmetic answer; the published
    full FFT may keep one copy of such a pair by rounding noise (SPEC section 3 allows the
    rfft form; DESIGN.md on comparing hard thresholds).
    """
    energy = torch.view_as_real(spectrum).square().sum(dim=(-1, -2))  # (B, G, K)
    to_full = full_spectrum_index(seq_len, energy.device)
    normalised = energy / (lower_median(energy[..., to_full])[..., None] + 1e-6)
    full_normalised = normalised[..., to_full]  # (B, G, N)
    if scope == "batch":
        pooled = full_normalised.transpose(0, 1).flatten(start_dim=1)  # (G, B*N)
        cutoff = linear_quantile(pooled.sort(dim=-1).values, threshold)[None, :, None]
    else:
        cutoff = linear_quantile(full_normalised.sort(dim=-1).values, threshold)[..., None]
    return normalised > cutoff


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
    """``LN(drop(p)(real(ifft(fft(y) * keep))) + y)``, several filters in one batched transform.

    y: (batch, seq_len, hidden), or (batch, groups, seq_len, hidden) where each group takes
    its own quantile (the seasonal branch stacks its three convolution outputs as
    groups = 3); threshold: () level q; norm_weight, norm_bias: (hidden,).
    Returns y's shape and dtype.
    """
    if y.dim() == 3:
        return frequency_filter_ref(y[:, None], threshold, norm_weight, norm_bias, eps,
                                    dropout_p, training, scope)[:, 0]
    if scope not in THRESHOLD_SCOPES:
        raise ValueError(f"frequency filter scope must be one of {THRESHOLD_SCOPES}, got {scope!r}")
    dtype = compute_dtype(y)
    seq_len = y.shape[-2]
    yc = y.to(dtype)
    spectrum = torch.fft.rfft(yc, dim=-2)
    keep = frequency_keep_mask(spectrum, seq_len, threshold, scope)
    masked = torch.view_as_complex(torch.view_as_real(spectrum) * keep[..., None, None])
    filtered = torch.fft.irfft(masked, n=seq_len, dim=-2).to(y.dtype)
    filtered = F.dropout(filtered, dropout_p, training)
    return F.layer_norm(filtered + y, (y.shape[-1],), norm_weight, norm_bias, eps)
