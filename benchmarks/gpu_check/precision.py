"""The float32 matmul precision of a block, for torch, cuBLAS and cuDNN alike."""

import contextlib

import torch


@contextlib.contextmanager
def matmul_precision(name: str):
    """"highest": IEEE float32 products everywhere (cuDNN's convolutions too, whose TF32 switch
    is on by default and would loosen the reference's yardstick); "high": TF32 where torch and
    the fused kernels allow it."""
    saved = torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32
    torch.set_float32_matmul_precision(name)
    torch.backends.cudnn.allow_tf32 = name != "highest"
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(saved[0])
        torch.backends.cudnn.allow_tf32 = saved[1]
