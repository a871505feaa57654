"""Datasets: RecBole atomic files, the paper's five datasets, a synthetic generator, and
RecBole 1.2's sequential preprocessing."""

from .load import SYNTHETIC, load_dataset
from .preprocess import Samples, SequentialData, build_sequences, padded_batch
from .registry import DATASETS

__all__ = ["DATASETS", "SYNTHETIC", "Samples", "SequentialData", "build_sequences", "load_dataset", "padded_batch"]
