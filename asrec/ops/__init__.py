"""The public ops: leaf ops that dispatch per call to the backend ``asrec.backends`` selects
(reference | triton | cuda), and the compositions written over them (the two branches and
the hybrid layer), in which each leaf runs on its own backend.

One file per leaf op: ``asrec/ops/<op>.py`` holds its custom ops with their fakes, its
autograd Function(s), which name the launchers they call, and its public function.
Importing an op module registers it with ``asrec.backends`` (the order here is the order
``describe()`` lists). What the op files share lives in private modules: ``_custom_op``
(the custom-op wrapper), ``_dropout`` (the dropout RNG state), ``_checks`` (argument and
kernel-support checks). The weight bundles the compositions take (``SeasonalWeights``, ...)
are defined beside the reference, which takes them too, and exported here.
"""

from .input_stage import input_stage  # noqa: I001 (registration order)
from .padding_bias import padding_bias
from .fourier_smoothing import fourier_smoothing
from .frequency_filter import frequency_filter
from .frequency_filter_groups import frequency_filter_groups
from .gated_attention import attention, gated_attention
from .hybrid_attention import hybrid_attention
from .take_rows import take_rows
from .multiscale_conv import multiscale_conv
from .contrast_gelu import contrast_gelu
from .residual_norm import residual_norm
from .seasonal_branch import seasonal_branch
from .dynamic_branch import dynamic_branch
from .feed_forward import feed_forward
from .hybrid_layer import hybrid_layer
from .cross_entropy import cross_entropy
from .linear_cross_entropy import linear_cross_entropy
from .target_ranks import target_ranks
from .top_items import top_items
from ._dropout import shared_dropout_draw as shared_dropout_draw
from ..reference.weights import (
    DynamicWeights as DynamicWeights,
    FeedForwardWeights as FeedForwardWeights,
    FrequencyFilterWeights as FrequencyFilterWeights,
    HybridLayerWeights as HybridLayerWeights,
    LinearWeights as LinearWeights,
    NormWeights as NormWeights,
    SeasonalWeights as SeasonalWeights,
)

# the ops (each a documented function); the weight bundles and shared_dropout_draw are importable from here too
__all__ = ["attention", "contrast_gelu", "cross_entropy", "dynamic_branch", "feed_forward", "fourier_smoothing",
           "frequency_filter", "frequency_filter_groups", "gated_attention", "hybrid_attention", "hybrid_layer",
           "input_stage", "linear_cross_entropy", "multiscale_conv", "padding_bias", "residual_norm", "seasonal_branch",
           "take_rows", "target_ranks", "top_items"]
