"""FeedForward: the point-wise feed-forward block of each layer (SPEC section 6)."""

import torch
from torch import nn

from ..ops import FeedForwardWeights, LinearWeights, NormWeights
from ..ops.feed_forward import feed_forward
from ..reference.activations import ACTIVATIONS


class FeedForward(nn.Module):
    """``LN(drop(dense_out(act(dense_in(x)))) + x)``; act one of ``asrec.reference.ACTIVATIONS``."""

    def __init__(self, hidden_size: int, inner_size: int, hidden_dropout_prob: float = 0.5,
                 hidden_act: str = "gelu", layer_norm_eps: float = 1e-12, device=None, dtype=None):
        super().__init__()
        if hidden_act not in ACTIVATIONS:
            raise ValueError(f"hidden_act: expected one of {sorted(ACTIVATIONS)}, got {hidden_act!r}")
        factory = dict(device=device, dtype=dtype)
        self.hidden_act = hidden_act
        self.hidden_dropout_prob = hidden_dropout_prob
        self.dense_in = nn.Linear(hidden_size, inner_size, **factory)
        self.dense_out = nn.Linear(inner_size, hidden_size, **factory)
        self.norm = nn.LayerNorm(hidden_size, eps=layer_norm_eps, **factory)

    def weights(self) -> FeedForwardWeights:
        return FeedForwardWeights(LinearWeights(self.dense_in.weight, self.dense_in.bias),
                                  LinearWeights(self.dense_out.weight, self.dense_out.bias),
                                  NormWeights(self.norm.weight, self.norm.bias, self.norm.eps), self.hidden_act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (batch, seq_len, hidden) -> same shape. The standalone entry (``ops.feed_forward``):
        ``HybridLayer`` passes this module's ``weights()`` to ``ops.hybrid_layer`` and never calls it."""
        return feed_forward(x, self.weights(), self.hidden_dropout_prob, self.training)
