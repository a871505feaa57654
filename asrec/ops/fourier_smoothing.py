"""Public Fourier smoothing op (SPEC section 2)."""

import torch

from .registry import implementation


def fourier_smoothing(x: torch.Tensor, smoothing_logit: torch.Tensor, init_level: torch.Tensor,
                      smoothed_scale: torch.Tensor, mix: float) -> torch.Tensor:
    """Causal exponential smoothing, see ``asrec.reference.fourier_smoothing_ref``.

    x: (batch, seq_len, hidden); smoothing_logit: (1,); init_level, smoothed_scale: (1, 1, hidden).
    """
    return implementation("fourier_smoothing", x.device.type)(x, smoothing_logit, init_level, smoothed_scale, mix)
