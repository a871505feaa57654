"""The activations ``hidden_act`` may name (SPEC section 6: RecBole's choices)."""

import torch
import torch.nn.functional as F

ACTIVATIONS = {
    "gelu": F.gelu,  # exact erf form, as the published FeedForward.gelu
    "relu": F.relu,
    "swish": F.silu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
}
