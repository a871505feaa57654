"""AdaptiveFrequencyFilter: the published ``AHFF`` block (SPEC section 3)."""

import torch
from torch import nn

from ..ops import FrequencyFilterWeights, NormWeights, frequency_filter
from ..reference.frequency_filter import FILTER_DROPOUT, check_scope

DEFAULT_THRESHOLD = 0.8


class AdaptiveFrequencyFilter(nn.Module):
    """Keep the high-energy frequencies: ``LN(drop(0.5)(ifft(fft(y) * keep)) + y)``.

    ``threshold`` (the published ``threshold_param``) gets no gradient in the published
    code, so it is a buffer here. ``scope="batch"`` (default, published) takes one
    quantile over the whole batch; ``scope="sequence"`` takes one per sequence.
    """

    def __init__(self, hidden_size: int, layer_norm_eps: float = 1e-12, scope: str = "batch", device=None,
                 dtype=None):
        super().__init__()
        check_scope(scope)
        self.scope = scope
        self.norm = nn.LayerNorm(hidden_size, eps=layer_norm_eps, device=device, dtype=dtype)
        self.register_buffer("threshold", torch.tensor(DEFAULT_THRESHOLD, device=device))

    def _apply(self, fn, recurse=True):
        # .half() and .bfloat16() would round the quantile level (0.8 -> 0.80078125): the
        # threshold moves with the module but keeps its float32 (or float64) value.
        threshold = self.threshold
        super()._apply(fn, recurse)
        if self.threshold.dtype in (torch.float16, torch.bfloat16):
            self.threshold = threshold.to(self.threshold.device)
        return self

    def weights(self) -> FrequencyFilterWeights:
        return FrequencyFilterWeights(self.threshold, NormWeights(self.norm.weight, self.norm.bias, self.norm.eps))

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        """y: (batch, seq_len, hidden), or (batch, groups, seq_len, hidden) with a quantile per group
        -> y's shape. The standalone entry (``ops.frequency_filter``): the seasonal branch reads
        this module's parameters and filters its three groups with ``ops.frequency_filter_groups``."""
        return frequency_filter(y, self.threshold, self.norm.weight, self.norm.bias, self.norm.eps,
                                FILTER_DROPOUT, self.training, self.scope)
