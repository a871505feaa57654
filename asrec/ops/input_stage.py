"""The model's input stage (SPEC sections 1-2): gather + LayerNorm + dropout + Fourier
smoothing. ``input_stage`` dispatches (``backends.plan``) to ``input_stage_ref``, to
``InputStageFn`` (Triton: the custom ops ``asrec::input_stage_fwd`` / ``_bwd`` below, over the
launchers of ``kernels.input_stage``) or to ``InputStageCudaFn`` (CUDA: ``cuda_input_stage_fwd``
/ ``_bwd`` below, over ``asrec_cuda::input_stage_*`` of csrc/input_stage)."""

from typing import Optional

import torch

from .. import _cuda_extension, backends
from ..reference.fourier_smoothing import smoothing_norm
from ..reference.input_stage import input_stage_ref
from . import _contract
from ._checks import unsupported_cuda_shared_memory, unsupported_tensors
from ._custom_op import custom_op
from ._dropout import dropout_plan


def smoothing_logit_grad(dalpha_parts: torch.Tensor, smoothing_logit: torch.Tensor) -> torch.Tensor:
    """The smoothing logit's gradient from partial sums of d/d alpha (alpha = sigmoid(logit)), float32."""
    alpha = torch.sigmoid(smoothing_logit.float())
    return (dalpha_parts.sum() * alpha * (1.0 - alpha)).reshape(smoothing_logit.shape)


# ---- Triton: custom ops over the launchers of asrec.kernels.input_stage ----

@custom_op("asrec::input_stage_fwd")
def input_stage_fwd(item_seq: torch.Tensor, item_weight: torch.Tensor, position_weight: torch.Tensor,
                    norm_weight: torch.Tensor, norm_bias: torch.Tensor, smoothing_logit: torch.Tensor,
                    init_level: torch.Tensor, smoothed_scale: torch.Tensor, rng: torch.Tensor, eps: float,
                    dropout_p: float, dropping: bool, mix: float) -> torch.Tensor:
    """-> (B, N, H) float32."""
    from ..kernels.input_stage import _input_stage_fwd

    return _input_stage_fwd(item_seq, item_weight, position_weight, norm_weight, norm_bias, smoothing_logit,
                            init_level, smoothed_scale, eps, rng, dropout_p, dropping,
                            smoothing_norm(item_seq.shape[1]), mix)


@input_stage_fwd.register_fake
def input_stage_fwd_fake(item_seq, item_weight, position_weight, norm_weight, norm_bias, smoothing_logit, init_level,
                         smoothed_scale, rng, eps, dropout_p, dropping, mix):
    return item_weight.new_empty((*item_seq.shape, item_weight.shape[1]), dtype=torch.float32)


@custom_op("asrec::input_stage_bwd")
def input_stage_bwd(item_seq: torch.Tensor, item_weight: torch.Tensor, position_weight: torch.Tensor,
                    norm_weight: torch.Tensor, norm_bias: torch.Tensor, smoothing_logit: torch.Tensor,
                    init_level: torch.Tensor, smoothed_scale: torch.Tensor, grad: torch.Tensor, rng: torch.Tensor,
                    eps: float, dropout_p: float, dropping: bool, mix: float,
                    grad2: Optional[torch.Tensor] = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor,
                                                                   torch.Tensor]:
    """-> d(embedding sum) (B, N, H), the smoothing logit's gradient (1,), (4, H) gradients of
    init_level, smoothed_scale, the LayerNorm weight and bias, and the position table's
    (P, H) (zero rows past seq_len); float32. Two launches: the backward, then the finish.
    grad2: the output's second handle's gradient (grad's layout), added as grad is read."""
    from ..kernels.input_stage import _input_stage_bwd, _input_stage_finish

    dembedded, parts = _input_stage_bwd(item_seq, item_weight, position_weight, norm_weight, norm_bias,
                                        smoothing_logit, init_level, smoothed_scale, grad, eps, rng, dropout_p,
                                        dropping, smoothing_norm(item_seq.shape[1]), mix, grad2)
    return dembedded, *_input_stage_finish(dembedded, parts, smoothing_logit, position_weight.shape[0])


@input_stage_bwd.register_fake
def input_stage_bwd_fake(item_seq, item_weight, position_weight, norm_weight, norm_bias, smoothing_logit, init_level,
                         smoothed_scale, grad, rng, eps, dropout_p, dropping, mix, grad2=None):
    hidden = item_weight.shape[1]
    return (grad.new_empty(grad.shape, dtype=torch.float32), grad.new_empty((1,), dtype=torch.float32),
            grad.new_empty((4, hidden), dtype=torch.float32),
            grad.new_empty((position_weight.shape[0], hidden), dtype=torch.float32))


# ---- CUDA: the extension's ops (torch.ops.asrec_cuda.*), their fakes, and wrappers with the Triton ops' results ----

def _register_cuda_fakes():
    @torch.library.register_fake("asrec_cuda::input_stage_fwd")
    def cuda_input_stage_fwd_fake(item_seq, item_weight, position_weight, norm_weight, norm_bias, smoothing_logit,
                                  init_level, smoothed_scale, rng, eps, dropout_p, dropping, inv_sqrt_len, mix):
        return item_weight.new_empty((*item_seq.shape, item_weight.shape[1]), dtype=torch.float32)

    @torch.library.register_fake("asrec_cuda::input_stage_bwd")
    def cuda_input_stage_bwd_fake(item_seq, item_weight, position_weight, norm_weight, norm_bias, smoothing_logit,
                                  init_level, smoothed_scale, grad, rng, eps, dropout_p, dropping, inv_sqrt_len, mix):
        batch, hidden = item_seq.shape[0], item_weight.shape[1]
        return (item_weight.new_empty((*item_seq.shape, hidden), dtype=torch.float32),
                item_weight.new_empty((5, batch, hidden), dtype=torch.float32))


_cuda_extension.after_load(_register_cuda_fakes)


def cuda_input_stage_fwd(item_seq, item_weight, position_weight, norm_weight, norm_bias, smoothing_logit, init_level,
                         smoothed_scale, rng, eps, dropout_p, dropping, mix):
    """``input_stage_fwd`` on the CUDA extension."""
    return _cuda_extension.kernel_ops.input_stage_fwd(
        item_seq, item_weight, position_weight, norm_weight, norm_bias, smoothing_logit, init_level, smoothed_scale,
        rng, eps, dropout_p, dropping, smoothing_norm(item_seq.shape[1]), mix)


def cuda_input_stage_finish(dembedded: torch.Tensor, parts: torch.Tensor, smoothing_logit: torch.Tensor,
                             n_positions: int) -> tuple:
    """The CUDA backward's kernel outputs, dembedded (B, N, H) and per-sequence parts (5, B, H) of
    d alpha, d init_level, d smoothed_scale, d LN weight and bias -> (d logit (1,), the four sums
    (4, H), d position table (n_positions, H)), in torch ops (the Triton backend's finish launch)."""
    dposition_rows = dembedded.sum(0)
    dposition = torch.nn.functional.pad(dposition_rows, (0, 0, 0, n_positions - dposition_rows.shape[0]))
    return smoothing_logit_grad(parts[0], smoothing_logit), parts[1:].sum(1), dposition


def cuda_input_stage_bwd(item_seq, item_weight, position_weight, norm_weight, norm_bias, smoothing_logit, init_level,
                         smoothed_scale, grad, rng, eps, dropout_p, dropping, mix, grad2=None):
    """``input_stage_bwd`` on the CUDA extension: its kernel reads one gradient (grad2 is added before it)."""
    if grad2 is not None:
        grad = grad + grad2
    dembedded, parts = _cuda_extension.kernel_ops.input_stage_bwd(
        item_seq, item_weight, position_weight, norm_weight, norm_bias, smoothing_logit, init_level, smoothed_scale,
        grad, rng, eps, dropout_p, dropping, smoothing_norm(item_seq.shape[1]), mix)
    return dembedded, *cuda_input_stage_finish(dembedded, parts, smoothing_logit, position_weight.shape[0])


# ---- autograd: one body; each backend's Function names its launchers ----

def _forward(ctx, launch_fwd, item_seq, item_weight, position_weight, norm_weight, norm_bias, eps, dropout_p, training,
             smoothing_logit, init_level, smoothed_scale, mix, with_residual=False):
    tensors = [t.contiguous() for t in (item_seq, item_weight, position_weight, norm_weight, norm_bias,
                                         smoothing_logit, init_level, smoothed_scale)]
    dropping, rng = dropout_plan(dropout_p, training, item_weight.device)
    out = launch_fwd(*tensors, rng, eps, dropout_p, dropping, float(mix))
    ctx.save_for_backward(*tensors, rng)
    ctx.eps, ctx.dropout_p, ctx.dropping, ctx.mix = eps, dropout_p, dropping, float(mix)
    return (out, out.view_as(out)) if with_residual else out


def _backward(ctx, launch_bwd, grad, grad2):
    *tensors, rng = ctx.saved_tensors
    item_seq, item_weight, position_weight, norm_weight, norm_bias, logit, init_level, smoothed_scale = tensors
    if grad is None:  # only the residual handle was used
        grad, grad2 = grad2, None
    grad2 = None if grad2 is None else grad2.contiguous()
    dembedded, dlogit, sums, dposition = launch_bwd(*tensors, grad.contiguous(), rng, ctx.eps, ctx.dropout_p,
                                                    ctx.dropping, ctx.mix, grad2)
    ditem = torch.ops.aten.embedding_dense_backward(dembedded, item_seq, item_weight.shape[0], 0, False)
    dlevel, dscale, dnorm_weight, dnorm_bias = sums
    return (None, ditem.to(item_weight.dtype), dposition.to(position_weight.dtype),
            dnorm_weight.to(norm_weight.dtype), dnorm_bias.to(norm_bias.dtype), None, None, None,
            dlogit.to(logit.dtype), dlevel.view_as(init_level).to(init_level.dtype),
            dscale.view_as(smoothed_scale).to(smoothed_scale.dtype), None, None)


class InputStageFn(torch.autograd.Function):
    """Triton forward/backward of ``input_stage_ref``: one kernel gathers, normalises, drops out
    and smooths each sequence; backward returns the item table's gradient through PyTorch's
    embedding backward (row 0, the padding item, gets none). ``with_residual``: a second
    output, a view of the first (``input_stage``'s residual handle), whose gradient the
    backward kernel adds as it reads the first's."""

    @staticmethod
    def forward(ctx, *args):  # input_stage's arguments
        return _forward(ctx, input_stage_fwd, *args)

    @staticmethod
    def backward(ctx, grad, grad2=None):
        return _backward(ctx, input_stage_bwd, grad, grad2)


class InputStageCudaFn(torch.autograd.Function):
    """``InputStageFn`` on the CUDA extension's kernels."""

    @staticmethod
    def forward(ctx, *args):  # input_stage's arguments
        return _forward(ctx, cuda_input_stage_fwd, *args)

    @staticmethod
    def backward(ctx, grad, grad2=None):
        return _backward(ctx, cuda_input_stage_bwd, grad, grad2)


def _reference(item_seq, item_weight, position_weight, norm_weight, norm_bias, eps, dropout_p, training,
               smoothing_logit, init_level, smoothed_scale, mix, with_residual=False):
    out = input_stage_ref(item_seq, item_weight, position_weight, norm_weight, norm_bias, eps, dropout_p, training,
                          smoothing_logit, init_level, smoothed_scale, mix)
    return (out, out) if with_residual else out


def _unsupported_tensors(item_seq, item_weight, position_weight, norm_weight, norm_bias, eps, dropout_p, training,
                         smoothing_logit, init_level, smoothed_scale, *flags):
    return unsupported_tensors(item_weight=item_weight, position_weight=position_weight, norm_weight=norm_weight,
                               norm_bias=norm_bias, smoothing_logit=smoothing_logit, init_level=init_level,
                               smoothed_scale=smoothed_scale)


def _triton_unsupported(item_seq, item_weight, *args):
    from ..kernels.input_stage import unsupported_shape

    return (_unsupported_tensors(item_seq, item_weight, *args)
            or unsupported_shape(item_seq.shape[1], item_weight.shape[1]))


def _cuda_unsupported(item_seq, item_weight, *args):
    return (_unsupported_tensors(item_seq, item_weight, *args)
            or unsupported_cuda_shared_memory("input_stage", item_weight.device, item_seq.shape[1],
                                              item_weight.shape[1]))


backends.register("input_stage", _reference,
                  triton=backends.FusedKernel(InputStageFn.apply, _triton_unsupported),
                  cuda=backends.FusedKernel(InputStageCudaFn.apply, _cuda_unsupported))


# ---- public op ----

def input_stage(item_seq: torch.Tensor, item_weight: torch.Tensor, position_weight: torch.Tensor,
                norm_weight: torch.Tensor, norm_bias: torch.Tensor, eps: float, dropout_p: float, training: bool,
                smoothing_logit: torch.Tensor, init_level: torch.Tensor, smoothed_scale: torch.Tensor,
                mix: float) -> torch.Tensor:
    """Embeddings, LayerNorm, dropout and Fourier smoothing (``asrec.reference.input_stage_ref``).
    item_seq: (batch, seq_len) integer ids in [0, n_items) (any integer dtype) -> (batch, seq_len,
    hidden). The contract (``asrec.ops._contract.check_input_stage``) checks the id range on CPU
    tensors; on a GPU the caller holds it (``ASRecModel`` checks ids at its boundary)."""
    return _input_stage(item_seq, item_weight, position_weight, norm_weight, norm_bias, eps, dropout_p, training,
                        smoothing_logit, init_level, smoothed_scale, mix, with_residual=False)


def _input_stage(item_seq, item_weight, position_weight, norm_weight, norm_bias, eps, dropout_p, training,
                 smoothing_logit, init_level, smoothed_scale, mix, with_residual: bool):
    """``input_stage`` for ``asrec.modules``; ``with_residual=True`` -> (hidden, residual), the same
    values twice (the first layer's projections and its residual path): on the fused backends a
    second output of the op, whose gradient the backward adds (Triton: in its kernel; CUDA: before it)."""
    _contract.check_input_stage(item_seq, item_weight, position_weight, norm_weight, norm_bias, eps, dropout_p,
                                training, smoothing_logit, init_level, smoothed_scale, mix)
    if item_seq.dtype not in (torch.int32, torch.int64):
        item_seq = item_seq.long()  # the kernels and F.embedding read int32/int64 ids; narrower ones are widened
    args = (item_seq, item_weight, position_weight, norm_weight, norm_bias, eps, dropout_p, training,
            smoothing_logit, init_level, smoothed_scale, mix, bool(with_residual))
    return backends.dispatch("input_stage", item_weight.device, *args)(*args)
