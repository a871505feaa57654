"""DynamicAttention: the published ``MultiHeadAttention1`` block (SPEC section 5)."""

import torch
from torch import nn

from ..ops import DynamicWeights, LinearWeights, NormWeights
from ..ops.dynamic_branch import dynamic_branch
from .stacked import StackedProjections, attach_query_key_value, load_stacked_projections


class DynamicAttention(nn.Module):
    """Plain multi-head attention with the padding mask: ``LN(drop(dense(attn(x))) + x)``.

    ``query``/``key``/``value`` are ``ProjectionRows``, rows of a ``StackedProjections``: the
    branch's own (3H, H) ``projections`` when it stands alone, or rows 3-5 of the hybrid
    layer's (6H, H) one (``projections``, ``first_projection``); the state_dict keeps the
    ``nn.Linear`` names (``asrec.modules.stacked``).
    """

    def __init__(self, hidden_size: int, n_heads: int, hidden_dropout_prob: float = 0.5,
                 attn_dropout_prob: float = 0.5, layer_norm_eps: float = 1e-12, device=None, dtype=None,
                 projections: StackedProjections = None, first_projection: int = 0):
        super().__init__()
        factory = dict(device=device, dtype=dtype)
        if hidden_size % n_heads != 0:
            raise ValueError(f"n_heads: must divide hidden_size={hidden_size}, got {n_heads}")
        self.n_heads = n_heads
        self.hidden_dropout_prob = hidden_dropout_prob
        self.attn_dropout_prob = attn_dropout_prob
        attach_query_key_value(self, projections, first_projection, hidden_size, factory)
        self.dense = nn.Linear(hidden_size, hidden_size, **factory)
        self.norm = nn.LayerNorm(hidden_size, eps=layer_norm_eps, **factory)

    def weights(self, projections: tuple = None) -> DynamicWeights:
        """projections: this branch's (query, key, value) LinearWeights when the stack's owner
        split it already (the hybrid layer splits once for both branches); else split here."""
        stack = self.query.stack
        if projections is None:
            projections = stack.split()[self.query.index:self.query.index + 3]
        return DynamicWeights(*projections, LinearWeights(self.dense.weight, self.dense.bias),
                              norm=NormWeights(self.norm.weight, self.norm.bias, self.norm.eps),
                              stacked_projections=stack.stacked())

    def forward(self, x: torch.Tensor, key_bias: torch.Tensor) -> torch.Tensor:
        """x: (batch, seq_len, hidden); key_bias: (batch, 1, 1, seq_len) -> x's shape. The standalone
        entry (``ops.dynamic_branch``): ``HybridLayer`` reads this module's ``weights()`` and never
        calls it."""
        return dynamic_branch(x, key_bias, self.weights(), self.n_heads, self.hidden_dropout_prob,
                              self.attn_dropout_prob, self.training)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        load_stacked_projections(self, state_dict, prefix, strict, missing_keys, unexpected_keys, error_msgs)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)
