"""The point-wise feed-forward block of each layer (SPEC section 6), a composition:
``LN(drop(dense_out(act(dense_in(x)))) + x)``, the norm through the ``residual_norm`` op."""

import torch
import torch.nn.functional as F

from .. import backends
from ..reference.activations import ACTIVATIONS
from ..reference.weights import FeedForwardWeights
from .residual_norm import project_without_bias, residual_norm


def feed_forward(x: torch.Tensor, weights: FeedForwardWeights, dropout_p: float = 0.0,
                 training: bool = False) -> torch.Tensor:
    """x: (..., hidden) -> x's shape; ``weights.activation`` one of ``asrec.reference.ACTIVATIONS``."""
    if weights.activation not in ACTIVATIONS:
        raise ValueError(f"feed_forward: activation must be one of {sorted(ACTIVATIONS)}, "
                         f"got {weights.activation!r}")
    inner = ACTIVATIONS[weights.activation](F.linear(x, *weights.dense_in))
    norm = weights.norm
    dense_out = weights.dense_out
    # dense_out's bias goes to the norm (added before the dropout): a plain mm here, its
    # gradient reduced with the norm's
    return residual_norm(project_without_bias(inner, dense_out.weight), x, norm.weight, norm.bias, norm.eps, dropout_p,
                         training, x_bias=dense_out.bias)


backends.register_composition("feed_forward")
