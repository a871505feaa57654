"""SPEC section 7 step 4: the model-wide re-initialisation of the published ``_init_weights``."""

import torch
from torch import nn

from .stacked import ProjectionRows


@torch.no_grad()
def init_linear_embedding_norm(module: nn.Module, initializer_range: float) -> None:
    """Every Linear and Embedding weight ~ N(0, initializer_range) (padding row included),
    Linear biases 0, LayerNorm weight 1 and bias 0. Convolutions and scalars are untouched.
    A stacked projection's rows (``ProjectionRows``) are drawn as their Linear was, in its place."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Embedding, ProjectionRows)):
            m.weight.normal_(0.0, initializer_range)
        if isinstance(m, (nn.Linear, ProjectionRows)) and m.bias is not None:
            m.bias.zero_()
        if isinstance(m, nn.LayerNorm):
            m.weight.fill_(1.0)
            m.bias.zero_()
