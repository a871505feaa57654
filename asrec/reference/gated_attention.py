"""Masked multi-head attention and the seasonal gate (SPEC sections 4 and 5): ``attention_context_ref``
(the dynamic branch's attention) and ``gated_attention_ref`` (the seasonal branch's)."""

import torch
import torch.nn.functional as F


def attention_context_ref(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, key_bias: torch.Tensor,
                          dropout_p: float = 0.0, training: bool = False) -> torch.Tensor:
    """``drop(softmax(q k^T / sqrt(d) + key_bias)) v``, bidirectional (no causal mask).

    q, k, v: (batch, heads, seq_len, head_dim); key_bias: (batch, 1, 1, seq_len).
    Returns (batch, heads, seq_len, head_dim).
    """
    return F.scaled_dot_product_attention(q, k, v, attn_mask=key_bias.to(q.dtype),
                                          dropout_p=dropout_p if training else 0.0)


def seasonal_gate_ref(context: torch.Tensor, value: torch.Tensor, gate_weight: torch.Tensor,
                      gate_bias: torch.Tensor) -> torch.Tensor:
    """The GRU-like gate of the seasonal branch.

    ``r, i = split([value, context] @ gate_weight^T + gate_bias)``;
    ``out = (1 - sigmoid(i)) * context + sigmoid(i) * gelu(context + sigmoid(r) * value)``.
    context, value: (batch, heads, seq_len, head_dim); gate_weight: (2*head_dim, 2*head_dim),
    gate_bias: (2*head_dim,), shared by all heads. Returns context's shape.
    """
    head_dim = value.shape[-1]
    # [v, c] @ W^T + b as (v @ W[:, :d]^T + b) + c @ W[:, d:]^T: [v, c] is never materialised
    # (out of place, so that autocast casts both products alike)
    gates = torch.addmm(gate_bias, value.reshape(-1, head_dim), gate_weight[:, :head_dim].t())
    gates = torch.addmm(gates, context.reshape(-1, head_dim), gate_weight[:, head_dim:].t())
    reset, update = torch.sigmoid(gates).view(*context.shape[:-1], 2 * head_dim).chunk(2, dim=-1)
    candidate = F.gelu(torch.addcmul(context, reset, value))
    return torch.lerp(context, candidate, update)


def gated_attention_ref(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, key_bias: torch.Tensor,
                        gate_weight: torch.Tensor, gate_bias: torch.Tensor, dropout_p: float = 0.0,
                        training: bool = False) -> torch.Tensor:
    """The seasonal branch's attention: ``seasonal_gate_ref(attention_context_ref(...), v, ...)``.

    q, k, v: (batch, heads, seq_len, head_dim) -> (batch, heads, seq_len, head_dim).
    """
    return seasonal_gate_ref(attention_context_ref(q, k, v, key_bias, dropout_p, training), v, gate_weight, gate_bias)
