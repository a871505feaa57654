"""Fourier smoothing (SPEC section 2): the public op, its autograd Function on Triton."""

import math

import torch

from ..reference import fourier_smoothing_ref, next_fast_len
from ._triton_checks import unsupported_tensors
from .registry import TritonImplementation, implementation, register


def smoothing_norm(seq_len: int) -> float:
    """The model's ``1/sqrt(L)`` factor, ``L = next_fast_len(2N - 1)``."""
    return 1.0 / math.sqrt(next_fast_len(2 * seq_len - 1))


class FourierSmoothingFn(torch.autograd.Function):
    """Triton forward/backward of ``fourier_smoothing_ref`` (one scan per sequence and channel block)."""

    @staticmethod
    def forward(ctx, x, smoothing_logit, init_level, smoothed_scale, mix: float):
        from ..kernels.fourier_smoothing import _fourier_smoothing_fwd

        x = x.contiguous()
        params = [p.contiguous() for p in (smoothing_logit, init_level, smoothed_scale)]
        norm = smoothing_norm(x.shape[1])
        out = _fourier_smoothing_fwd(x, *params, float(mix), norm)
        ctx.save_for_backward(x, *params)
        ctx.mix, ctx.norm = float(mix), norm
        return out

    @staticmethod
    def backward(ctx, grad):
        from ..kernels.fourier_smoothing import _fourier_smoothing_bwd

        x, smoothing_logit, init_level, smoothed_scale = ctx.saved_tensors
        dx, dalpha, dlevel, dscale = _fourier_smoothing_bwd(x, grad.contiguous(), smoothing_logit, init_level,
                                                            smoothed_scale, ctx.mix, ctx.norm)
        alpha = torch.sigmoid(smoothing_logit.float())
        dlogit = dalpha.sum() * alpha * (1.0 - alpha)
        return (dx.to(x.dtype), dlogit.to(smoothing_logit.dtype),
                dlevel.sum(0).view_as(init_level).to(init_level.dtype),
                dscale.sum(0).view_as(smoothed_scale).to(smoothed_scale.dtype), None)


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
         TritonImplementation(fourier_smoothing_triton, fourier_smoothing_unsupported))
