"""Public hybrid layer op (SPEC section 6): the reference composition over the dispatching
leaf ops (see ``branches``)."""

import functools

import torch

from ..reference import hybrid_layer_ref
from ..reference.weights import HybridLayerWeights
from .composites import DISPATCHED_PIECES
from .registry import implementation, register_composite


def hybrid_layer(x: torch.Tensor, key_bias: torch.Tensor, weights: HybridLayerWeights, n_heads: int,
                 hidden_dropout_p: float = 0.0, attn_dropout_p: float = 0.0, training: bool = False,
                 filter_scope: str = "batch", output_rows=None) -> torch.Tensor:
    """See ``asrec.reference.hybrid_layer_ref``. x: (batch, seq_len, hidden); output_rows: (batch,) or None."""
    args = (x, key_bias, weights, n_heads, hidden_dropout_p, attn_dropout_p, training, filter_scope, output_rows)
    return implementation("hybrid_layer", x.device, *args)(*args)


register_composite("hybrid_layer", functools.partial(hybrid_layer_ref, pieces=DISPATCHED_PIECES))
