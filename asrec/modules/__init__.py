"""nn.Modules built on ``asrec.ops``."""

from .dynamic import DynamicAttention
from .encoder import ASRec
from .feed_forward import FeedForward
from .fourier_smoothing import FourierSmoothing
from .frequency_filter import AdaptiveFrequencyFilter
from .layer import HybridLayer
from .seasonal import SeasonalAttention

__all__ = ["ASRec", "AdaptiveFrequencyFilter", "DynamicAttention", "FeedForward", "FourierSmoothing",
           "HybridLayer", "SeasonalAttention"]
