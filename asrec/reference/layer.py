"""Hybrid layer (SPEC section 6): both attention branches, their mix, the feed-forward block."""

import torch
import torch.nn.functional as F

from .attention import take_rows
from .dynamic import dynamic_tail_ref
from .pieces import REFERENCE_PIECES, Pieces
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
                     training: bool = False, pieces: Pieces = REFERENCE_PIECES) -> torch.Tensor:
    """``LN(drop(dense_out(act(dense_in(x)))) + x)``. x: (batch, seq_len, hidden)."""
    inner = ACTIVATIONS[weights.activation](F.linear(x, *weights.dense_in))
    norm = weights.norm
    return pieces.residual_norm(F.linear(inner, *weights.dense_out), x, norm.weight, norm.bias, norm.eps, dropout_p,
                                training)


def hybrid_layer_ref(x: torch.Tensor, key_bias: torch.Tensor, weights: HybridLayerWeights, n_heads: int,
                     hidden_dropout_p: float = 0.0, attn_dropout_p: float = 0.0, training: bool = False,
                     filter_scope: str = "batch", output_rows=None,
                     pieces: Pieces = REFERENCE_PIECES) -> torch.Tensor:
    """``FFN(v3 * dynamic(x) + (1 - v3) * seasonal(x))``.

    x: (batch, seq_len, hidden); key_bias: (batch, 1, 1, seq_len). Returns x's shape, or
    (batch, 1, hidden) with ``output_rows`` (batch,): the layer's output at those positions
    only. (Everything after the seasonal contrast and the attention rows is row-wise, so
    the model's last layer skips the rows it never reads: same values, less work.)
    Both branches' attention is one piece (``hybrid_attention``), so that a fused backend
    can project and attend for both at once; each branch's tail follows.
    ``pieces``: the leaf implementations (``asrec.reference.pieces``).
    """
    seasonal_context, dynamic_context = pieces.hybrid_attention(x, key_bias, weights.seasonal, weights.dynamic,
                                                                n_heads, attn_dropout_p, training, output_rows)
    seasonal = seasonal_tail_ref(seasonal_context, x, weights.seasonal, hidden_dropout_p, training, filter_scope,
                                 output_rows, pieces)
    dynamic = dynamic_tail_ref(dynamic_context, take_rows(x, output_rows), weights.dynamic, hidden_dropout_p,
                               training, pieces)
    return feed_forward_ref(torch.lerp(seasonal, dynamic, weights.branch_mix), weights.feed_forward,
                            hidden_dropout_p, training, pieces)
