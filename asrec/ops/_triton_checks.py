"""Shared argument checks for the fused (Triton and CUDA) implementations, and their dropout
seeds (reasons, not exceptions: ``"auto"`` uses them to choose, a backend by name raises them)."""

import torch

KERNEL_DTYPES = (torch.float32, torch.bfloat16, torch.float16)


def unsupported_tensors(**tensors: torch.Tensor):
    """None if every named tensor is a kernel dtype on one device, else the reason."""
    devices = {t.device for t in tensors.values()}
    if len(devices) > 1:
        listing = ", ".join(f"{name} on {t.device}" for name, t in tensors.items())
        return f"tensors must share one device, got {listing}"
    for name, tensor in tensors.items():
        if tensor.dtype not in KERNEL_DTYPES:
            return (f"{name}: the fused kernels take float32, bfloat16 or float16, got {tensor.dtype} "
                    f"(use the 'reference' backend for float64)")
    return None


def dropout_seed() -> torch.Tensor:
    """A fresh seed for a kernel's counter-based dropout: a (1,) int64 CPU tensor drawn from
    torch's CPU generator (reproducible under ``torch.manual_seed``; no device sync; under
    ``torch.compile`` a traced random op, drawn anew on every call)."""
    return torch.randint(0, 2**31 - 1, (1,))


def dropout_plan(dropout_p: float, training: bool) -> tuple:
    """(dropping, seed) for one call: whether the kernels drop anything, and the seed they use
    (a fresh one when dropping; a placeholder the kernels do not read otherwise)."""
    dropping = bool(training) and dropout_p > 0
    return dropping, dropout_seed() if dropping else torch.zeros(1, dtype=torch.int64)
