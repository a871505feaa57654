"""Adaptive frequency filter (SPEC section 3) and the public op ``frequency_filter``.

``frequency_filter`` (and ``frequency_filter_groups``, the seasonal branch's three filters in
one call, in ``frequency_filter_groups.py``) dispatch (``backends.plan``) to
``frequency_filter_ref``, to ``FrequencyFilterFn`` (Triton: the custom ops
``asrec::frequency_filter_fwd`` / ``_bwd`` below, over the launchers of
``kernels.frequency_filter``) or to ``FrequencyFilterCudaFn`` (CUDA: ``cuda_frequency_filter_fwd``
/ ``_bwd`` below, over ``asrec_cuda::frequency_*`` of csrc/frequency_filter)."""

from typing import Optional

import torch

from .. import _cuda_extension, backends
from ..distributed_filter import active_gather, keep_over_whole_batch
from ..reference.frequency_filter import frequency_filter_ref, frequency_keep_mask
from . import _contract
from ._checks import unsupported_cuda_shared_memory, unsupported_tensors
from ._custom_op import custom_op
from ._dropout import dropout_plan
from ._filter_keep_gathered import triton_whole_batch_keep

# ---- Triton: custom ops over the launchers of asrec.kernels.frequency_filter ----


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
    plan = active_gather(scope)  # under asrec.distributed_filter: the whole batch's quantile, one all-gather
    keep = (_frequency_keep(flat, batch, groups, threshold, scope, group_major) if plan is None
            else triton_whole_batch_keep(flat, batch, groups, threshold, group_major, plan))
    out = _frequency_filter_fwd(flat, keep, norm_weight, norm_bias, eps, rng, dropout_p, dropping)
    return out.view(y.shape), keep.view(*y.shape[:2], -1)


@frequency_filter_fwd.register_fake
def frequency_filter_fwd_fake(y, threshold, norm_weight, norm_bias, rng, eps, dropout_p, dropping, scope, group_major):
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

    seq_len, hidden = y.shape[2:]
    extra = None if input_grad is None else input_grad.view(-1, seq_len, hidden)
    dy, parts = _frequency_filter_bwd(y.view(-1, seq_len, hidden), grad.reshape(-1, seq_len, hidden),
                                      keep, norm_weight, eps, rng, dropout_p, dropping, extra)
    return dy.view(y.shape), column_sums(parts)


@frequency_filter_bwd.register_fake
def frequency_filter_bwd_fake(y, grad, keep, norm_weight, rng, eps, dropout_p, dropping, input_grad=None):
    return y.new_empty(y.shape, dtype=torch.float32), y.new_empty((2, y.shape[-1]), dtype=torch.float32)


# ---- CUDA: the extension's ops (torch.ops.asrec_cuda.*), their fakes, and wrappers with the Triton ops' results ----

def _register_cuda_fakes():
    @torch.library.register_fake("asrec_cuda::frequency_energy")
    def cuda_frequency_energy_fake(y):
        return y.new_empty((y.shape[0], y.shape[1] // 2 + 1), dtype=torch.float32)

    @torch.library.register_fake("asrec_cuda::frequency_filter_fwd")
    def cuda_frequency_filter_fwd_fake(y, keep, norm_weight, norm_bias, rng, eps, dropout_p, dropping):
        return torch.empty_like(y)

    @torch.library.register_fake("asrec_cuda::frequency_filter_bwd")
    def cuda_frequency_filter_bwd_fake(y, grad, keep, norm_weight, rng, eps, dropout_p, dropping):
        return y.new_empty(y.shape, dtype=torch.float32), y.new_empty((2, y.shape[0], y.shape[2]),
                                                                      dtype=torch.float32)


_cuda_extension.after_load(_register_cuda_fakes)


def cuda_frequency_filter_fwd(y, threshold, norm_weight, norm_bias, rng, eps, dropout_p, dropping, scope, group_major):
    """``frequency_filter_fwd`` on the CUDA extension: its energy kernel, then the reference's own
    mask code on the device (no host read), then its fused inverse + dropout + residual + LN."""
    kernel_ops = _cuda_extension.kernel_ops
    leading, seq_len = y.shape[:2], y.shape[2]
    flat = y.reshape(-1, seq_len, y.shape[3])
    energy = kernel_ops.frequency_energy(flat).view(*leading, -1)
    energy = energy.transpose(0, 1) if group_major else energy  # the mask code takes (B, G, K)
    # under asrec.distributed_filter: the whole batch's quantile, one all-gather (as the Triton path; unrun on a GPU)
    keep = keep_over_whole_batch(energy, lambda e: frequency_keep_mask(e, seq_len, threshold, scope, host_ranks=False),
                                 active_gather(scope)).to(torch.float32)
    keep = keep.transpose(0, 1).contiguous() if group_major else keep
    out = kernel_ops.frequency_filter_fwd(flat, keep.view(flat.shape[0], -1), norm_weight, norm_bias, rng, eps,
                                          dropout_p, dropping)
    return out.view(y.shape), keep


def cuda_frequency_filter_bwd(y, grad, keep, norm_weight, rng, eps, dropout_p, dropping):
    """``frequency_filter_bwd`` on the CUDA extension (no input_grad; per-sequence LN parts summed here)."""
    batch, groups, seq_len, hidden = y.shape
    dy, parts = _cuda_extension.kernel_ops.frequency_filter_bwd(
        y.reshape(-1, seq_len, hidden), grad.reshape(-1, seq_len, hidden), keep.reshape(batch * groups, -1),
        norm_weight, rng, eps, dropout_p, dropping)
    return dy.view(y.shape), parts.sum(1)


# ---- autograd: one body; each backend's Function names its launchers ----

def _forward(ctx, launch_fwd, y, threshold, norm_weight, norm_bias, eps, dropout_p, training, scope,
             group_major=False, with_input=False):
    given = y
    y = y.contiguous()
    norm_weight, norm_bias = norm_weight.contiguous(), norm_bias.contiguous()
    dropping, rng = dropout_plan(dropout_p, training, y.device)
    out, keep = launch_fwd(y, threshold, norm_weight, norm_bias, rng, eps, dropout_p, dropping, scope, group_major)
    ctx.save_for_backward(y, keep, norm_weight, rng)
    ctx.eps, ctx.dropout_p, ctx.dropping, ctx.bias_dtype = eps, dropout_p, dropping, norm_bias.dtype
    ctx.set_materialize_grads(False)  # an unused output's gradient stays None (no zeros kernel)
    return (out, given) if with_input else out


def _backward(ctx, launch_bwd, grad, input_grad):
    y, keep, norm_weight, rng = ctx.saved_tensors
    if grad is None:  # only the passthrough was used: its gradient is y's
        return (None if input_grad is None else input_grad.to(y.dtype),) + (None,) * 9
    extra = () if input_grad is None else (input_grad.contiguous(),)
    dy, dnorm = launch_bwd(y, grad.contiguous(), keep, norm_weight, rng, ctx.eps, ctx.dropout_p, ctx.dropping, *extra)
    return (dy.to(y.dtype), None, dnorm[0].to(norm_weight.dtype), dnorm[1].to(ctx.bias_dtype),
            None, None, None, None, None, None)


class FrequencyFilterFn(torch.autograd.Function):
    """Forward/backward of ``frequency_filter_ref`` for (batch, groups, seq_len, hidden) input,
    arguments ``(y, threshold, norm_weight, norm_bias, eps, dropout_p, training, scope,
    group_major=False, with_input=False)``.

    Forward: energy -> keep-mask on the device (median, per-group batch quantile, strict
    ``>``; under ``asrec.distributed_filter`` the quantile of the whole batch of several
    processes, one all-gather) -> fused inverse + dropout + residual + LayerNorm. Saves the input, the mask and the
    dropout RNG state; backward recomputes the rest. ``threshold`` gets no gradient.
    ``group_major``: y is (groups, batch, seq_len, hidden), as the convolution op writes its
    three outputs. ``with_input``: returns ``(out, y)``, y as it came in (an alias whose
    grad_fn is this Function), so a second consumer of y hands its gradient to this backward,
    whose kernel adds it where it writes dy: autograd has no two gradients of y to add."""

    @staticmethod
    def forward(ctx, *args):
        return _forward(ctx, frequency_filter_fwd, *args)

    @staticmethod
    def backward(ctx, grad, input_grad=None):
        return _backward(ctx, frequency_filter_bwd, grad, input_grad)


class FrequencyFilterCudaFn(torch.autograd.Function):
    """``FrequencyFilterFn`` on the CUDA extension's kernels, without ``with_input`` (the CUDA
    backward adds no input gradient)."""

    @staticmethod
    def forward(ctx, y, threshold, norm_weight, norm_bias, eps, dropout_p, training, scope, group_major=False):
        return _forward(ctx, cuda_frequency_filter_fwd, y, threshold, norm_weight, norm_bias, eps, dropout_p,
                        training, scope, group_major)

    @staticmethod
    def backward(ctx, grad):
        return _backward(ctx, cuda_frequency_filter_bwd, grad, None)[:9]


def triton_shape_unsupported(seq_len: int, hidden: int, device: torch.device):
    from ..kernels.frequency_filter import unsupported_shape

    return unsupported_shape(seq_len, hidden)


def cuda_shape_unsupported(seq_len: int, hidden: int, device: torch.device):
    return unsupported_cuda_shared_memory("frequency_filter", device, seq_len, hidden)


def _unsupported(shape_unsupported, y, threshold, norm_weight, norm_bias):
    return (unsupported_tensors(y=y, norm_weight=norm_weight, norm_bias=norm_bias)
            or shape_unsupported(y.shape[-2], y.shape[-1], y.device))


def _triton(y, *args):
    out = FrequencyFilterFn.apply(y if y.dim() == 4 else y.unsqueeze(1), *args)
    return out if y.dim() == 4 else out.squeeze(1)


def _cuda(y, *args):
    out = FrequencyFilterCudaFn.apply(y if y.dim() == 4 else y.unsqueeze(1), *args)
    return out if y.dim() == 4 else out.squeeze(1)


def _triton_unsupported(y, threshold, norm_weight, norm_bias, *rest):
    return _unsupported(triton_shape_unsupported, y, threshold, norm_weight, norm_bias)


def _cuda_unsupported(y, threshold, norm_weight, norm_bias, *rest):
    return _unsupported(cuda_shape_unsupported, y, threshold, norm_weight, norm_bias)


backends.register("frequency_filter", frequency_filter_ref, triton=backends.FusedKernel(_triton, _triton_unsupported),
                  cuda=backends.FusedKernel(_cuda, _cuda_unsupported))


# ---- public op ----

def frequency_filter(y: torch.Tensor, threshold: torch.Tensor, norm_weight: torch.Tensor,
                     norm_bias: torch.Tensor, eps: float, dropout_p: float = 0.5, training: bool = False,
                     scope: str = "batch") -> torch.Tensor:
    """See ``asrec.reference.frequency_filter_ref``. y: (batch, [groups,] seq_len, hidden) -> y's
    shape; threshold: () quantile level; norm_weight, norm_bias: (hidden,).

    The standalone entry (``AdaptiveFrequencyFilter.forward``); the model's seasonal branch runs
    its three filters through ``frequency_filter_groups`` instead, on the convolutions' stacked output."""
    _contract.check_frequency_filter("frequency_filter", y, threshold, norm_weight, norm_bias, eps, dropout_p, training,
                                     scope)
    args = (y, threshold, norm_weight, norm_bias, eps, dropout_p, training, scope)
    return backends.dispatch("frequency_filter", y.device, *args)(*args)
