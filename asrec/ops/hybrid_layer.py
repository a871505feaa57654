"""The hybrid layer (SPEC section 6), a composition: both branches' attention in one leaf op
(``hybrid_attention``), each branch's tail, their mix, the feed-forward block."""

import torch

from .. import backends
from ..reference.weights import HybridLayerWeights
from . import _contract
from .dynamic_branch import dynamic_tail
from .feed_forward import _feed_forward
from .hybrid_attention import hybrid_attention
from .seasonal_branch import seasonal_tail
from .take_rows import take_rows


def hybrid_layer(x: torch.Tensor, key_bias: torch.Tensor, weights: HybridLayerWeights, n_heads: int,
                 hidden_dropout_p: float = 0.0, attn_dropout_p: float = 0.0, training: bool = False,
                 filter_scope: str = "batch", output_rows=None) -> torch.Tensor:
    """``FFN(v3 * dynamic(x) + (1 - v3) * seasonal(x))``.

    x: (batch, seq_len, hidden); key_bias: (batch, 1, 1, seq_len). Returns x's shape, or
    (batch, 1, hidden) with ``output_rows`` (batch,): the layer's output at those positions
    only. (Everything after the seasonal contrast and the attention rows is row-wise, so
    the model's last layer skips the rows it never reads: same values, less work.)
    """
    _contract.check_branch("hybrid_layer", x, key_bias, weights, n_heads, hidden_dropout_p, attn_dropout_p,
                           training, output_rows, filter_scope)
    return _hybrid_layer(x, key_bias, weights, n_heads, hidden_dropout_p, attn_dropout_p, training, filter_scope,
                         output_rows, residual=None, with_residual=False)


def _hybrid_layer(x: torch.Tensor, key_bias: torch.Tensor, weights: HybridLayerWeights, n_heads: int,
                  hidden_dropout_p: float, attn_dropout_p: float, training: bool, filter_scope: str, output_rows,
                  residual, with_residual: bool):
    """``hybrid_layer`` for ``asrec.modules`` (the model's path), with the second handles.

    residual: x's values again for the branches' residual path, as a second handle (an
    output of the op that made x, which then adds the two paths' gradients in its own
    backward kernel); None: x itself. ``with_residual=True`` returns (out, residual): the
    output and such a second handle of it, for the next layer.
    """
    residual = x if residual is None else residual
    # every query row of both branches (one launch on "triton"); with output_rows the rows of
    # the dynamic context and of the residual are then taken together (one launch each way)
    seasonal_context, dynamic_context = hybrid_attention(x, key_bias, weights.seasonal, weights.dynamic, n_heads,
                                                         attn_dropout_p, training)
    if output_rows is not None:
        dynamic_context, residual = take_rows(output_rows, dynamic_context, residual)
    seasonal_norm = weights.seasonal.norm
    if seasonal_norm.eps != weights.dynamic.norm.eps:
        raise ValueError(f"hybrid_layer: the branch norms' eps differ ({seasonal_norm.eps} and "
                         f"{weights.dynamic.norm.eps}); the layer normalises both in one pass with one eps")
    seasonal_dense = seasonal_tail(seasonal_context, None, weights.seasonal, hidden_dropout_p, training, filter_scope,
                                   output_rows)
    # both branches' dropout + residual + LayerNorm and their mix lerp(seasonal, dynamic, v3)
    # in one norm kernel (one read of the shared residual, its two gradients summed there)
    mixed = dynamic_tail(dynamic_context, residual, weights.dynamic, hidden_dropout_p, training,
                         mix=(seasonal_dense, seasonal_norm.weight, seasonal_norm.bias, weights.branch_mix),
                         other_bias=weights.seasonal.dense.bias)
    return _feed_forward(mixed, weights.feed_forward, hidden_dropout_p, training, with_residual)


backends.register_composition("hybrid_layer")
