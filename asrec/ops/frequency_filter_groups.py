"""The seasonal branch's three frequency filters in one call (SPEC section 3, a quantile per
group): the public op ``frequency_filter_groups``, on the autograd Functions of
``frequency_filter.py`` (Triton ``FrequencyFilterFn``, CUDA ``FrequencyFilterCudaFn``): G
same-shaped (B, N, H) inputs are stacked into one launch, and one (G, B, N, H) tensor (the
convolutions' output) is taken as it is, with no copy."""

import torch

from .. import backends
from ..reference.frequency_filter import frequency_filter_groups_ref
from . import _contract
from ._checks import unsupported_tensors
from .frequency_filter import (
    FrequencyFilterCudaFn,
    FrequencyFilterFn,
    cuda_shape_unsupported,
    triton_shape_unsupported,
)


def _reference(groups, *args, with_input=False):
    out = frequency_filter_groups_ref(groups, *args)
    return (out, groups) if with_input else out


def _triton(groups, *args, with_input=False):
    if torch.is_tensor(groups):
        # (G, B, N, H) as the filter's group_major input; with_input: (out, the Function's alias of groups), so
        # the other consumer's gradient reaches the filter's backward kernel
        return FrequencyFilterFn.apply(groups, *args, True, with_input)
    out = list(FrequencyFilterFn.apply(torch.stack(groups, dim=1), *args).unbind(1))
    return (out, groups) if with_input else out


def _cuda(groups, *args, with_input=False):
    if torch.is_tensor(groups):
        out = FrequencyFilterCudaFn.apply(groups, *args, True)
    else:
        out = list(FrequencyFilterCudaFn.apply(torch.stack(groups, dim=1), *args).unbind(1))
    return (out, groups) if with_input else out


def _unsupported(shape_unsupported, groups, threshold, norm_weight, norm_bias):
    if any(g.shape != groups[0].shape for g in groups):
        return "the groups must share one shape"
    first = groups[0]
    return (unsupported_tensors(y=first, norm_weight=norm_weight, norm_bias=norm_bias)
            or shape_unsupported(first.shape[-2], first.shape[-1], first.device))


def _triton_unsupported(groups, threshold, norm_weight, norm_bias, *rest):
    return _unsupported(triton_shape_unsupported, groups, threshold, norm_weight, norm_bias)


def _cuda_unsupported(groups, threshold, norm_weight, norm_bias, *rest):
    return _unsupported(cuda_shape_unsupported, groups, threshold, norm_weight, norm_bias)


backends.register("frequency_filter_groups", _reference, triton=backends.FusedKernel(_triton, _triton_unsupported),
                  cuda=backends.FusedKernel(_cuda, _cuda_unsupported))


def frequency_filter_groups(groups, threshold: torch.Tensor, norm_weight: torch.Tensor, norm_bias: torch.Tensor,
                            eps: float, dropout_p: float = 0.5, training: bool = False, scope: str = "batch"):
    """The filters of a seasonal branch, a quantile each: a list of G (batch, seq_len, hidden)
    inputs -> a list of G outputs, or one (G, batch, seq_len, hidden) tensor (the convolutions'
    output as it is) -> one tensor of that shape. See
    ``asrec.reference.frequency_filter.frequency_filter_groups_ref``."""
    return _frequency_filter_groups(groups, threshold, norm_weight, norm_bias, eps, dropout_p, training, scope,
                                    with_input=False)


def _frequency_filter_groups(groups, threshold: torch.Tensor, norm_weight: torch.Tensor, norm_bias: torch.Tensor,
                             eps: float, dropout_p: float, training: bool, scope: str, with_input: bool):
    """``frequency_filter_groups`` for the seasonal branch (the model's path).

    ``with_input``: -> ``(filtered, groups)``, for a caller that uses the input again (the
    seasonal branch's contrast reads the convolutions' outputs too) and so sums two gradients
    into it. On the Triton backend, with a (G, batch, seq_len, hidden) tensor, the second item
    is an alias of the input produced by the filter's autograd Function: the other consumer's
    gradient then reaches the filter's backward kernel, which adds it where it writes the input
    gradient (no autograd add). Elsewhere (reference, CUDA, a list of groups) it is ``groups``
    itself. Same values and gradients either way."""
    _contract.check_frequency_filter_groups(groups, threshold, norm_weight, norm_bias, eps, dropout_p, training, scope)
    args = (groups, threshold, norm_weight, norm_bias, eps, dropout_p, training, scope)
    run = backends.dispatch("frequency_filter_groups", groups[0].device, *args)
    return run(*args, with_input=True) if with_input else run(*args)
