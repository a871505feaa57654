"""Hybrid layer (SPEC section 6): both attention branches, their mix, the feed-forward block."""

import torch
import torch.nn.functional as F

from .attention import attention_context_ref, merge_heads, seasonal_gate_ref
from .dynamic import dynamic_tail_ref
from .seasonal import seasonal_tail_ref
from .weights import FeedForwardWeights, HybridLayerWeights

ACTIVATIONS = {
    "gelu": F.gelu,  # exact erf form, as the published FeedForward.gelu
    "relu": F.relu,
    "swish": F.silu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
}


def feed_forward_ref(x: torch.Tensor, weights: FeedForwardWeights, dropout_p: float = 0.0,
                     training: bool = False) -> torch.Tensor:
    """``LN(drop(dense_out(act(dense_in(x)))) + x)``. x: (batch, seq_len, hidden)."""
    inner = ACTIVATIONS[weights.activation](F.linear(x, *weights.dense_in))
    out = F.dropout(F.linear(inner, *weights.dense_out), dropout_p, training)
    return F.layer_norm(out + x, (x.shape[-1],), weights.norm.weight, weights.norm.bias, weights.norm.eps)


def stacked_projection(weights: HybridLayerWeights) -> tuple:
    """Both branches' query/key/value as one (6H, H) weight, ordered q_s, q_d, k_s, k_d, v_s, v_d.

    That order makes the projection output view as (batch, seq, 3, 2 * heads, d) with the
    seasonal heads first, so one attention call serves both branches without a copy.
    """
    s, d = weights.seasonal, weights.dynamic
    order = (s.query, d.query, s.key, d.key, s.value, d.value)
    return torch.cat([w.weight for w in order]), torch.cat([w.bias for w in order])


def hybrid_layer_ref(x: torch.Tensor, key_bias: torch.Tensor, weights: HybridLayerWeights, n_heads: int,
                     hidden_dropout_p: float = 0.0, attn_dropout_p: float = 0.0, training: bool = False,
                     filter_scope: str = "batch") -> torch.Tensor:
    """``FFN(v3 * dynamic(x) + (1 - v3) * seasonal(x))``.

    The six projections run as one GEMM and the two branches' attention as one call over
    2 * heads heads (they share the input and the padding mask).
    x: (batch, seq_len, hidden); key_bias: (batch, 1, 1, seq_len). Returns x's shape.
    """
    batch, seq_len, hidden = x.shape
    head_dim = hidden // n_heads
    projected = F.linear(x, *stacked_projection(weights))
    q, k, v = projected.view(batch, seq_len, 3, 2 * n_heads, head_dim).permute(2, 0, 3, 1, 4).unbind(0)
    context = attention_context_ref(q, k, v, key_bias, attn_dropout_p, training)
    seasonal_context = seasonal_gate_ref(context[:, :n_heads], v[:, :n_heads], *weights.seasonal.gate)
    seasonal = seasonal_tail_ref(merge_heads(seasonal_context), x, weights.seasonal, hidden_dropout_p,
                                 training, filter_scope)
    dynamic = dynamic_tail_ref(merge_heads(context[:, n_heads:]), x, weights.dynamic, hidden_dropout_p,
                               training)
    mixed = torch.lerp(seasonal, dynamic, weights.branch_mix)
    return feed_forward_ref(mixed, weights.feed_forward, hidden_dropout_p, training)
