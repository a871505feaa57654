"""Dropout + residual + LayerNorm: the norm after each dense projection (SPEC sections 4-6)."""

import torch
import torch.nn.functional as F


def residual_norm_ref(x: torch.Tensor, residual: torch.Tensor, norm_weight: torch.Tensor, norm_bias: torch.Tensor,
                      eps: float, dropout_p: float = 0.0, training: bool = False, mix: tuple = None) -> torch.Tensor:
    """``LN(drop(p)(x) + residual)`` over the last axis. x, residual: (..., hidden), same shape.

    ``mix=(other, other_norm_weight, other_norm_bias, weight)``: the hybrid layer's two branch
    norms over one residual and their mix (SPEC section 6), ``torch.lerp(LN_o(drop(p)(other) +
    residual), LN(drop(p)(x) + residual), weight)``, the other (seasonal) norm first, as the
    composition computed it. other: x's shape; weight: one element.
    """
    other = None
    if mix is not None:
        other = residual_norm_ref(mix[0], residual, mix[1], mix[2], eps, dropout_p, training)
    out = F.layer_norm(F.dropout(x, dropout_p, training) + residual, (residual.shape[-1],), norm_weight, norm_bias,
                       eps)
    return out if mix is None else torch.lerp(other, out, mix[3])
