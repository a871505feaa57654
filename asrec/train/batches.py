"""Batches from host arrays to the device."""

import torch


def batch_to_device(arrays, device: torch.device) -> tuple:
    """Numpy batch arrays -> tensors on ``device``; to a GPU from pinned memory without blocking
    the host (the copy is ordered before the step's kernels on the same stream)."""
    tensors = (torch.from_numpy(a) for a in arrays)
    if device.type != "cuda":
        return tuple(t.to(device) for t in tensors)
    return tuple(t.pin_memory().to(device, non_blocking=True) for t in tensors)
