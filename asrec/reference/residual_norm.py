"""Dropout + residual + LayerNorm: the norm after each dense projection (SPEC sections 4-6)."""

import torch
import torch.nn.functional as F


def residual_norm_ref(x: torch.Tensor, residual: torch.Tensor, norm_weight: torch.Tensor, norm_bias: torch.Tensor,
                      eps: float, dropout_p: float = 0.0, training: bool = False, mix: tuple = None,
                      x_bias: torch.Tensor = None, other_bias: torch.Tensor = None) -> torch.Tensor:
    """``LN(drop(p)(x + x_bias) + residual)`` over the last axis. x, residual: (..., hidden), same
    shape; x_bias: optional (hidden,), the bias of the dense projection x (``F.linear(a, W, b)``
    is ``F.linear(a, W) + b``: the fused kernels add it here and reduce its gradient with the
    norm's).

    ``mix=(other, other_norm_weight, other_norm_bias, weight)``: the hybrid layer's two branch
    norms over one residual and their mix (SPEC section 6), ``torch.lerp(LN_o(drop(p)(other) +
    residual), LN(drop(p)(x) + residual), weight)``, the other (seasonal) norm first, as the
    composition computed it. other: x's shape; weight: one element; other_bias: optional
    (hidden,), added to other as x_bias to x (only with mix).
    """
    other = None
    if mix is not None:
        other = residual_norm_ref(mix[0], residual, mix[1], mix[2], eps, dropout_p, training, x_bias=other_bias)
    elif other_bias is not None:
        raise ValueError("residual_norm_ref: other_bias is the bias of mix's other: it needs mix")
    if x_bias is not None:
        x = x + x_bias
    out = F.layer_norm(F.dropout(x, dropout_p, training) + residual, (residual.shape[-1],), norm_weight, norm_bias,
                       eps)
    return out if mix is None else torch.lerp(other, out, mix[3])
