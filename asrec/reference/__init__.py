"""The exact PyTorch math of SPEC.md, one function per op: the definition every backend is held to.

Computes in float32 (float64 when given float64), without host synchronisation; it is
also the CPU path.
"""

from .attention import attention_context_ref, key_padding_bias, seasonal_gate_ref
from .contrast import contrast_gelu_ref, oversmoothing_contrast_ref
from .convolutions import multiscale_conv_ref
from .dynamic import dynamic_branch_ref
from .frequency_filter import frequency_filter_ref, frequency_keep_mask
from .fsm import fourier_smoothing_ref, next_fast_len
from .hybrid_attention import hybrid_attention_ref
from .input_stage import input_stage_ref
from .layer import ACTIVATIONS, feed_forward_ref, hybrid_layer_ref
from .residual_norm import residual_norm_ref
from .seasonal import seasonal_branch_ref

__all__ = [
    "ACTIVATIONS",
    "attention_context_ref",
    "contrast_gelu_ref",
    "dynamic_branch_ref",
    "feed_forward_ref",
    "fourier_smoothing_ref",
    "frequency_filter_ref",
    "frequency_keep_mask",
    "hybrid_attention_ref",
    "hybrid_layer_ref",
    "input_stage_ref",
    "key_padding_bias",
    "multiscale_conv_ref",
    "next_fast_len",
    "oversmoothing_contrast_ref",
    "residual_norm_ref",
    "seasonal_branch_ref",
    "seasonal_gate_ref",
]
