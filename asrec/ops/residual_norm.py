"""Dropout + residual + LayerNorm, the norm after each dense projection (SPEC sections 4-6):
its Triton custom ops, the autograd Function and the public op ``residual_norm``."""

from typing import Optional

import torch

from .. import backends
from ..reference.residual_norm import residual_norm_ref
from ._common import check_dropout, check_norm, check_tensors, custom_op, dropout_plan, unsupported_tensors

# ---- Triton custom ops ----


@custom_op("asrec::residual_norm_fwd")
def residual_norm_fwd(x: torch.Tensor, residual: torch.Tensor, norm_weight: torch.Tensor, norm_bias: torch.Tensor,
                      rng: torch.Tensor, eps: float, dropout_p: float, dropping: bool, out_dtype: torch.dtype,
                      other: Optional[torch.Tensor], other_weight: Optional[torch.Tensor],
                      other_bias: Optional[torch.Tensor], mix_weight: Optional[torch.Tensor]) -> torch.Tensor:
    """x, residual: (..., H) -> (..., H) in out_dtype; with ``other`` (x's shape), its norm's
    weight and bias and ``mix_weight`` (one element): ``lerp(LN_o(drop(other) + residual),
    LN(drop(x) + residual), mix_weight)``."""
    from ..kernels.residual_norm import _residual_norm_fwd as launch

    return launch(x, residual, norm_weight, norm_bias, eps, rng, dropout_p, dropping, out_dtype,
                  _mix(other, other_weight, other_bias, mix_weight))


@residual_norm_fwd.register_fake
def _(x, residual, norm_weight, norm_bias, rng, eps, dropout_p, dropping, out_dtype, *mix):
    return x.new_empty(x.shape, dtype=out_dtype)


@custom_op("asrec::residual_norm_bwd")
def residual_norm_bwd(x: torch.Tensor, residual: torch.Tensor, norm_weight: torch.Tensor, norm_bias: torch.Tensor,
                      grad: torch.Tensor, rng: torch.Tensor, eps: float, dropout_p: float, dropping: bool,
                      other: Optional[torch.Tensor], other_weight: Optional[torch.Tensor],
                      other_bias: Optional[torch.Tensor],
                      mix_weight: Optional[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor,
                                                                   torch.Tensor]:
    """-> dx (x's dtype), dresidual (residual's dtype; both norms' share with mixing), d other
    (other's dtype; empty without mixing), and the float32 sums (2 + 3 * mixing, H): the LayerNorm
    weight and bias gradients, then the other norm's and the mix weight's (column 0); every
    second-stage sum in one launch (outputs of a custom op may not alias each other, so the
    split is the autograd Function's)."""
    from ..kernels._common import column_sums
    from ..kernels.residual_norm import _residual_norm_bwd as launch

    dx, dresidual, dother, parts = launch(x, residual, norm_weight, norm_bias, grad, eps, rng, dropout_p, dropping,
                                          _mix(other, other_weight, other_bias, mix_weight))
    return dx, dresidual, dother, column_sums(parts)


@residual_norm_bwd.register_fake
def _(x, residual, norm_weight, norm_bias, grad, rng, eps, dropout_p, dropping, other, *rest):
    mixing = other is not None
    return (x.new_empty(x.shape), residual.new_empty(residual.shape),
            other.new_empty(other.shape) if mixing else x.new_empty(0),
            x.new_empty((2 + 3 * mixing, x.shape[-1]), dtype=torch.float32))


def _mix(other, other_weight, other_bias, mix_weight):
    return None if other is None else (other, other_weight, other_bias, mix_weight)


# ---- autograd ----

def _out_dtype(x, residual):
    # as the reference: the sum promotes, and autocast runs LayerNorm in float32
    if torch.is_autocast_enabled(x.device.type):
        return torch.float32
    return torch.promote_types(x.dtype, residual.dtype)


class ResidualNormFn(torch.autograd.Function):
    """Triton forward/backward of ``residual_norm_ref`` (with or without its branch mix); saves
    the inputs and the dropout RNG state."""

    @staticmethod
    def forward(ctx, x, residual, norm_weight, norm_bias, eps: float, dropout_p: float, training: bool,
                other=None, other_weight=None, other_bias=None, mix_weight=None):
        x, residual = x.contiguous(), residual.contiguous()
        norm_weight, norm_bias = norm_weight.contiguous(), norm_bias.contiguous()
        mix = (None,) * 4
        if other is not None:
            mix = (other.contiguous(), other_weight.contiguous(), other_bias.contiguous(), mix_weight)
        dropping, rng = dropout_plan(dropout_p, training, x.device)
        out = residual_norm_fwd(x, residual, norm_weight, norm_bias, rng, eps, dropout_p, dropping,
                                _out_dtype(x, residual), *mix)
        ctx.save_for_backward(x, residual, norm_weight, norm_bias, rng, *mix)
        ctx.settings = (eps, dropout_p, dropping)
        return out

    @staticmethod
    def backward(ctx, grad):
        x, residual, norm_weight, norm_bias, rng, *mix = ctx.saved_tensors
        dx, dresidual, dother, sums = residual_norm_bwd(x, residual, norm_weight, norm_bias, grad.contiguous(), rng,
                                                        *ctx.settings, *mix)
        grads = (dx, dresidual, sums[0].to(norm_weight.dtype), sums[1].to(norm_bias.dtype), None, None, None)
        if mix[0] is None:
            return grads + (None,) * 4
        other, other_weight, other_bias, mix_weight = mix
        return grads + (dother, sums[2].to(other_weight.dtype), sums[3].to(other_bias.dtype),
                        sums[4, 0].reshape(mix_weight.shape).to(mix_weight.dtype))


def _triton(x, residual, norm_weight, norm_bias, eps, dropout_p=0.0, training=False, mix=None):
    return ResidualNormFn.apply(x, residual, norm_weight, norm_bias, eps, dropout_p, training,
                                *(mix if mix is not None else (None,) * 4))


def _triton_unsupported(x, residual, norm_weight, norm_bias, eps, dropout_p=0.0, training=False, mix=None):
    from ..kernels.residual_norm import unsupported_shape

    named = dict(x=x, residual=residual, norm_weight=norm_weight, norm_bias=norm_bias)
    if mix is not None:
        named.update(zip(MIX_NAMES, mix))
    return unsupported_tensors(**named) or unsupported_shape(x.shape[-1])


backends.register("residual_norm", residual_norm_ref, triton=backends.FusedKernel(_triton, _triton_unsupported))


# ---- public op ----

MIX_NAMES = ("mix_other", "mix_other_norm_weight", "mix_other_norm_bias", "mix_weight")


def residual_norm(x: torch.Tensor, residual: torch.Tensor, norm_weight: torch.Tensor, norm_bias: torch.Tensor,
                  eps: float, dropout_p: float = 0.0, training: bool = False, mix: tuple = None) -> torch.Tensor:
    """``LN(drop(p)(x) + residual)``; with ``mix=(other, other_norm_weight, other_norm_bias, weight)``
    ``lerp(LN_o(drop(p)(other) + residual), LN(drop(p)(x) + residual), weight)`` (the hybrid
    layer's two branch norms over one residual and their mix). See
    ``asrec.reference.residual_norm_ref``. x, residual, other: (..., hidden); weight: one element."""
    check_tensors("residual_norm", x=x, residual=residual, norm_weight=norm_weight, norm_bias=norm_bias)
    if x.shape != residual.shape:
        raise ValueError(f"residual_norm: x {tuple(x.shape)} and residual {tuple(residual.shape)} must match")
    check_norm("residual_norm", x.shape[-1], norm_weight=norm_weight, norm_bias=norm_bias)
    check_dropout("residual_norm", dropout_p)
    if mix is not None:
        if not isinstance(mix, (tuple, list)) or len(mix) != 4:
            raise TypeError("residual_norm: mix must be (other, other_norm_weight, other_norm_bias, weight), got "
                            f"{type(mix).__name__}" + (f" of length {len(mix)}" if isinstance(mix, (tuple, list))
                                                       else ""))
        check_tensors("residual_norm", **dict(zip(MIX_NAMES, mix)))
        if mix[0].shape != x.shape:
            raise ValueError(f"residual_norm: mix's other {tuple(mix[0].shape)} must match x {tuple(x.shape)}")
        check_norm("residual_norm", x.shape[-1], mix_other_norm_weight=mix[1], mix_other_norm_bias=mix[2])
        if mix[3].numel() != 1:
            raise ValueError(f"residual_norm: mix's weight must have one element, got shape {tuple(mix[3].shape)}")
        mix = tuple(mix)
    args = (x, residual, norm_weight, norm_bias, eps, dropout_p, training, mix)
    return backends.dispatch("residual_norm", x.device, *args)(*args)
