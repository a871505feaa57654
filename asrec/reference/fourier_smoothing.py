"""Fourier smoothing module (SPEC section 2): a learned causal exponential smoothing.

The published code evaluates an FFT cross-correlation with ``norm='ortho'``; what it
computes is the causal EMA below, scaled by ``1/sqrt(L)`` with ``L = next_fast_len(2N-1)``.
On the CPU the exact way to get it is one (N, N) lower-triangular Toeplitz product:
``N^2`` multiply-adds per (sequence, channel) is less work than a padded complex FFT of
length ``L ~ 2N`` for the published sizes (N <= 200), it has no transform rounding, and
autograd gives the gradient of the smoothing logit through the Toeplitz entries.
"""

import math

import torch

from ._dtypes import compute_dtype


def next_fast_len(target: int) -> int:
    """Smallest 5-smooth integer (2^a 3^b 5^c) >= ``target``, as ``scipy.fftpack.next_fast_len``."""
    if target < 1:
        raise ValueError(f"next_fast_len: target must be >= 1, got {target}")
    candidate = target
    while True:
        rest = candidate
        for prime in (2, 3, 5):
            while rest % prime == 0:
                rest //= prime
        if rest == 1:
            return candidate
        candidate += 1


def smoothing_norm(seq_len: int) -> float:
    """The model's ``1/sqrt(L)`` factor, ``L = next_fast_len(2N - 1)``."""
    return 1.0 / math.sqrt(next_fast_len(2 * seq_len - 1))


def smoothing_matrix(alpha: torch.Tensor, seq_len: int) -> torch.Tensor:
    """The (N, N) causal EMA operator ``T[n, k] = (1 - a) a^(n-k) / sqrt(L)`` for ``k <= n``, else 0.

    alpha: () smoothing factor ``a = sigmoid(smoothing_logit)``, in the compute dtype.
    """
    dtype = alpha.dtype
    positions = torch.arange(seq_len, device=alpha.device, dtype=dtype)
    lag = positions[:, None] - positions[None, :]
    causal = lag >= 0
    # clamp keeps the masked (future) entries finite so their zero gradient stays zero
    powers = alpha ** lag.clamp(min=0)
    scale = (1.0 - alpha) * smoothing_norm(seq_len)
    return torch.where(causal, powers * scale, torch.zeros((), dtype=dtype, device=powers.device))


def fourier_smoothing_ref(
    x: torch.Tensor,
    smoothing_logit: torch.Tensor,
    init_level: torch.Tensor,
    smoothed_scale: torch.Tensor,
    mix: float,
) -> torch.Tensor:
    """``out = mix * (a^(n+1) * init_level + s[n] * smoothed_scale) + (1 - mix) * x``.

    x: (batch, seq_len, hidden); smoothing_logit: (1,); init_level, smoothed_scale: (1, 1, hidden).
    ``s[n] = (1/sqrt(L)) sum_{k<=n} (1-a) a^(n-k) x[k]``. Computed in float32 (float64 for
    float64 input); returns that compute dtype, as the published code does.
    """
    dtype = compute_dtype(x, smoothing_logit)
    seq_len = x.shape[1]
    xc = x.to(dtype)
    alpha = torch.sigmoid(smoothing_logit.to(dtype)).reshape(())
    smoothed = torch.matmul(smoothing_matrix(alpha, seq_len), xc)  # (N, N) @ (B, N, H): one batched GEMM
    level_decay = alpha ** torch.arange(1, seq_len + 1, device=x.device, dtype=dtype)
    # one pass each (addcmul, lerp) instead of two products and a sum, then two more and a sum
    fsm = torch.addcmul(level_decay[:, None] * init_level.to(dtype), smoothed, smoothed_scale.to(dtype))
    if mix == 1.0:
        return fsm
    return torch.lerp(xc, fsm, mix)  # mix * fsm + (1 - mix) * x
