"""Adaptive frequency filter (SPEC section 3): the public op, its autograd Function on Triton."""

import torch

from ..reference.frequency_filter import THRESHOLD_SCOPES, frequency_filter_groups_ref, frequency_filter_ref
from . import _library
from ._triton_checks import dropout_plan, unsupported_tensors
from .registry import TritonImplementation, implementation, register


class FrequencyFilterFn(torch.autograd.Function):
    """Triton forward/backward of ``frequency_filter_ref`` for (batch, groups, seq_len, hidden)
    input, through the ``asrec::frequency_filter_fwd/bwd`` custom ops.

    Forward: energy kernel -> keep-mask on the device (median, per-group batch quantile,
    strict ``>``; the reference's own mask code on the kernel's energies) -> fused
    inverse + dropout + residual + LayerNorm kernel. Saves the input, the mask and the
    dropout seed; backward recomputes the rest. ``threshold`` gets no gradient.
    """

    @staticmethod
    def forward(ctx, y, threshold, norm_weight, norm_bias, eps: float, dropout_p: float, training: bool,
                scope: str):
        y = y.contiguous()
        norm_weight, norm_bias = norm_weight.contiguous(), norm_bias.contiguous()
        dropping, seed = dropout_plan(dropout_p, training)
        out, keep = _library.frequency_filter_fwd(y, threshold, norm_weight, norm_bias, seed, eps, dropout_p,
                                                  dropping, scope)
        ctx.save_for_backward(y, keep, norm_weight, seed)
        ctx.settings = (eps, dropout_p, dropping)
        ctx.bias_dtype = norm_bias.dtype
        return out

    @staticmethod
    def backward(ctx, grad):
        y, keep, norm_weight, seed = ctx.saved_tensors
        dy, dweight, dbias = _library.frequency_filter_bwd(y, grad.contiguous(), keep, norm_weight, seed,
                                                           *ctx.settings)
        return (dy.to(y.dtype), None, dweight.to(norm_weight.dtype), dbias.to(ctx.bias_dtype),
                None, None, None, None)


def _as_groups(y):
    return y if y.dim() == 4 else y.unsqueeze(1)


def frequency_filter_groups_unsupported(groups, *args):
    if any(g.shape != groups[0].shape for g in groups):
        return "the groups must share one shape"
    return frequency_filter_unsupported(groups[0], *args)


def frequency_filter_unsupported(y, threshold, norm_weight, norm_bias, eps, dropout_p=0.5, training=False,
                                 scope="batch"):
    from ..kernels.frequency_filter import unsupported_shape

    return (unsupported_tensors(y=y, norm_weight=norm_weight, norm_bias=norm_bias)
            or unsupported_shape(y.shape[-2], y.shape[-1]))


def frequency_filter_triton(y, threshold, norm_weight, norm_bias, eps, dropout_p=0.5, training=False,
                            scope="batch"):
    """Same contract as ``frequency_filter_ref``."""
    out = FrequencyFilterFn.apply(_as_groups(y), threshold, norm_weight, norm_bias, eps, dropout_p, training, scope)
    return out if y.dim() == 4 else out.squeeze(1)


def frequency_filter_groups_triton(groups: list, threshold, norm_weight, norm_bias, eps, dropout_p=0.5,
                                   training=False, scope="batch") -> list:
    """``frequency_filter_groups_ref`` on Triton: G same-shaped (batch, seq_len, hidden) inputs,
    each with its own quantile, in one launch per kernel (stacked into (batch, G, seq_len, hidden))."""
    stacked = torch.stack(groups, dim=1)
    return list(FrequencyFilterFn.apply(stacked, threshold, norm_weight, norm_bias, eps, dropout_p, training,
                                        scope).unbind(1))


def _check(y, threshold, norm_weight, norm_bias, dropout_p, scope):
    if y.dim() not in (3, 4):
        raise ValueError("frequency_filter: y must be (batch, seq_len, hidden) or (batch, groups, seq_len, hidden), "
                         f"got shape {tuple(y.shape)}")
    hidden = y.shape[-1]
    for name, tensor in (("norm_weight", norm_weight), ("norm_bias", norm_bias)):
        if tensor.shape != (hidden,):
            raise ValueError(f"frequency_filter: {name} must be ({hidden},), got {tuple(tensor.shape)}")
    if threshold.numel() != 1:
        raise ValueError(f"frequency_filter: threshold must have one element, got shape {tuple(threshold.shape)}")
    if not 0.0 <= dropout_p < 1.0:
        raise ValueError(f"frequency_filter: dropout_p must be in [0, 1), got {dropout_p!r}")
    if scope not in THRESHOLD_SCOPES:
        raise ValueError(f"frequency_filter: scope must be one of {THRESHOLD_SCOPES}, got {scope!r}")


def frequency_filter(y: torch.Tensor, threshold: torch.Tensor, norm_weight: torch.Tensor,
                     norm_bias: torch.Tensor, eps: float, dropout_p: float = 0.5, training: bool = False,
                     scope: str = "batch") -> torch.Tensor:
    """See ``asrec.reference.frequency_filter_ref``. y: (batch, [groups,] seq_len, hidden)."""
    _check(y, threshold, norm_weight, norm_bias, dropout_p, scope)
    args = (y, threshold, norm_weight, norm_bias, eps, dropout_p, training, scope)
    return implementation("frequency_filter", y.device, *args)(*args)


register("frequency_filter", frequency_filter_ref,
         TritonImplementation(frequency_filter_triton, frequency_filter_unsupported))


def frequency_filter_groups(groups: list, threshold: torch.Tensor, norm_weight: torch.Tensor, norm_bias: torch.Tensor,
                            eps: float, dropout_p: float = 0.5, training: bool = False, scope: str = "batch") -> list:
    """The filters of a seasonal branch: G (batch, seq_len, hidden) inputs, a quantile each; see
    ``asrec.reference.frequency_filter.frequency_filter_groups_ref``."""
    _check(groups[0], threshold, norm_weight, norm_bias, dropout_p, scope)
    args = (groups, threshold, norm_weight, norm_bias, eps, dropout_p, training, scope)
    return implementation("frequency_filter_groups", groups[0].device, *args)(*args)


register("frequency_filter_groups", frequency_filter_groups_ref,
         TritonImplementation(frequency_filter_groups_triton, frequency_filter_groups_unsupported))
