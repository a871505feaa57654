"""The model's input stage (SPEC sections 1-2): the public op, its autograd Functions on
Triton and on the CUDA extension (one Function body over either backend's kernels)."""

import torch

from ..reference import input_stage_ref
from . import _cuda_library, _library
from ._triton_checks import dropout_plan, unsupported_tensors
from .registry import KernelImplementation, implementation, register


def _input_stage_function(kernels, name: str):
    """The autograd Function of the input stage over ``kernels`` (``_library``: Triton,
    ``_cuda_library``: CUDA), whose ``input_stage_fwd/bwd`` share one signature."""

    class InputStageFunction(torch.autograd.Function):
        """Forward/backward of ``input_stage_ref`` through ``input_stage_fwd/bwd``: one kernel
        gathers, normalises, drops out and smooths each sequence; backward returns the item
        table's gradient through PyTorch's embedding backward (row 0, the padding item, gets none)."""

        @staticmethod
        def forward(ctx, item_seq, item_weight, position_weight, norm_weight, norm_bias, eps, dropout_p, training,
                    smoothing_logit, init_level, smoothed_scale, mix):
            tensors = [t.contiguous() for t in (item_seq, item_weight, position_weight, norm_weight, norm_bias,
                                                 smoothing_logit, init_level, smoothed_scale)]
            dropping, seed = dropout_plan(dropout_p, training)
            out = kernels.input_stage_fwd(*tensors, seed, eps, dropout_p, dropping, float(mix))
            ctx.save_for_backward(*tensors, seed)
            ctx.settings = (eps, dropout_p, dropping, float(mix))
            return out

        @staticmethod
        def backward(ctx, grad):
            *tensors, seed = ctx.saved_tensors
            item_seq, item_weight, position_weight, norm_weight, norm_bias, logit, init_level, smoothed_scale = tensors
            dembedded, dlogit, sums, dposition_rows = kernels.input_stage_bwd(*tensors, grad.contiguous(), seed,
                                                                              *ctx.settings)
            ditem = torch.ops.aten.embedding_dense_backward(dembedded, item_seq, item_weight.shape[0], 0, False)
            unused_rows = position_weight.shape[0] - dposition_rows.shape[0]
            dposition = torch.nn.functional.pad(dposition_rows, (0, 0, 0, unused_rows))
            dlevel, dscale, dnorm_weight, dnorm_bias = sums
            return (None, ditem.to(item_weight.dtype), dposition.to(position_weight.dtype),
                    dnorm_weight.to(norm_weight.dtype), dnorm_bias.to(norm_bias.dtype), None, None, None,
                    dlogit.to(logit.dtype), dlevel.view_as(init_level).to(init_level.dtype),
                    dscale.view_as(smoothed_scale).to(smoothed_scale.dtype), None)

    InputStageFunction.__name__ = InputStageFunction.__qualname__ = name
    return InputStageFunction


InputStageFn = _input_stage_function(_library, "InputStageFn")
InputStageCudaFn = _input_stage_function(_cuda_library, "InputStageCudaFn")


def _unsupported_tensors(item_seq, item_weight, position_weight, norm_weight, norm_bias, eps, dropout_p, training,
                         smoothing_logit, init_level, smoothed_scale, mix):
    return (unsupported_tensors(item_weight=item_weight, position_weight=position_weight, norm_weight=norm_weight,
                                norm_bias=norm_bias, smoothing_logit=smoothing_logit, init_level=init_level,
                                smoothed_scale=smoothed_scale)
            or (None if item_seq.device == item_weight.device else
                f"item_seq is on {item_seq.device}, the tables on {item_weight.device}"))


def input_stage_unsupported(item_seq, item_weight, *args):
    from ..kernels.input_stage import unsupported_shape

    return (_unsupported_tensors(item_seq, item_weight, *args)
            or unsupported_shape(item_seq.shape[1], item_weight.shape[1]))


def input_stage_triton(*args):
    """Same contract as ``input_stage_ref``; float32 output."""
    return InputStageFn.apply(*args)


def input_stage_cuda_unsupported(item_seq, item_weight, *args):
    return (_unsupported_tensors(item_seq, item_weight, *args)
            or _cuda_library.input_stage_unsupported_shape(item_seq.shape[1], item_weight.shape[1],
                                                           item_weight.device))


def input_stage_cuda(*args):
    """Same contract as ``input_stage_ref`` on the CUDA extension; float32 output."""
    return InputStageCudaFn.apply(*args)


def _check(item_seq, item_weight, position_weight, norm_weight, norm_bias, dropout_p):
    if item_seq.dim() != 2 or item_seq.dtype not in (torch.int32, torch.int64):
        raise ValueError(f"input_stage: item_seq must be (batch, seq_len) int32/int64 ids, got shape "
                         f"{tuple(item_seq.shape)} {item_seq.dtype}")
    if item_weight.dim() != 2:
        raise ValueError(f"input_stage: item_weight must be (n_items, hidden), got {tuple(item_weight.shape)}")
    hidden = item_weight.shape[1]
    if position_weight.dim() != 2 or position_weight.shape[1] != hidden or position_weight.shape[0] < item_seq.shape[1]:
        raise ValueError(f"input_stage: position_weight must be (>= {item_seq.shape[1]}, {hidden}), got "
                         f"{tuple(position_weight.shape)}")
    for name, tensor in (("norm_weight", norm_weight), ("norm_bias", norm_bias)):
        if tensor.shape != (hidden,):
            raise ValueError(f"input_stage: {name} must be ({hidden},), got {tuple(tensor.shape)}")
    if not 0.0 <= dropout_p < 1.0:
        raise ValueError(f"input_stage: dropout_p must be in [0, 1), got {dropout_p!r}")


def input_stage(item_seq: torch.Tensor, item_weight: torch.Tensor, position_weight: torch.Tensor,
                norm_weight: torch.Tensor, norm_bias: torch.Tensor, eps: float, dropout_p: float, training: bool,
                smoothing_logit: torch.Tensor, init_level: torch.Tensor, smoothed_scale: torch.Tensor,
                mix: float) -> torch.Tensor:
    """Embeddings, LayerNorm, dropout and Fourier smoothing; see ``asrec.reference.input_stage_ref``.

    item_seq: (batch, seq_len) ids -> (batch, seq_len, hidden). Ids are not range-checked
    here (``ASRecModel`` checks them at its boundary).
    """
    _check(item_seq, item_weight, position_weight, norm_weight, norm_bias, dropout_p)
    args = (item_seq, item_weight, position_weight, norm_weight, norm_bias, eps, dropout_p, training,
            smoothing_logit, init_level, smoothed_scale, mix)
    return implementation("input_stage", item_weight.device, *args)(*args)


register("input_stage", input_stage_ref, KernelImplementation(input_stage_triton, input_stage_unsupported),
         cuda=KernelImplementation(input_stage_cuda, input_stage_cuda_unsupported, gpu_verified=False))
