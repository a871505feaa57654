"""Dropout + residual + LayerNorm, the norm after each dense projection (SPEC sections 4-6):
its Triton custom ops, the autograd Function and the public op ``residual_norm``.

The projection's bias may come in as ``x_bias`` (added before the dropout, as ``F.linear``
adds it): the projection is then a plain ``mm`` and the bias gradient one more row of the
norm's second-stage sums, where ``addmm``'s backward reduces it in a ``sum`` kernel of its own."""

from typing import Optional

import torch

from .. import backends
from ..reference.residual_norm import residual_norm_ref
from . import _contract
from ._checks import unsupported_tensors
from ._custom_op import custom_op
from ._dropout import dropout_plan

# ---- Triton custom ops ----


@custom_op("asrec::residual_norm_fwd")
def residual_norm_fwd(x: torch.Tensor, residual: torch.Tensor, norm_weight: torch.Tensor, norm_bias: torch.Tensor,
                      rng: torch.Tensor, eps: float, dropout_p: float, dropping: bool, out_dtype: torch.dtype,
                      other: Optional[torch.Tensor], other_weight: Optional[torch.Tensor],
                      other_bias: Optional[torch.Tensor], mix_weight: Optional[torch.Tensor],
                      x_bias: Optional[torch.Tensor] = None,
                      other_x_bias: Optional[torch.Tensor] = None) -> torch.Tensor:
    """x, residual: (..., H) -> (..., H) in out_dtype; with ``other`` (x's shape), its norm's
    weight and bias and ``mix_weight`` (one element): ``lerp(LN_o(drop(other) + residual),
    LN(drop(x) + residual), mix_weight)``. x_bias, other_x_bias: optional (H,) added to x,
    other before the dropout."""
    from ..kernels.residual_norm import _residual_norm_fwd as launch

    return launch(x, residual, norm_weight, norm_bias, eps, rng, dropout_p, dropping, out_dtype,
                  _mix(other, other_weight, other_bias, mix_weight), x_bias, other_x_bias)


@residual_norm_fwd.register_fake
def residual_norm_fwd_fake(x, residual, norm_weight, norm_bias, rng, eps, dropout_p, dropping, out_dtype, other,
                           other_weight, other_bias, mix_weight, x_bias=None, other_x_bias=None):
    return x.new_empty(x.shape, dtype=out_dtype)


@custom_op("asrec::residual_norm_bwd")
def residual_norm_bwd(x: torch.Tensor, residual: torch.Tensor, norm_weight: torch.Tensor, norm_bias: torch.Tensor,
                      grad: torch.Tensor, rng: torch.Tensor, eps: float, dropout_p: float, dropping: bool,
                      other: Optional[torch.Tensor], other_weight: Optional[torch.Tensor],
                      other_bias: Optional[torch.Tensor], mix_weight: Optional[torch.Tensor],
                      x_bias: Optional[torch.Tensor] = None,
                      other_x_bias: Optional[torch.Tensor] = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor,
                                                                            torch.Tensor]:
    """-> dx (x's dtype; also d(x + x_bias)), dresidual (residual's dtype; both norms' share with
    mixing), d other (other's dtype; empty without mixing), and the float32 sums
    (2 + 3 * mixing + has x_bias + has other_x_bias, H): the LayerNorm weight and bias gradients,
    then the other norm's and the mix weight's (column 0), then x_bias' and other_x_bias' (each
    where given); every second-stage sum in one launch (outputs of a custom op may not alias
    each other, so the split is the autograd Function's)."""
    from ..kernels._common import column_sums
    from ..kernels.residual_norm import _residual_norm_bwd as launch

    dx, dresidual, dother, parts = launch(x, residual, norm_weight, norm_bias, grad, eps, rng, dropout_p, dropping,
                                          _mix(other, other_weight, other_bias, mix_weight), x_bias, other_x_bias)
    return dx, dresidual, dother, column_sums(parts)


@residual_norm_bwd.register_fake
def residual_norm_bwd_fake(x, residual, norm_weight, norm_bias, grad, rng, eps, dropout_p, dropping, other,
                           other_weight, other_bias, mix_weight, x_bias=None, other_x_bias=None):
    from ..kernels.residual_norm import partial_groups

    mixing = other is not None
    groups = partial_groups(mixing, x_bias is not None, other_x_bias is not None)
    return (x.new_empty(x.shape), residual.new_empty(residual.shape),
            other.new_empty(other.shape) if mixing else x.new_empty(0),
            x.new_empty((groups, x.shape[-1]), dtype=torch.float32))


def _mix(other, other_weight, other_bias, mix_weight):
    return None if other is None else (other, other_weight, other_bias, mix_weight)


# ---- autograd ----

def _out_dtype(x, residual, *biases):
    # as the reference: the sums promote, and autocast runs LayerNorm in float32
    if torch.is_autocast_enabled(x.device.type):
        return torch.float32
    dtype = torch.promote_types(x.dtype, residual.dtype)
    for bias in biases:
        if bias is not None:
            dtype = torch.promote_types(dtype, bias.dtype)
    return dtype


class ResidualNormFn(torch.autograd.Function):
    """Triton forward/backward of ``residual_norm_ref`` (with or without its branch mix and the
    projections' biases); saves the inputs and the dropout RNG state."""

    @staticmethod
    def forward(ctx, x, residual, norm_weight, norm_bias, eps: float, dropout_p: float, training: bool,
                other=None, other_weight=None, other_bias=None, mix_weight=None, x_bias=None, other_x_bias=None):
        x, residual = x.contiguous(), residual.contiguous()
        norm_weight, norm_bias = norm_weight.contiguous(), norm_bias.contiguous()
        mix = (None,) * 4
        if other is not None:
            mix = (other.contiguous(), other_weight.contiguous(), other_bias.contiguous(), mix_weight)
        biases = tuple(b.contiguous() if b is not None else None for b in (x_bias, other_x_bias))
        dropping, rng = dropout_plan(dropout_p, training, x.device)
        out = residual_norm_fwd(x, residual, norm_weight, norm_bias, rng, eps, dropout_p, dropping,
                                _out_dtype(x, residual, *biases), *mix, *biases)
        ctx.save_for_backward(x, residual, norm_weight, norm_bias, rng, *mix, *biases)
        ctx.eps, ctx.dropout_p, ctx.dropping = eps, dropout_p, dropping
        return out

    @staticmethod
    def backward(ctx, grad):
        x, residual, norm_weight, norm_bias, rng, *mix, x_bias, other_x_bias = ctx.saved_tensors
        dx, dresidual, dother, sums = residual_norm_bwd(x, residual, norm_weight, norm_bias, grad.contiguous(), rng,
                                                        ctx.eps, ctx.dropout_p, ctx.dropping, *mix, x_bias,
                                                        other_x_bias)
        grads = (dx, dresidual, sums[0].to(norm_weight.dtype), sums[1].to(norm_bias.dtype), None, None, None)
        group = 2
        if mix[0] is None:
            grads += (None,) * 4
        else:
            other, other_weight, other_bias, mix_weight = mix
            grads += (dother, sums[2].to(other_weight.dtype), sums[3].to(other_bias.dtype),
                      sums[4, 0].reshape(mix_weight.shape).to(mix_weight.dtype))
            group = 5
        # the biases' rows follow, each where given (the kernel's partial-sum groups)
        for bias in (x_bias, other_x_bias):
            if bias is None:
                grads += (None,)
            else:
                grads += (sums[group].to(bias.dtype),)
                group += 1
        return grads


def _triton(x, residual, norm_weight, norm_bias, eps, dropout_p=0.0, training=False, mix=None, x_bias=None,
            other_bias=None):
    return ResidualNormFn.apply(x, residual, norm_weight, norm_bias, eps, dropout_p, training,
                                *(mix if mix is not None else (None,) * 4), x_bias, other_bias)


def _triton_unsupported(x, residual, norm_weight, norm_bias, eps, dropout_p=0.0, training=False, mix=None,
                        x_bias=None, other_bias=None):
    from ..kernels.residual_norm import unsupported_shape

    named = dict(x=x, residual=residual, norm_weight=norm_weight, norm_bias=norm_bias)
    if mix is not None:
        named.update(zip(MIX_NAMES, mix))
    named.update((name, bias) for name, bias in (("x_bias", x_bias), ("other_bias", other_bias)) if bias is not None)
    return unsupported_tensors(**named) or unsupported_shape(x.shape[-1])


backends.register("residual_norm", residual_norm_ref, triton=backends.FusedKernel(_triton, _triton_unsupported))


# ---- public op ----

def project_without_bias(a: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``F.linear(a, weight)`` (a: (..., in), weight: (out, in) -> (..., out)) as one 2-D ``mm``
    and views: the dense projection whose bias ``residual_norm`` adds (``x_bias``); one GEMM
    forward, two backward, no bias ``sum``. (Spelled out rather than F.linear without a bias,
    which folds the batch axes through matmul's reshape and ``_unsafe_view``: the same GEMM.)"""
    return torch.mm(a.reshape(-1, a.shape[-1]), weight.t()).view(*a.shape[:-1], weight.shape[0])


MIX_NAMES = _contract.MIX_NAMES


def residual_norm(x: torch.Tensor, residual: torch.Tensor, norm_weight: torch.Tensor, norm_bias: torch.Tensor,
                  eps: float, dropout_p: float = 0.0, training: bool = False, mix: tuple = None, *,
                  x_bias: Optional[torch.Tensor] = None, other_bias: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``LN(drop(p)(x + x_bias) + residual)``; with ``mix=(other, other_norm_weight, other_norm_bias,
    weight)`` ``lerp(LN_o(drop(p)(other + other_bias) + residual), LN(drop(p)(x + x_bias) +
    residual), weight)`` (the hybrid layer's two branch norms over one residual and their mix).
    See ``asrec.reference.residual_norm_ref``. x, residual, other: (..., hidden); weight: one
    element; x_bias, other_bias: optional (hidden,), the dense projections' biases (pass
    ``F.linear(a, W)`` as x and its bias here: the fused backend then reduces the bias gradient
    with the norm's; other_bias only with mix)."""
    _contract.check_residual_norm(x, residual, norm_weight, norm_bias, eps, dropout_p, training, mix, x_bias,
                                  other_bias)
    mix = None if mix is None else tuple(mix)
    args = (x, residual, norm_weight, norm_bias, eps, dropout_p, training, mix, x_bias, other_bias)
    return backends.dispatch("residual_norm", x.device, *args)(*args)
