"""The leaf ops a composite op (branch, layer) is built from, each dispatching per call."""

from ..reference.pieces import Pieces
from .attention import attention, gated_attention
from .contrast_gelu import contrast_gelu
from .frequency_filter import frequency_filter_groups
from .hybrid_attention import hybrid_attention
from .multiscale_conv import multiscale_conv
from .residual_norm import residual_norm

DISPATCHED_PIECES = Pieces(filter_groups=frequency_filter_groups, residual_norm=residual_norm,
                           contrast_gelu=contrast_gelu, attention=attention, gated_attention=gated_attention,
                           multiscale_conv=multiscale_conv, hybrid_attention=hybrid_attention)
