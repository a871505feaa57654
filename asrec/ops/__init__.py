"""Public ops: each dispatches to the backend that ``asrec.backends`` selects."""

from .branches import dynamic_branch, seasonal_branch
from .fourier_smoothing import fourier_smoothing
from .frequency_filter import frequency_filter
from .hybrid_layer import hybrid_layer
from .registry import OPS

__all__ = ["OPS", "dynamic_branch", "fourier_smoothing", "frequency_filter", "hybrid_layer", "seasonal_branch"]
