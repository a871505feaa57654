"""The checks that decide whether a fused kernel takes a call (``unsupported_*``: None, or why
not): capabilities of a backend (dtype, shape, shared memory). The arguments themselves are
checked before, at each op's boundary (``_contract``): the same on every backend."""

import torch

KERNEL_DTYPES = (torch.float32, torch.bfloat16, torch.float16)


def unsupported_tensors(**tensors: torch.Tensor):
    """None if every named tensor has a kernel dtype, else the reason (one device: the op's contract)."""
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
