"""Named bundles of the tensors each reference op reads.

The modules own the parameters; these bundles let the functional reference (and later
the fused backends) take one argument per sub-block instead of twenty loose tensors.
Every field is a tensor reference, so building a bundle costs nothing.
"""

from typing import NamedTuple, Optional

import torch


class LinearWeights(NamedTuple):
    weight: torch.Tensor  # (out_features, in_features)
    bias: torch.Tensor    # (out_features,)


class NormWeights(NamedTuple):
    weight: torch.Tensor  # (hidden,)
    bias: torch.Tensor    # (hidden,)
    eps: float


class FrequencyFilterWeights(NamedTuple):
    threshold: torch.Tensor  # () quantile level q, no gradient
    norm: NormWeights


class SeasonalWeights(NamedTuple):
    """SPEC section 4 (published ``MultiHeadAttention``)."""
    query: LinearWeights
    key: LinearWeights
    value: LinearWeights
    gate: LinearWeights                    # (2d, 2d), (2d,): shared by all heads
    conv_weights: tuple                    # (N, N, 3), (N, N, 5), (N, N, 7): small, middle, large
    conv_biases: tuple                     # three (N,)
    position_scales: torch.Tensor          # (3, N, 1): small, middle, large (the module's stacked parameter)
    origin_scale: torch.Tensor             # ()
    contrast_scale: torch.Tensor           # ()
    frequency_filter: FrequencyFilterWeights
    dense: LinearWeights
    norm: NormWeights
    # The stacked weight and bias that query, key and value are row views of, where the module
    # stores them stacked: the hybrid layer's (6H, H) [seasonal q, k, v | dynamic q, k, v],
    # which its fused path projects with in one GEMM. None: separate tensors.
    stacked_projections: Optional[LinearWeights] = None


class DynamicWeights(NamedTuple):
    """SPEC section 5 (published ``MultiHeadAttention1``)."""
    query: LinearWeights
    key: LinearWeights
    value: LinearWeights
    dense: LinearWeights
    norm: NormWeights
    stacked_projections: Optional[LinearWeights] = None  # as in SeasonalWeights


class FeedForwardWeights(NamedTuple):
    dense_in: LinearWeights
    dense_out: LinearWeights
    norm: NormWeights
    activation: str


class HybridLayerWeights(NamedTuple):
    """SPEC section 6: both branches, their mix and the feed-forward block."""
    seasonal: SeasonalWeights
    dynamic: DynamicWeights
    feed_forward: FeedForwardWeights
    branch_mix: torch.Tensor  # () v3: weight of the dynamic branch
