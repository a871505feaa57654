"""Public ops: each dispatches, per call, to the backend that ``asrec.backends`` selects.

Importing an op module registers it (order here is the order ``describe()`` lists).
"""

from .attention import attention, gated_attention
from .branches import dynamic_branch, seasonal_branch
from .contrast_gelu import contrast_gelu
from .fourier_smoothing import fourier_smoothing
from .frequency_filter import frequency_filter, frequency_filter_groups
from .hybrid_attention import hybrid_attention
from .hybrid_layer import hybrid_layer
from .input_stage import input_stage
from .multiscale_conv import multiscale_conv
from .registry import COMPOSITES, OPS
from .residual_norm import residual_norm

__all__ = ["COMPOSITES", "OPS", "attention", "contrast_gelu", "dynamic_branch", "fourier_smoothing",
           "frequency_filter", "frequency_filter_groups", "gated_attention", "hybrid_attention", "hybrid_layer",
           "input_stage", "multiscale_conv", "residual_norm", "seasonal_branch"]
