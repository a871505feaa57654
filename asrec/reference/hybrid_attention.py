"""The attention of each branch up to its dense projection (SPEC sections 4 and 5), and of
both branches of a layer together."""

import torch
import torch.nn.functional as F

from ._heads import merge_heads, split_heads
from .gated_attention import attention_context_ref, gated_attention_ref
from .take_rows import take_rows_ref
from .weights import DynamicWeights, SeasonalWeights


def seasonal_context_ref(x: torch.Tensor, key_bias: torch.Tensor, weights: SeasonalWeights, n_heads: int,
                         dropout_p: float = 0.0, training: bool = False) -> torch.Tensor:
    """``merge_heads(gate(drop(softmax(q k^T / sqrt(d) + m)) v, v))`` of the seasonal projections,
    every row (the convolutions after it mix positions): (batch, seq_len, hidden)."""
    q = split_heads(F.linear(x, *weights.query), n_heads)
    k = split_heads(F.linear(x, *weights.key), n_heads)
    v = split_heads(F.linear(x, *weights.value), n_heads)
    return merge_heads(gated_attention_ref(q, k, v, key_bias, *weights.gate, dropout_p, training))


def dynamic_context_ref(x: torch.Tensor, key_bias: torch.Tensor, weights: DynamicWeights, n_heads: int,
                        dropout_p: float = 0.0, training: bool = False, output_rows=None) -> torch.Tensor:
    """``merge_heads(drop(softmax(q k^T / sqrt(d) + m)) v)`` of the dynamic projections:
    (batch, seq_len, hidden), or with ``output_rows`` (batch,) only those query rows,
    (batch, 1, hidden) (attention rows are independent of each other)."""
    q = split_heads(F.linear(take_rows_ref(output_rows, x)[0], *weights.query), n_heads)
    k = split_heads(F.linear(x, *weights.key), n_heads)
    v = split_heads(F.linear(x, *weights.value), n_heads)
    return merge_heads(attention_context_ref(q, k, v, key_bias, dropout_p, training))


def hybrid_attention_ref(x: torch.Tensor, key_bias: torch.Tensor, seasonal: SeasonalWeights, dynamic: DynamicWeights,
                         n_heads: int, dropout_p: float = 0.0, training: bool = False, output_rows=None) -> tuple:
    """(seasonal context, dynamic context), heads merged: ``seasonal_context_ref`` (every row)
    and ``dynamic_context_ref`` (``output_rows`` only, if given). x: (batch, seq_len, hidden);
    key_bias: (batch, 1, 1, seq_len).

    Here each branch projects on its own: on the CPU one stacked (H, 6H) projection is
    slower (its (batch, seq_len, 6H) output is a fresh, page-faulting allocation per call);
    the Triton backend stacks the six projections into one GEMM.
    """
    return (seasonal_context_ref(x, key_bias, seasonal, n_heads, dropout_p, training),
            dynamic_context_ref(x, key_bias, dynamic, n_heads, dropout_p, training, output_rows))
