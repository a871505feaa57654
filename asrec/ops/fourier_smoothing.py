"""Fourier smoothing (SPEC section 2): the public op, its autograd Function on Triton."""

import torch

from ..reference import fourier_smoothing_ref
from . import _library
from ._triton_checks import unsupported_tensors
from .registry import KernelImplementation, implementation, register


class FourierSmoothingFn(torch.autograd.Function):
    """Triton forward/backward of ``fourier_smoothing_ref`` (one scan per sequence and channel
    block), through the ``asrec::fourier_smoothing_fwd/bwd`` custom ops."""

    @staticmethod
    def forward(ctx, x, smoothing_logit, init_level, smoothed_scale, mix: float):
        x = x.contiguous()
        params = [p.contiguous() for p in (smoothing_logit, init_level, smoothed_scale)]
        out = _library.fourier_smoothing_fwd(x, *params, float(mix))
        ctx.save_for_backward(x, *params)
        ctx.mix = float(mix)
        return out

    @staticmethod
    def backward(ctx, grad):
        x, smoothing_logit, init_level, smoothed_scale = ctx.saved_tensors
        dx, dlogit, dlevel, dscale = _library.fourier_smoothing_bwd(x, grad.contiguous(), smoothing_logit,
                                                                    init_level, smoothed_scale, ctx.mix)
        return (dx.to(x.dtype), dlogit.to(smoothing_logit.dtype), dlevel.to(init_level.dtype),
                dscale.to(smoothed_scale.dtype), None)


def fourier_smoothing_unsupported(x, smoothing_logit, init_level, smoothed_scale, mix):
    return unsupported_tensors(x=x, smoothing_logit=smoothing_logit, init_level=init_level,
                               smoothed_scale=smoothed_scale)


def fourier_smoothing_triton(x, smoothing_logit, init_level, smoothed_scale, mix):
    """Same contract as ``fourier_smoothing_ref``; float32 output."""
    return FourierSmoothingFn.apply(x, smoothing_logit, init_level, smoothed_scale, mix)


def _check(x, smoothing_logit, init_level, smoothed_scale):
    if x.dim() != 3:
        raise ValueError(f"fourier_smoothing: x must be (batch, seq_len, hidden), got shape {tuple(x.shape)}")
    hidden = x.shape[-1]
    if smoothing_logit.numel() != 1:
        raise ValueError("fourier_smoothing: smoothing_logit must have one element, "
                         f"got shape {tuple(smoothing_logit.shape)}")
    for name, tensor in (("init_level", init_level), ("smoothed_scale", smoothed_scale)):
        if tensor.shape != (1, 1, hidden):
            raise ValueError(f"fourier_smoothing: {name} must be (1, 1, {hidden}), got {tuple(tensor.shape)}")


def fourier_smoothing(x: torch.Tensor, smoothing_logit: torch.Tensor, init_level: torch.Tensor,
                      smoothed_scale: torch.Tensor, mix: float) -> torch.Tensor:
    """Causal exponential smoothing, see ``asrec.reference.fourier_smoothing_ref``.

    x: (batch, seq_len, hidden); smoothing_logit: (1,); init_level, smoothed_scale: (1, 1, hidden).
    """
    _check(x, smoothing_logit, init_level, smoothed_scale)
    args = (x, smoothing_logit, init_level, smoothed_scale, mix)
    return implementation("fourier_smoothing", x.device, *args)(*args)


register("fourier_smoothing", fourier_smoothing_ref,
         KernelImplementation(fourier_smoothing_triton, fourier_smoothing_unsupported))
