"""The exact PyTorch math of SPEC.md for the leaf ops, one ``<op>_ref`` function each: the
definition every backend is held to. (The branches and the layer are compositions of
these ops, written once in ``asrec.ops``.)

Computes in float32 (float64 when given float64), without host synchronisation; it is
also the CPU path.
"""

from .activations import ACTIVATIONS
from .contrast_gelu import contrast_gelu_ref, oversmoothing_contrast_ref
from .cross_entropy import cross_entropy_ref
from .fourier_smoothing import fourier_smoothing_ref, next_fast_len
from .frequency_filter import frequency_filter_groups_ref, frequency_filter_ref, frequency_keep_mask
from .gated_attention import attention_context_ref, gated_attention_ref, seasonal_gate_ref
from .hybrid_attention import hybrid_attention_ref
from .input_stage import input_stage_ref
from .multiscale_conv import multiscale_conv_ref
from .padding_bias import key_padding_bias, padding_bias_ref
from .residual_norm import residual_norm_ref
from .take_rows import take_rows_ref

__all__ = [
    "ACTIVATIONS",
    "attention_context_ref",
    "contrast_gelu_ref",
    "cross_entropy_ref",
    "fourier_smoothing_ref",
    "frequency_filter_groups_ref",
    "frequency_filter_ref",
    "frequency_keep_mask",
    "gated_attention_ref",
    "hybrid_attention_ref",
    "input_stage_ref",
    "key_padding_bias",
    "multiscale_conv_ref",
    "next_fast_len",
    "oversmoothing_contrast_ref",
    "padding_bias_ref",
    "residual_norm_ref",
    "seasonal_gate_ref",
    "take_rows_ref",
]
