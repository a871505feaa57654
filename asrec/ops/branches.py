"""Public ops for the two attention branches on their own (SPEC sections 4 and 5).

The seasonal branch's Triton implementation runs the fused frequency filter (all three
filters in one launch per kernel) inside the reference composition; the attention, the
convolutions, the contrast and the norms are the reference's until their kernels land.
"""

import functools

import torch

from ..reference import dynamic_branch_ref, seasonal_branch_ref
from ..reference.weights import DynamicWeights, SeasonalWeights
from ._triton_checks import unsupported_tensors
from .frequency_filter import frequency_filter_groups_triton
from .registry import TritonImplementation, implementation, register


def seasonal_filters_unsupported(x, *args, **kwargs):
    """Whether the seasonal branch's filters (input shaped like x) can run on Triton."""
    from ..kernels.frequency_filter import unsupported_shape

    return unsupported_tensors(x=x) or unsupported_shape(x.shape[-2], x.shape[-1])


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


register("seasonal_branch", seasonal_branch_ref,
         TritonImplementation(functools.partial(seasonal_branch_ref, filter_groups=frequency_filter_groups_triton),
                              seasonal_filters_unsupported))
register("dynamic_branch", dynamic_branch_ref)
