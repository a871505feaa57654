"""The leaf implementations the composite reference ops are built from.

A branch or a layer is a composition of leaf ops; a fused backend runs the same
composition with its own leaves (``asrec.ops`` passes the Triton ones), so the math of
the composition is written once, here in the reference.
"""

from typing import Callable, NamedTuple

from .attention import attention_context_ref, gated_attention_ref
from .contrast import contrast_gelu_ref
from .convolutions import multiscale_conv_ref
from .frequency_filter import frequency_filter_groups_ref
from .hybrid_attention import hybrid_attention_ref
from .residual_norm import residual_norm_ref


class Pieces(NamedTuple):
    """filter_groups: as ``frequency_filter_groups_ref``; residual_norm: as ``residual_norm_ref``;
    contrast_gelu: as ``contrast_gelu_ref``; attention: as ``attention_context_ref``;
    gated_attention: as ``gated_attention_ref``; multiscale_conv: as ``multiscale_conv_ref``;
    hybrid_attention: as ``hybrid_attention_ref`` (both branches' attention, for the layer)."""
    filter_groups: Callable
    residual_norm: Callable
    contrast_gelu: Callable
    attention: Callable
    gated_attention: Callable
    multiscale_conv: Callable
    hybrid_attention: Callable


REFERENCE_PIECES = Pieces(filter_groups=frequency_filter_groups_ref, residual_norm=residual_norm_ref,
                          contrast_gelu=contrast_gelu_ref, attention=attention_context_ref,
                          gated_attention=gated_attention_ref, multiscale_conv=multiscale_conv_ref,
                          hybrid_attention=hybrid_attention_ref)
