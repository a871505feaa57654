"""Dropout + residual + LayerNorm: the norm after each dense projection (SPEC sections 4-6)."""

import torch
import torch.nn.functional as F


def residual_norm_ref(x: torch.Tensor, residual: torch.Tensor, norm_weight: torch.Tensor, norm_bias: torch.Tensor,
                      eps: float, dropout_p: float = 0.0, training: bool = False) -> torch.Tensor:
    """``LN(drop(p)(x) + residual)`` over the last axis. x, residual: (..., hidden), same shape."""
    return F.layer_norm(F.dropout(x, dropout_p, training) + residual, (residual.shape[-1],), norm_weight, norm_bias,
                        eps)
