"""Adaptive frequency filter (SPEC section 3): the public op, its autograd Functions on Triton
and on the CUDA extension (one Function body over either backend's kernels)."""

import torch

from ..reference.frequency_filter import THRESHOLD_SCOPES, frequency_filter_groups_ref, frequency_filter_ref
from . import _cuda_library, _library
from ._triton_checks import dropout_plan, unsupported_tensors
from .registry import KernelImplementation, implementation, register


def _frequency_filter_function(kernels, name: str):
    """The autograd Function of the filter over ``kernels`` (``_library``: Triton,
    ``_cuda_library``: CUDA), whose ``frequency_filter_fwd/bwd`` share one signature."""

    class FrequencyFilterFunction(torch.autograd.Function):
        """Forward/backward of ``frequency_filter_ref`` for (batch, groups, seq_len, hidden) input.

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
            out, keep = kernels.frequency_filter_fwd(y, threshold, norm_weight, norm_bias, seed, eps, dropout_p,
                                                     dropping, scope)
            ctx.save_for_backward(y, keep, norm_weight, seed)
            ctx.settings = (eps, dropout_p, dropping)
            ctx.bias_dtype = norm_bias.dtype
            return out

        @staticmethod
        def backward(ctx, grad):
            y, keep, norm_weight, seed = ctx.saved_tensors
            dy, dweight, dbias = kernels.frequency_filter_bwd(y, grad.contiguous(), keep, norm_weight, seed,
                                                              *ctx.settings)
            return (dy.to(y.dtype), None, dweight.to(norm_weight.dtype), dbias.to(ctx.bias_dtype),
                    None, None, None, None)

    FrequencyFilterFunction.__name__ = FrequencyFilterFunction.__qualname__ = name
    return FrequencyFilterFunction


FrequencyFilterFn = _frequency_filter_function(_library, "FrequencyFilterFn")
FrequencyFilterCudaFn = _frequency_filter_function(_cuda_library, "FrequencyFilterCudaFn")


def _as_groups(y):
    return y if y.dim() == 4 else y.unsqueeze(1)


def _unsupported_groups(groups, *args, shape_check):
    if any(g.shape != groups[0].shape for g in groups):
        return "the groups must share one shape"
    return shape_check(groups[0], *args)


def frequency_filter_unsupported(y, threshold, norm_weight, norm_bias, eps, dropout_p=0.5, training=False,
                                 scope="batch"):
    from ..kernels.frequency_filter import unsupported_shape

    return (unsupported_tensors(y=y, norm_weight=norm_weight, norm_bias=norm_bias)
            or unsupported_shape(y.shape[-2], y.shape[-1]))


def frequency_filter_cuda_unsupported(y, threshold, norm_weight, norm_bias, eps, dropout_p=0.5, training=False,
                                      scope="batch"):
    return (unsupported_tensors(y=y, norm_weight=norm_weight, norm_bias=norm_bias)
            or _cuda_library.frequency_filter_unsupported_shape(y.shape[-2], y.shape[-1], y.device))


def frequency_filter_groups_unsupported(groups, *args):
    return _unsupported_groups(groups, *args, shape_check=frequency_filter_unsupported)


def frequency_filter_groups_cuda_unsupported(groups, *args):
    return _unsupported_groups(groups, *args, shape_check=frequency_filter_cuda_unsupported)


def _run(function, y, *args):
    out = function.apply(_as_groups(y), *args)
    return out if y.dim() == 4 else out.squeeze(1)


def _run_groups(function, groups: list, *args) -> list:
    # G same-shaped (batch, seq_len, hidden) inputs, each with its own quantile, in one launch
    # per kernel (stacked into (batch, G, seq_len, hidden))
    return list(function.apply(torch.stack(groups, dim=1), *args).unbind(1))


def frequency_filter_triton(y, threshold, norm_weight, norm_bias, eps, dropout_p=0.5, training=False,
                            scope="batch"):
    """Same contract as ``frequency_filter_ref``."""
    return _run(FrequencyFilterFn, y, threshold, norm_weight, norm_bias, eps, dropout_p, training, scope)


def frequency_filter_cuda(y, threshold, norm_weight, norm_bias, eps, dropout_p=0.5, training=False, scope="batch"):
    """Same contract as ``frequency_filter_ref``, on the CUDA extension."""
    return _run(FrequencyFilterCudaFn, y, threshold, norm_weight, norm_bias, eps, dropout_p, training, scope)


def frequency_filter_groups_triton(groups: list, threshold, norm_weight, norm_bias, eps, dropout_p=0.5,
                                   training=False, scope="batch") -> list:
    """``frequency_filter_groups_ref`` on Triton."""
    return _run_groups(FrequencyFilterFn, groups, threshold, norm_weight, norm_bias, eps, dropout_p, training, scope)


def frequency_filter_groups_cuda(groups: list, threshold, norm_weight, norm_bias, eps, dropout_p=0.5,
                                 training=False, scope="batch") -> list:
    """``frequency_filter_groups_ref`` on the CUDA extension."""
    return _run_groups(FrequencyFilterCudaFn, groups, threshold, norm_weight, norm_bias, eps, dropout_p, training,
                       scope)


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
         KernelImplementation(frequency_filter_triton, frequency_filter_unsupported),
         cuda=KernelImplementation(frequency_filter_cuda, frequency_filter_cuda_unsupported, gpu_verified=False))


def frequency_filter_groups(groups: list, threshold: torch.Tensor, norm_weight: torch.Tensor, norm_bias: torch.Tensor,
                            eps: float, dropout_p: float = 0.5, training: bool = False, scope: str = "batch") -> list:
    """The filters of a seasonal branch: G (batch, seq_len, hidden) inputs, a quantile each; see
    ``asrec.reference.frequency_filter.frequency_filter_groups_ref``."""
    _check(groups[0], threshold, norm_weight, norm_bias, dropout_p, scope)
    args = (groups, threshold, norm_weight, norm_bias, eps, dropout_p, training, scope)
    return implementation("frequency_filter_groups", groups[0].device, *args)(*args)


register("frequency_filter_groups", frequency_filter_groups_ref,
         KernelImplementation(frequency_filter_groups_triton, frequency_filter_groups_unsupported),
         cuda=KernelImplementation(frequency_filter_groups_cuda, frequency_filter_groups_cuda_unsupported,
                                   gpu_verified=False))
