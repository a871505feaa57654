"""The dynamic attention branch (SPEC section 5), a composition of leaf ops: plain masked
attention, dense, dropout + residual + LayerNorm. Under ``"reference"`` this is the
reference composition; on a fused backend each leaf runs there."""

import torch
import torch.nn.functional as F

from .. import backends
from ..reference._heads import merge_heads, split_heads
from ..reference.weights import DynamicWeights
from . import _contract
from .gated_attention import attention
from .residual_norm import project_without_bias, residual_norm
from .take_rows import take_rows


def dynamic_tail(context: torch.Tensor, residual: torch.Tensor, weights: DynamicWeights, dropout_p: float,
                 training: bool, mix: tuple = None, other_bias: torch.Tensor = None) -> torch.Tensor:
    """``LN(drop(dense(context)) + residual)``. context, residual: (batch, seq_len | 1, hidden).
    ``mix``, ``other_bias``: ``residual_norm``'s, the hybrid layer's seasonal norm and branch mix
    in the same kernel (other_bias: the bias of the seasonal dense projection mix's other, when
    that comes without it)."""
    norm = weights.norm
    dense = weights.dense
    # the dense bias goes to the norm, which adds it before the dropout: a plain mm here, and
    # its gradient is one more row of the norm's own second-stage sums
    return residual_norm(project_without_bias(context, dense.weight), residual, norm.weight, norm.bias, norm.eps,
                         dropout_p, training, mix, x_bias=dense.bias, other_bias=other_bias)


def dynamic_branch(x: torch.Tensor, key_bias: torch.Tensor, weights: DynamicWeights, n_heads: int,
                   hidden_dropout_p: float = 0.0, attn_dropout_p: float = 0.0, training: bool = False,
                   output_rows=None) -> torch.Tensor:
    """SPEC section 5. x: (batch, seq_len, hidden); key_bias: (batch, 1, 1, seq_len).

    output_rows: optional (batch,) positions; then only those query rows are computed and
    the result is (batch, 1, hidden) (attention rows are independent of each other).

    The standalone entry (``DynamicAttention.forward``); the model's layers run the branch inside
    ``hybrid_layer`` instead (``hybrid_attention``, then ``dynamic_tail``, its norm joined with the
    seasonal branch's).
    """
    _contract.check_branch("dynamic_branch", x, key_bias, weights, n_heads, hidden_dropout_p, attn_dropout_p,
                           training, output_rows)
    (rows,) = take_rows(output_rows, x)
    q = split_heads(F.linear(rows, *weights.query), n_heads)
    k = split_heads(F.linear(x, *weights.key), n_heads)
    v = split_heads(F.linear(x, *weights.value), n_heads)
    context = merge_heads(attention(q, k, v, key_bias, attn_dropout_p, training))
    return dynamic_tail(context, rows, weights, hidden_dropout_p, training)


backends.register_composition("dynamic_branch")
