"""Compute-dtype rule shared by the reference ops (DESIGN.md: float32, or float64 when given float64)."""

import torch


def compute_dtype(*tensors: torch.Tensor) -> torch.dtype:
    """float64 if any input is float64, else float32 (bfloat16/float16 are upcast)."""
    return torch.float64 if any(t.dtype == torch.float64 for t in tensors) else torch.float32
