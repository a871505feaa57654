"""Public ops: each dispatches, per call, to the backend that ``asrec.backends`` selects.

Importing an op module registers it in ``OPS`` (order here is the order ``describe()`` lists).
"""

from .branches import dynamic_branch, seasonal_branch
from .fourier_smoothing import fourier_smoothing
from .frequency_filter import frequency_filter
from .hybrid_layer import hybrid_layer
from .input_stage import input_stage
from .registry import OPS

__all__ = ["OPS", "dynamic_branch", "fourier_smoothing", "frequency_filter", "hybrid_layer", "input_stage",
           "seasonal_branch"]
