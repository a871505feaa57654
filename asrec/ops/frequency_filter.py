"""Public adaptive frequency filter op (SPEC section 3)."""

import torch

from .registry import implementation


def frequency_filter(y: torch.Tensor, threshold: torch.Tensor, norm_weight: torch.Tensor,
                     norm_bias: torch.Tensor, eps: float, dropout_p: float = 0.5, training: bool = False,
                     scope: str = "batch") -> torch.Tensor:
    """See ``asrec.reference.frequency_filter_ref``. y: (batch, [groups,] seq_len, hidden)."""
    return implementation("frequency_filter", y.device.type)(y, threshold, norm_weight, norm_bias, eps,
                                                             dropout_p, training, scope)
