"""DynamicAttention: the published ``MultiHeadAttention1`` block (SPEC section 5)."""

import torch
from torch import nn

from ..ops.dynamic_branch import dynamic_branch
from ..reference.weights import DynamicWeights, LinearWeights, NormWeights


class DynamicAttention(nn.Module):
    """Plain multi-head attention with the padding mask: ``LN(drop(dense(attn(x))) + x)``."""

    def __init__(self, hidden_size: int, n_heads: int, hidden_dropout_prob: float = 0.5,
                 attn_dropout_prob: float = 0.5, layer_norm_eps: float = 1e-12, device=None, dtype=None):
        super().__init__()
        factory = dict(device=device, dtype=dtype)
        if hidden_size % n_heads != 0:
            raise ValueError(f"n_heads: must divide hidden_size={hidden_size}, got {n_heads}")
        self.n_heads = n_heads
        self.hidden_dropout_prob = hidden_dropout_prob
        self.attn_dropout_prob = attn_dropout_prob
        self.query = nn.Linear(hidden_size, hidden_size, **factory)
        self.key = nn.Linear(hidden_size, hidden_size, **factory)
        self.value = nn.Linear(hidden_size, hidden_size, **factory)
        self.dense = nn.Linear(hidden_size, hidden_size, **factory)
        self.norm = nn.LayerNorm(hidden_size, eps=layer_norm_eps, **factory)

    def weights(self) -> DynamicWeights:
        return DynamicWeights(*(LinearWeights(m.weight, m.bias) for m in (self.query, self.key, self.value,
                                                                          self.dense)),
                              norm=NormWeights(self.norm.weight, self.norm.bias, self.norm.eps))

    def forward(self, x: torch.Tensor, key_bias: torch.Tensor) -> torch.Tensor:
        """x: (batch, seq_len, hidden); key_bias: (batch, 1, 1, seq_len)."""
        return dynamic_branch(x, key_bias, self.weights(), self.n_heads, self.hidden_dropout_prob,
                              self.attn_dropout_prob, self.training)
