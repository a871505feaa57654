"""Dropout + residual + LayerNorm: the norm after each dense projection (SPEC sections 4-6)."""

import torch
import torch.nn.functional as F


def residual_norm_ref(x: torch.Tensor, residual: torch.Tensor, norm_weight: torch.Tensor, norm_bias: torch.Tensor,
                      eps: float, dropout_p: float = 0.0, training: bool = False, mix: tuple = None) -> torch.Tensor:
    """``LN(drop(p)(x) + residual)`` over the last axis. x, residual: (..., hidden), same shape.

    ``mix=(other, weight)``: ``torch.lerp(other, LN(...), weight)``, the hybrid layer's branch mix
    (SPEC section 6) on the dynamic branch's norm, where a fused kernel applies it in the norm's
    epilogue. other: x's shape; weight: one element.
    """
    out = F.layer_norm(F.dropout(x, dropout_p, training) + residual, (residual.shape[-1],), norm_weight, norm_bias,
                       eps)
    return out if mix is None else torch.lerp(mix[0], out, mix[1])
