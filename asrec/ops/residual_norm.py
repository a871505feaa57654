"""Dropout + residual + LayerNorm, the norm after each dense projection (SPEC sections 4-6):
its Triton custom ops, the autograd Function and the public op ``residual_norm``."""

import torch

from .. import backends
from ..reference.residual_norm import residual_norm_ref
from ._common import check_dropout, check_norm, check_tensors, custom_op, dropout_plan, unsupported_tensors

# ---- Triton custom ops ----


@custom_op("asrec::residual_norm_fwd")
def residual_norm_fwd(x: torch.Tensor, residual: torch.Tensor, norm_weight: torch.Tensor, norm_bias: torch.Tensor,
                      rng: torch.Tensor, eps: float, dropout_p: float, dropping: bool,
                      out_dtype: torch.dtype) -> torch.Tensor:
    """x, residual: (..., H) -> (..., H) in out_dtype."""
    from ..kernels.residual_norm import _residual_norm_fwd as launch

    return launch(x, residual, norm_weight, norm_bias, eps, rng, dropout_p, dropping, out_dtype)


@residual_norm_fwd.register_fake
def _(x, residual, norm_weight, norm_bias, rng, eps, dropout_p, dropping, out_dtype):
    return x.new_empty(x.shape, dtype=out_dtype)


@custom_op("asrec::residual_norm_bwd")
def residual_norm_bwd(x: torch.Tensor, residual: torch.Tensor, norm_weight: torch.Tensor, grad: torch.Tensor,
                      rng: torch.Tensor, eps: float, dropout_p: float,
                      dropping: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """-> dx (x's dtype), dresidual (residual's dtype), and the float32 LayerNorm weight and bias
    gradients stacked (2, H): both second-stage sums in one launch (outputs of a custom op may
    not alias each other, so the split into two is the autograd Function's)."""
    from ..kernels._common import column_sums
    from ..kernels.residual_norm import _residual_norm_bwd as launch

    dx, dresidual, parts = launch(x, residual, norm_weight, grad, eps, rng, dropout_p, dropping)
    return dx, dresidual, column_sums(parts)


@residual_norm_bwd.register_fake
def _(x, residual, *rest):
    return (x.new_empty(x.shape), residual.new_empty(residual.shape),
            x.new_empty((2, x.shape[-1]), dtype=torch.float32))


# ---- autograd ----

def _out_dtype(x, residual):
    # as the reference: the sum promotes, and autocast runs LayerNorm in float32
    if torch.is_autocast_enabled(x.device.type):
        return torch.float32
    return torch.promote_types(x.dtype, residual.dtype)


class ResidualNormFn(torch.autograd.Function):
    """Triton forward/backward of ``residual_norm_ref``; saves the inputs and the dropout RNG state."""

    @staticmethod
    def forward(ctx, x, residual, norm_weight, norm_bias, eps: float, dropout_p: float, training: bool):
        x, residual = x.contiguous(), residual.contiguous()
        norm_weight, norm_bias = norm_weight.contiguous(), norm_bias.contiguous()
        dropping, rng = dropout_plan(dropout_p, training, x.device)
        out = residual_norm_fwd(x, residual, norm_weight, norm_bias, rng, eps, dropout_p, dropping,
                                _out_dtype(x, residual))
        ctx.save_for_backward(x, residual, norm_weight, rng)
        ctx.settings = (eps, dropout_p, dropping)
        ctx.bias_dtype = norm_bias.dtype
        return out

    @staticmethod
    def backward(ctx, grad):
        x, residual, norm_weight, rng = ctx.saved_tensors
        dx, dresidual, dnorm = residual_norm_bwd(x, residual, norm_weight, grad.contiguous(), rng, *ctx.settings)
        return dx, dresidual, dnorm[0].to(norm_weight.dtype), dnorm[1].to(ctx.bias_dtype), None, None, None


def _triton_unsupported(x, residual, norm_weight, norm_bias, *rest):
    from ..kernels.residual_norm import unsupported_shape

    return (unsupported_tensors(x=x, residual=residual, norm_weight=norm_weight, norm_bias=norm_bias)
            or unsupported_shape(x.shape[-1]))


backends.register("residual_norm", residual_norm_ref,
                  triton=backends.FusedKernel(ResidualNormFn.apply, _triton_unsupported))


# ---- public op ----

def residual_norm(x: torch.Tensor, residual: torch.Tensor, norm_weight: torch.Tensor, norm_bias: torch.Tensor,
                  eps: float, dropout_p: float = 0.0, training: bool = False) -> torch.Tensor:
    """``LN(drop(p)(x) + residual)``; see ``asrec.reference.residual_norm_ref``. x, residual: (..., hidden)."""
    check_tensors("residual_norm", x=x, residual=residual, norm_weight=norm_weight, norm_bias=norm_bias)
    if x.shape != residual.shape:
        raise ValueError(f"residual_norm: x {tuple(x.shape)} and residual {tuple(residual.shape)} must match")
    check_norm("residual_norm", x.shape[-1], norm_weight=norm_weight, norm_bias=norm_bias)
    check_dropout("residual_norm", dropout_p)
    args = (x, residual, norm_weight, norm_bias, eps, dropout_p, training)
    return backends.dispatch("residual_norm", x.device, *args)(*args)
