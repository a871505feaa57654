"""Argument checks of the public ops (each a clear error naming the argument) and the checks
that decide whether a fused kernel takes a call (``unsupported_*``: None, or why not)."""

import torch

KERNEL_DTYPES = (torch.float32, torch.bfloat16, torch.float16)


def check_tensors(op: str, **named) -> None:
    """Each named argument must be a tensor (a list or array is a TypeError naming it, not an
    AttributeError from deep inside)."""
    for name, value in named.items():
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"{op}: {name} must be a torch.Tensor, got {type(value).__name__}")


def check_tensor_list(op: str, name: str, values, length=None) -> None:
    """``values`` must be a list or tuple of ``length`` tensors (None: any number but none)."""
    is_list = isinstance(values, (list, tuple))
    if not is_list or (len(values) != length if length is not None else not values):
        wanted = f"a list of {length} tensors" if length is not None else "a non-empty list of tensors"
        raise TypeError(f"{op}: {name} must be {wanted}, got {type(values).__name__}"
                        + (f" of length {len(values)}" if is_list else ""))
    check_tensors(op, **{f"{name}[{i}]": v for i, v in enumerate(values)})


def check_dropout(op: str, dropout_p: float) -> None:
    if not 0.0 <= dropout_p < 1.0:
        raise ValueError(f"{op}: dropout_p must be in [0, 1), got {dropout_p!r}")


def check_norm(op: str, hidden: int, **tensors: torch.Tensor) -> None:
    """Each named LayerNorm weight or bias must be (hidden,)."""
    for name, tensor in tensors.items():
        if tensor.shape != (hidden,):
            raise ValueError(f"{op}: {name} must be ({hidden},), got {tuple(tensor.shape)}")


def unsupported_tensors(**tensors: torch.Tensor):
    """None if every named tensor has a kernel dtype and all share one device, else the reason."""
    devices = {t.device for t in tensors.values()}
    if len(devices) > 1:
        listing = ", ".join(f"{name} on {t.device}" for name, t in tensors.items())
        return f"tensors must share one device, got {listing}"
    for name, tensor in tensors.items():
        if tensor.dtype not in KERNEL_DTYPES:
            return (f"{name}: the fused kernels take float32, bfloat16 or float16, got {tensor.dtype} "
                    f"(use the 'reference' backend for float64)")
    return None


# ---- whether the CUDA kernels fit the device's shared memory ----

@torch.compiler.assume_constant_result
def _cuda_shared_memory(op: str, seq_len: int, hidden: int, device_index: int) -> tuple:
    """(bytes the extension's kernels of ``op`` need per block at this shape, as the extension itself
    computes them: ``torch.ops.asrec_cuda.<op>_shared_memory``; bytes the device allows)."""
    from .. import _cuda_extension

    needed = getattr(_cuda_extension.kernel_ops, f"{op}_shared_memory")(seq_len, hidden)
    properties = torch.cuda.get_device_properties(device_index)
    return needed, getattr(properties, "shared_memory_per_block_optin", 99 * 1024)


def unsupported_cuda_shared_memory(op: str, device: torch.device, seq_len: int, hidden: int):
    """None if the CUDA kernels of ``op`` fit the shared memory of ``device`` at this shape, else why not."""
    if device.type != "cuda":
        return None  # the device check comes first in the dispatch
    index = device.index if device.index is not None else torch.cuda.current_device()
    needed, limit = _cuda_shared_memory(op, seq_len, hidden, index)
    if needed > limit:
        return (f"the CUDA {op.replace('_', ' ')} needs {needed} bytes of shared memory per block at "
                f"seq_len={seq_len}, hidden={hidden}; this device allows {limit}")
    return None
