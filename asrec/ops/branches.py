"""Public ops for the two attention branches on their own (SPEC sections 4 and 5)."""

import torch

from ..reference.weights import DynamicWeights, SeasonalWeights
from .registry import implementation


def seasonal_branch(x: torch.Tensor, key_bias: torch.Tensor, weights: SeasonalWeights, n_heads: int,
                    hidden_dropout_p: float = 0.0, attn_dropout_p: float = 0.0, training: bool = False,
                    filter_scope: str = "batch") -> torch.Tensor:
    """See ``asrec.reference.seasonal_branch_ref``. x: (batch, seq_len, hidden)."""
    return implementation("seasonal_branch", x.device.type)(x, key_bias, weights, n_heads, hidden_dropout_p,
                                                            attn_dropout_p, training, filter_scope)


def dynamic_branch(x: torch.Tensor, key_bias: torch.Tensor, weights: DynamicWeights, n_heads: int,
                   hidden_dropout_p: float = 0.0, attn_dropout_p: float = 0.0,
                   training: bool = False) -> torch.Tensor:
    """See ``asrec.reference.dynamic_branch_ref``. x: (batch, seq_len, hidden)."""
    return implementation("dynamic_branch", x.device.type)(x, key_bias, weights, n_heads, hidden_dropout_p,
                                                           attn_dropout_p, training)
