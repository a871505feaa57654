"""The attention of both branches of a layer (SPEC sections 4 and 5), up to their dense projections."""

import torch
import torch.nn.functional as F

from .attention import attention_context_ref, gated_attention_ref, merge_heads, split_heads, take_rows
from .weights import DynamicWeights, SeasonalWeights


def hybrid_attention_ref(x: torch.Tensor, key_bias: torch.Tensor, seasonal: SeasonalWeights, dynamic: DynamicWeights,
                         n_heads: int, dropout_p: float = 0.0, training: bool = False, output_rows=None) -> tuple:
    """(seasonal context, dynamic context), heads merged.

    seasonal context: ``merge_heads(gate(drop(softmax(q k^T / sqrt(d) + m)) v, v))`` of the
    seasonal projections, (batch, seq_len, hidden), every row (the convolutions after it mix
    positions); dynamic context: ``merge_heads(drop(softmax(...)) v)`` of the dynamic
    projections, (batch, seq_len, hidden), or with ``output_rows`` (batch,) only those query
    rows, (batch, 1, hidden). x: (batch, seq_len, hidden); key_bias: (batch, 1, 1, seq_len).

    Here each branch projects on its own (on the CPU one stacked (H, 6H) projection was
    slower: its (batch, seq_len, 6H) output is a fresh, page-faulting allocation per call);
    the Triton backend stacks the six projections into one GEMM.
    """
    q = split_heads(F.linear(x, *seasonal.query), n_heads)
    k = split_heads(F.linear(x, *seasonal.key), n_heads)
    v = split_heads(F.linear(x, *seasonal.value), n_heads)
    seasonal_context = merge_heads(gated_attention_ref(q, k, v, key_bias, *seasonal.gate, dropout_p, training))
    q = split_heads(F.linear(take_rows(x, output_rows), *dynamic.query), n_heads)
    k = split_heads(F.linear(x, *dynamic.key), n_heads)
    v = split_heads(F.linear(x, *dynamic.value), n_heads)
    dynamic_context = merge_heads(attention_context_ref(q, k, v, key_bias, dropout_p, training))
    return seasonal_context, dynamic_context
