"""Public ops for the two attention branches on their own (SPEC sections 4 and 5).

Both are compositions: the reference math over the dispatching leaf ops (the three
frequency filters in one call, the residual norms), so on the Triton backend those leaves
run fused while attention, convolutions and the contrast are the reference's until their
kernels land.
"""

import functools

import torch

from ..reference import dynamic_branch_ref, seasonal_branch_ref
from ..reference.weights import DynamicWeights, SeasonalWeights
from .composites import DISPATCHED_PIECES
from .registry import implementation, register_composite


def seasonal_branch(x: torch.Tensor, key_bias: torch.Tensor, weights: SeasonalWeights, n_heads: int,
                    hidden_dropout_p: float = 0.0, attn_dropout_p: float = 0.0, training: bool = False,
                    filter_scope: str = "batch") -> torch.Tensor:
    """See ``asrec.reference.seasonal_branch_ref``. x: (batch, seq_len, hidden)."""
    args = (x, key_bias, weights, n_heads, hidden_dropout_p, attn_dropout_p, training, filter_scope)
    return implementation("seasonal_branch", x.device, *args)(*args)


def dynamic_branch(x: torch.Tensor, key_bias: torch.Tensor, weights: DynamicWeights, n_heads: int,
                   hidden_dropout_p: float = 0.0, attn_dropout_p: float = 0.0,
                   training: bool = False) -> torch.Tensor:
    """See ``asrec.reference.dynamic_branch_ref``. x: (batch, seq_len, hidden)."""
    args = (x, key_bias, weights, n_heads, hidden_dropout_p, attn_dropout_p, training)
    return implementation("dynamic_branch", x.device, *args)(*args)


register_composite("seasonal_branch", functools.partial(seasonal_branch_ref, pieces=DISPATCHED_PIECES))
register_composite("dynamic_branch", functools.partial(dynamic_branch_ref, pieces=DISPATCHED_PIECES))
