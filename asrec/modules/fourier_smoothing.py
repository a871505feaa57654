"""FourierSmoothing: the published ``FSM`` block (SPEC section 2)."""

import torch
from torch import nn

from ..ops.fourier_smoothing import fourier_smoothing


class FourierSmoothing(nn.Module):
    """Learned causal exponential smoothing mixed with its input.

    ``out = mix * (a^(n+1) * init_level + s[n] * smoothed_scale) + (1 - mix) * x`` with
    ``a = sigmoid(smoothing_logit)`` and ``s`` the ``1/sqrt(L)``-scaled causal EMA of x.

    The published block also owns a LayerNorm it never applies; its values are kept as
    buffers (``unused_norm_*``) only so that checkpoints round-trip losslessly.
    """

    def __init__(self, hidden_size: int, mix: float = 1.0, device=None, dtype=None):
        super().__init__()
        factory = dict(device=device, dtype=dtype)
        self.mix = float(mix)
        self.smoothing_logit = nn.Parameter(torch.randn(1, **factory))
        self.init_level = nn.Parameter(torch.empty(1, 1, hidden_size, **factory))
        self.smoothed_scale = nn.Parameter(torch.empty(1, 1, hidden_size, **factory))
        self.register_buffer("unused_norm_weight", torch.ones(hidden_size, **factory))
        self.register_buffer("unused_norm_bias", torch.zeros(hidden_size, **factory))
        nn.init.trunc_normal_(self.init_level, std=0.02)
        nn.init.trunc_normal_(self.smoothed_scale, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (batch, seq_len, hidden) -> (batch, seq_len, hidden), float32 (float64 for float64 x)."""
        return fourier_smoothing(x, self.smoothing_logit, self.init_level, self.smoothed_scale, self.mix)

    def extra_repr(self) -> str:
        return f"hidden_size={self.init_level.shape[-1]}, mix={self.mix}"
