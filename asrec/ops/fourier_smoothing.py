"""Fourier smoothing (SPEC section 2): the Triton custom ops, the autograd Function and the
public op ``fourier_smoothing``."""

import torch

from .. import backends
from ..reference.fourier_smoothing import fourier_smoothing_ref, smoothing_norm
from . import _contract
from ._checks import unsupported_tensors
from ._custom_op import custom_op

# ---- Triton custom ops ----


@custom_op("asrec::fourier_smoothing_fwd")
def fourier_smoothing_fwd(x: torch.Tensor, smoothing_logit: torch.Tensor, init_level: torch.Tensor,
                           smoothed_scale: torch.Tensor, mix: float) -> torch.Tensor:
    """x: (B, N, H) -> (B, N, H) float32."""
    from ..kernels.fourier_smoothing import _fourier_smoothing_fwd as launch

    return launch(x, smoothing_logit, init_level, smoothed_scale, mix, smoothing_norm(x.shape[1]))


@fourier_smoothing_fwd.register_fake
def fourier_smoothing_fwd_fake(x, smoothing_logit, init_level, smoothed_scale, mix):
    return x.new_empty(x.shape, dtype=torch.float32)


@custom_op("asrec::fourier_smoothing_bwd")
def fourier_smoothing_bwd(x: torch.Tensor, grad: torch.Tensor, smoothing_logit: torch.Tensor,
                           init_level: torch.Tensor, smoothed_scale: torch.Tensor,
                           mix: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """-> dx (float32), the smoothing logit's gradient (1,) and the (2, H) gradients of
    init_level and smoothed_scale, float32 (two launches: the scan, then the finish)."""
    from ..kernels.fourier_smoothing import _fourier_smoothing_bwd as launch

    return launch(x, grad, smoothing_logit, init_level, smoothed_scale, mix, smoothing_norm(x.shape[1]))


@fourier_smoothing_bwd.register_fake
def fourier_smoothing_bwd_fake(x, grad, smoothing_logit, init_level, smoothed_scale, mix):
    return (x.new_empty(x.shape, dtype=torch.float32), x.new_empty((1,), dtype=torch.float32),
            x.new_empty((2, x.shape[-1]), dtype=torch.float32))


# ---- autograd ----

class FourierSmoothingFn(torch.autograd.Function):
    """Triton forward/backward of ``fourier_smoothing_ref``: one scan per sequence and channel block."""

    @staticmethod
    def forward(ctx, x, smoothing_logit, init_level, smoothed_scale, mix: float):
        x = x.contiguous()
        params = [p.contiguous() for p in (smoothing_logit, init_level, smoothed_scale)]
        out = fourier_smoothing_fwd(x, *params, float(mix))
        ctx.save_for_backward(x, *params)
        ctx.mix = float(mix)
        return out

    @staticmethod
    def backward(ctx, grad):
        x, smoothing_logit, init_level, smoothed_scale = ctx.saved_tensors
        dx, dlogit, (dlevel, dscale) = fourier_smoothing_bwd(x, grad.contiguous(), smoothing_logit, init_level,
                                                              smoothed_scale, ctx.mix)
        return (dx.to(x.dtype), dlogit.view_as(smoothing_logit).to(smoothing_logit.dtype),
                dlevel.view_as(init_level).to(init_level.dtype),
                dscale.view_as(smoothed_scale).to(smoothed_scale.dtype), None)


def _triton(x, smoothing_logit, init_level, smoothed_scale, mix):
    return FourierSmoothingFn.apply(x, smoothing_logit, init_level, smoothed_scale, mix)


def _triton_unsupported(x, smoothing_logit, init_level, smoothed_scale, mix):
    return unsupported_tensors(x=x, smoothing_logit=smoothing_logit, init_level=init_level,
                               smoothed_scale=smoothed_scale)


backends.register("fourier_smoothing", fourier_smoothing_ref,
                  triton=backends.FusedKernel(_triton, _triton_unsupported))


# ---- public op ----

def fourier_smoothing(x: torch.Tensor, smoothing_logit: torch.Tensor, init_level: torch.Tensor,
                      smoothed_scale: torch.Tensor, mix: float) -> torch.Tensor:
    """Causal exponential smoothing, see ``asrec.reference.fourier_smoothing_ref``.

    x: (batch, seq_len, hidden); smoothing_logit: () or (1,); init_level, smoothed_scale: (1, 1, hidden).
    -> (batch, seq_len, hidden), float32 (float64 for float64 x).
    """
    _contract.check_fourier_smoothing(x, smoothing_logit, init_level, smoothed_scale, mix)
    args = (x, smoothing_logit, init_level, smoothed_scale, mix)
    return backends.dispatch("fourier_smoothing", x.device, *args)(*args)
