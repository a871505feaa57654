"""Adaptive frequency filter (SPEC section 3): its Triton custom ops, the CUDA extension's ops
(fakes and wrappers), one autograd Function body over either backend's kernels, and the
public ops ``frequency_filter`` and ``frequency_filter_groups`` (the three filters of a
seasonal branch in one call)."""

from typing import Optional

import torch

from .. import _cuda_extension, backends
from ..reference.frequency_filter import (
    THRESHOLD_SCOPES,
    frequency_filter_groups_ref,
    frequency_filter_ref,
    frequency_keep_mask,
)
from ._common import (
    CUDA_BLOCK_WARPS,
    FLOAT_BYTES,
    check_dropout,
    check_norm,
    check_tensor_list,
    check_tensors,
    custom_op,
    dropout_plan,
    unsupported_cuda_shared_memory,
    unsupported_tensors,
)


def _keep_mask(energy: torch.Tensor, batch: int, groups: int, threshold: torch.Tensor, scope: str,
               seq_len: int) -> torch.Tensor:
    """(B, G, K) kernel energies -> (B, G, K) float32 0/1 keep-mask: the reference's own mask code,
    reading nothing on the host (a fused step must run without host work, DESIGN.md). The CUDA
    backend's mask; the Triton backend computes it in its own kernels (kernels/frequency_keep_mask.py)."""
    return frequency_keep_mask(energy.reshape(batch, groups, -1), seq_len, threshold, scope,
                               host_ranks=False).to(torch.float32)


# ---- Triton custom ops ----

@custom_op("asrec::frequency_filter_fwd")
def frequency_filter_fwd(y: torch.Tensor, threshold: torch.Tensor, norm_weight: torch.Tensor,
                         norm_bias: torch.Tensor, rng: torch.Tensor, eps: float, dropout_p: float, dropping: bool,
                         scope: str, group_major: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """y: (B, G, N, H), or (G, B, N, H) with ``group_major`` -> (out, y's shape and dtype; keep, y's
    two leading axes by N//2 + 1, float32 0/1)."""
    from ..kernels.frequency_filter import _frequency_filter_fwd, _frequency_keep

    seq_len, hidden = y.shape[2:]
    groups, batch = y.shape[:2] if group_major else y.shape[1::-1]
    flat = y.view(batch * groups, seq_len, hidden)
    keep = _frequency_keep(flat, batch, groups, threshold, scope, group_major)
    out = _frequency_filter_fwd(flat, keep, norm_weight, norm_bias, eps, rng, dropout_p, dropping)
    return out.view(y.shape), keep.view(*y.shape[:2], -1)


@frequency_filter_fwd.register_fake
def _(y, *rest):
    return y.new_empty(y.shape), y.new_empty((*y.shape[:2], y.shape[2] // 2 + 1), dtype=torch.float32)


@custom_op("asrec::frequency_filter_bwd")
def frequency_filter_bwd(y: torch.Tensor, grad: torch.Tensor, keep: torch.Tensor, norm_weight: torch.Tensor,
                         rng: torch.Tensor, eps: float, dropout_p: float, dropping: bool,
                         input_grad: Optional[torch.Tensor] = None) -> tuple[torch.Tensor, torch.Tensor]:
    """-> dy (B, G, N, H) float32, and the float32 LayerNorm weight and bias gradients stacked
    (2, H): both second-stage sums in one launch (a custom op's outputs may not alias each
    other, so the autograd Function splits them). ``input_grad`` (y's shape, contiguous): a
    gradient that reached y by another path, added into dy by the kernel (no separate add)."""
    from ..kernels._common import column_sums
    from ..kernels.frequency_filter import _frequency_filter_bwd

    batch, groups, seq_len, hidden = y.shape
    extra = None if input_grad is None else input_grad.view(-1, seq_len, hidden)
    dy, parts = _frequency_filter_bwd(y.view(-1, seq_len, hidden), grad.reshape(-1, seq_len, hidden),
                                      keep, norm_weight, eps, rng, dropout_p, dropping, extra)
    return dy.view(y.shape), column_sums(parts)


@frequency_filter_bwd.register_fake
def _(y, *rest):
    return y.new_empty(y.shape, dtype=torch.float32), y.new_empty((2, y.shape[-1]), dtype=torch.float32)


class _TritonKernels:
    frequency_filter_fwd = frequency_filter_fwd
    frequency_filter_bwd = frequency_filter_bwd
    adds_input_grad = True  # frequency_filter_bwd takes input_grad


# ---- the CUDA extension's ops (torch.ops.asrec_cuda.*), with the Triton ops' signatures ----

def _register_cuda_fakes():
    @torch.library.register_fake("asrec_cuda::frequency_energy")
    def _(y):
        return y.new_empty((y.shape[0], y.shape[1] // 2 + 1), dtype=torch.float32)

    @torch.library.register_fake("asrec_cuda::frequency_filter_fwd")
    def _(y, *rest):
        return torch.empty_like(y)

    @torch.library.register_fake("asrec_cuda::frequency_filter_bwd")
    def _(y, *rest):
        return y.new_empty(y.shape, dtype=torch.float32), y.new_empty((2, y.shape[0], y.shape[2]),
                                                                      dtype=torch.float32)


_cuda_extension.after_load(_register_cuda_fakes)


class _CudaKernels:
    adds_input_grad = False  # the CUDA backward has no input_grad: with_input returns y beside the Function

    @staticmethod
    def frequency_filter_fwd(y, threshold, norm_weight, norm_bias, rng, eps, dropout_p, dropping, scope,
                             group_major):
        kernel_ops = _cuda_extension.kernel_ops
        leading, (seq_len, hidden) = y.shape[:2], y.shape[2:]
        flat = y.reshape(-1, seq_len, hidden)
        energy = kernel_ops.frequency_energy(flat).view(*leading, -1)
        if group_major:  # the mask code takes (B, G, K)
            keep = _keep_mask(energy.transpose(0, 1), leading[1], leading[0], threshold, scope, seq_len)
            keep = keep.transpose(0, 1).contiguous()
        else:
            keep = _keep_mask(energy, leading[0], leading[1], threshold, scope, seq_len)
        out = kernel_ops.frequency_filter_fwd(flat, keep.view(flat.shape[0], -1), norm_weight, norm_bias, rng, eps,
                                              dropout_p, dropping)
        return out.view(y.shape), keep

    @staticmethod
    def frequency_filter_bwd(y, grad, keep, norm_weight, rng, eps, dropout_p, dropping):
        batch, groups, seq_len, hidden = y.shape
        dy, parts = _cuda_extension.kernel_ops.frequency_filter_bwd(
            y.reshape(-1, seq_len, hidden), grad.reshape(-1, seq_len, hidden), keep.reshape(batch * groups, -1),
            norm_weight, rng, eps, dropout_p, dropping)
        return dy.view(y.shape), parts.sum(1)


# ---- autograd ----

def _frequency_filter_function(kernels, name: str):
    """The autograd Function over ``kernels`` (``_TritonKernels`` or ``_CudaKernels``)."""

    class FrequencyFilterFunction(torch.autograd.Function):
        """Forward/backward of ``frequency_filter_ref`` for (batch, groups, seq_len, hidden) input.

        Forward: energy kernel -> keep-mask on the device (median, per-group batch quantile,
        strict ``>``) -> fused inverse + dropout + residual + LayerNorm kernel. Saves the
        input, the mask and the dropout RNG state; backward recomputes the rest. ``threshold``
        gets no gradient. ``group_major``: y is (groups, batch, seq_len, hidden), as the
        convolution op writes its three outputs.

        ``with_input`` (kernels that add an input gradient, the Triton ones): returns
        ``(out, y)``, y as it came in (an alias whose grad_fn is this Function), so a second
        consumer of y hands its gradient to this backward, whose kernel adds it where it
        writes dy: autograd has no two gradients of y to add.
        """

        @staticmethod
        def forward(ctx, y, threshold, norm_weight, norm_bias, eps: float, dropout_p: float, training: bool,
                    scope: str, group_major: bool = False, with_input: bool = False):
            if with_input and not kernels.adds_input_grad:
                raise ValueError(f"{name}: with_input needs kernels that add an input gradient")
            given = y
            y = y.contiguous()
            norm_weight, norm_bias = norm_weight.contiguous(), norm_bias.contiguous()
            dropping, rng = dropout_plan(dropout_p, training, y.device)
            out, keep = kernels.frequency_filter_fwd(y, threshold, norm_weight, norm_bias, rng, eps, dropout_p,
                                                     dropping, scope, group_major)
            ctx.save_for_backward(y, keep, norm_weight, rng)
            ctx.settings = (eps, dropout_p, dropping)
            ctx.bias_dtype = norm_bias.dtype
            # an unused output's gradient stays None (no zeros kernel); backward handles both
            ctx.set_materialize_grads(False)
            return (out, given) if with_input else out

        @staticmethod
        def backward(ctx, grad, input_grad=None):
            y, keep, norm_weight, rng = ctx.saved_tensors
            if grad is None:  # only the passthrough was used: its gradient is y's
                return (None if input_grad is None else input_grad.to(y.dtype),) + (None,) * 9
            extra = () if input_grad is None else (input_grad.contiguous(),)
            dy, dnorm = kernels.frequency_filter_bwd(y, grad.contiguous(), keep, norm_weight, rng, *ctx.settings,
                                                     *extra)
            return (dy.to(y.dtype), None, dnorm[0].to(norm_weight.dtype), dnorm[1].to(ctx.bias_dtype),
                    None, None, None, None, None, None)

    FrequencyFilterFunction.__name__ = FrequencyFilterFunction.__qualname__ = name
    return FrequencyFilterFunction


FrequencyFilterFn = _frequency_filter_function(_TritonKernels, "FrequencyFilterFn")
FrequencyFilterCudaFn = _frequency_filter_function(_CudaKernels, "FrequencyFilterCudaFn")


def _triton_shape(seq_len, hidden, device):
    from ..kernels.frequency_filter import unsupported_shape

    return unsupported_shape(seq_len, hidden)


def _cuda_shape(seq_len, hidden, device):
    bins = seq_len // 2 + 1
    needed = FLOAT_BYTES * (2 * seq_len + 2 * bins * hidden + 3 * CUDA_BLOCK_WARPS * hidden)  # the backward's
    return unsupported_cuda_shared_memory("frequency filter", needed, device, seq_len, hidden)


def _fused(function, kernels, shape_check, groups: bool) -> backends.FusedKernel:
    """The fused kernel of ``frequency_filter`` (groups=False: y (B, [G,] N, H)) or of
    ``frequency_filter_groups`` (G same-shaped (B, N, H) inputs stacked into one launch, or
    one (G, B, N, H) tensor taken as it is: no copy; ``with_input``: see the public op).
    ``kernels``: the class ``function`` runs (its ``adds_input_grad``)."""

    def unsupported(y, threshold, norm_weight, norm_bias, *rest):
        if groups and any(g.shape != y[0].shape for g in y):
            return "the groups must share one shape"
        first = y[0] if groups else y
        return (unsupported_tensors(y=first, norm_weight=norm_weight, norm_bias=norm_bias)
                or shape_check(first.shape[-2], first.shape[-1], first.device))

    def run(y, *args, with_input=False):
        if groups and torch.is_tensor(y):
            if with_input and kernels.adds_input_grad:  # (a plain bool here: torch.compile traces it)
                return function.apply(y, *args, True, True)  # (out, y: the Function's own output)
            out = function.apply(y, *args, True)
            return (out, y) if with_input else out
        if groups:
            out = list(function.apply(torch.stack(y, dim=1), *args).unbind(1))
            return (out, y) if with_input else out
        out = function.apply(y if y.dim() == 4 else y.unsqueeze(1), *args)
        return out if y.dim() == 4 else out.squeeze(1)

    return backends.FusedKernel(run, unsupported)


backends.register("frequency_filter", frequency_filter_ref,
                  triton=_fused(FrequencyFilterFn, _TritonKernels, _triton_shape, groups=False),
                  cuda=_fused(FrequencyFilterCudaFn, _CudaKernels, _cuda_shape, groups=False))
def _groups_reference(groups, *args, with_input=False):
    out = frequency_filter_groups_ref(groups, *args)
    return (out, groups) if with_input else out


backends.register("frequency_filter_groups", _groups_reference,
                  triton=_fused(FrequencyFilterFn, _TritonKernels, _triton_shape, groups=True),
                  cuda=_fused(FrequencyFilterCudaFn, _CudaKernels, _cuda_shape, groups=True))


# ---- public ops ----

def _check(y, threshold, norm_weight, norm_bias, dropout_p, scope):
    check_tensors("frequency_filter", y=y, threshold=threshold, norm_weight=norm_weight, norm_bias=norm_bias)
    if y.dim() not in (3, 4):
        raise ValueError("frequency_filter: y must be (batch, seq_len, hidden) or (batch, groups, seq_len, hidden), "
                         f"got shape {tuple(y.shape)}")
    check_norm("frequency_filter", y.shape[-1], norm_weight=norm_weight, norm_bias=norm_bias)
    if threshold.numel() != 1:
        raise ValueError(f"frequency_filter: threshold must have one element, got shape {tuple(threshold.shape)}")
    check_dropout("frequency_filter", dropout_p)
    if scope not in THRESHOLD_SCOPES:
        raise ValueError(f"frequency_filter: scope must be one of {THRESHOLD_SCOPES}, got {scope!r}")


def frequency_filter(y: torch.Tensor, threshold: torch.Tensor, norm_weight: torch.Tensor,
                     norm_bias: torch.Tensor, eps: float, dropout_p: float = 0.5, training: bool = False,
                     scope: str = "batch") -> torch.Tensor:
    """See ``asrec.reference.frequency_filter_ref``. y: (batch, [groups,] seq_len, hidden)."""
    _check(y, threshold, norm_weight, norm_bias, dropout_p, scope)
    args = (y, threshold, norm_weight, norm_bias, eps, dropout_p, training, scope)
    return backends.dispatch("frequency_filter", y.device, *args)(*args)


def frequency_filter_groups(groups, threshold: torch.Tensor, norm_weight: torch.Tensor, norm_bias: torch.Tensor,
                            eps: float, dropout_p: float = 0.5, training: bool = False, scope: str = "batch",
                            with_input: bool = False):
    """The filters of a seasonal branch, a quantile each: a list of G (batch, seq_len, hidden)
    inputs -> a list of G outputs, or one (G, batch, seq_len, hidden) tensor (the convolutions'
    output as it is) -> one tensor of that shape. See
    ``asrec.reference.frequency_filter.frequency_filter_groups_ref``.

    ``with_input``: -> ``(filtered, groups)``, for a caller that uses the input again (the
    seasonal branch's contrast reads the convolutions' outputs too) and so sums two gradients
    into it. On the Triton backend, with a (G, batch, seq_len, hidden) tensor, the second item
    is an alias of the input produced by the filter's autograd Function: the other consumer's
    gradient then reaches the filter's backward kernel, which adds it where it writes the input
    gradient (no autograd add). Elsewhere (reference, CUDA, a list of groups) it is ``groups``
    itself. Same values and gradients either way."""
    if torch.is_tensor(groups):
        if groups.dim() != 4 or groups.shape[0] == 0:
            raise ValueError("frequency_filter_groups: a groups tensor must be (groups, batch, seq_len, hidden) with "
                             f"at least one group, got shape {tuple(groups.shape)}")
    else:
        check_tensor_list("frequency_filter_groups", "groups", groups)
    _check(groups[0], threshold, norm_weight, norm_bias, dropout_p, scope)
    args = (groups, threshold, norm_weight, norm_bias, eps, dropout_p, training, scope)
    run = backends.dispatch("frequency_filter_groups", groups[0].device, *args)
    return run(*args, with_input=True) if with_input else run(*args)
