"""Dropout + residual + LayerNorm: the public op, its autograd Function on Triton."""

import torch

from ..reference import residual_norm_ref
from . import _library
from ._triton_checks import dropout_plan, unsupported_tensors
from .registry import KernelImplementation, implementation, register


def _out_dtype(x, residual):
    # as the reference: the sum promotes, and autocast runs LayerNorm in float32
    if torch.is_autocast_enabled(x.device.type):
        return torch.float32
    return torch.promote_types(x.dtype, residual.dtype)


class ResidualNormFn(torch.autograd.Function):
    """Triton forward/backward of ``residual_norm_ref`` through ``asrec::residual_norm_fwd/bwd``."""

    @staticmethod
    def forward(ctx, x, residual, norm_weight, norm_bias, eps: float, dropout_p: float, training: bool):
        x, residual = x.contiguous(), residual.contiguous()
        norm_weight, norm_bias = norm_weight.contiguous(), norm_bias.contiguous()
        dropping, seed = dropout_plan(dropout_p, training)
        out = _library.residual_norm_fwd(x, residual, norm_weight, norm_bias, seed, eps, dropout_p, dropping,
                                         _out_dtype(x, residual))
        ctx.save_for_backward(x, residual, norm_weight, seed)
        ctx.settings = (eps, dropout_p, dropping)
        ctx.bias_dtype = norm_bias.dtype
        return out

    @staticmethod
    def backward(ctx, grad):
        x, residual, norm_weight, seed = ctx.saved_tensors
        dx, dresidual, dweight, dbias = _library.residual_norm_bwd(x, residual, norm_weight, grad.contiguous(), seed,
                                                                   *ctx.settings)
        return dx, dresidual, dweight.to(norm_weight.dtype), dbias.to(ctx.bias_dtype), None, None, None


def residual_norm_unsupported(x, residual, norm_weight, norm_bias, eps, dropout_p=0.0, training=False):
    from ..kernels.residual_norm import unsupported_shape

    return (unsupported_tensors(x=x, residual=residual, norm_weight=norm_weight, norm_bias=norm_bias)
            or unsupported_shape(x.shape[-1]))


def residual_norm_triton(x, residual, norm_weight, norm_bias, eps, dropout_p=0.0, training=False):
    """Same contract as ``residual_norm_ref``."""
    return ResidualNormFn.apply(x, residual, norm_weight, norm_bias, eps, dropout_p, training)


def residual_norm(x: torch.Tensor, residual: torch.Tensor, norm_weight: torch.Tensor, norm_bias: torch.Tensor,
                  eps: float, dropout_p: float = 0.0, training: bool = False) -> torch.Tensor:
    """``LN(drop(p)(x) + residual)``; see ``asrec.reference.residual_norm_ref``. x, residual: (..., hidden)."""
    if x.shape != residual.shape:
        raise ValueError(f"residual_norm: x {tuple(x.shape)} and residual {tuple(residual.shape)} must match")
    hidden = x.shape[-1]
    for name, tensor in (("norm_weight", norm_weight), ("norm_bias", norm_bias)):
        if tensor.shape != (hidden,):
            raise ValueError(f"residual_norm: {name} must be ({hidden},), got {tuple(tensor.shape)}")
    if not 0.0 <= dropout_p < 1.0:
        raise ValueError(f"residual_norm: dropout_p must be in [0, 1), got {dropout_p!r}")
    args = (x, residual, norm_weight, norm_bias, eps, dropout_p, training)
    return implementation("residual_norm", x.device, *args)(*args)


# not yet run compiled on a GPU: "auto" keeps the reference until it has been
register("residual_norm", residual_norm_ref,
         KernelImplementation(residual_norm_triton, residual_norm_unsupported, gpu_verified=False))
