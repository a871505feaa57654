"""The seasonal branch's scale combination, over-smoothing contrast and gelu (SPEC section 4):
its Triton custom ops, the autograd Function and the public op ``contrast_gelu``."""

from typing import Optional

import torch

from .. import backends
from ..reference.contrast_gelu import contrast_gelu_ref
from . import _contract
from ._checks import unsupported_tensors
from ._custom_op import custom_op

# ---- Triton custom ops ----


@custom_op("asrec::contrast_gelu_fwd")
def contrast_gelu_fwd(filtered_small: torch.Tensor, filtered_middle: torch.Tensor, filtered_large: torch.Tensor,
                      conv_small: torch.Tensor, conv_middle: torch.Tensor, conv_large: torch.Tensor,
                      position_scales: torch.Tensor, origin_scale: torch.Tensor, contrast_scale: torch.Tensor,
                      output_rows: Optional[torch.Tensor] = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Six (B, N, H) inputs, position_scales (3, N), output_rows None or (B,) int64 -> ((B, N, H),
    or (B, 1, H): row output_rows[b] of each sequence, in conv_small's dtype; the column sums
    sum_N exp(xn^2) (B, H) float32 that backward takes)."""
    from ..kernels.contrast_gelu import _contrast_gelu_fwd as launch

    return launch([filtered_small, filtered_middle, filtered_large], [conv_small, conv_middle, conv_large],
                  position_scales, origin_scale, contrast_scale, output_rows)


@contrast_gelu_fwd.register_fake
def contrast_gelu_fwd_fake(filtered_small, filtered_middle, filtered_large, conv_small, conv_middle, conv_large,
                           position_scales, origin_scale, contrast_scale, output_rows=None):
    batch, seq_len, hidden = conv_small.shape
    rows = seq_len if output_rows is None else 1
    return (conv_small.new_empty((batch, rows, hidden)),
            conv_small.new_empty((batch, hidden), dtype=torch.float32))


@custom_op("asrec::contrast_gelu_bwd")
def contrast_gelu_bwd(filtered_small: torch.Tensor, filtered_middle: torch.Tensor, filtered_large: torch.Tensor,
                      conv_small: torch.Tensor, conv_middle: torch.Tensor, conv_large: torch.Tensor,
                      position_scales: torch.Tensor, origin_scale: torch.Tensor, contrast_scale: torch.Tensor,
                      column_sum: torch.Tensor, grad: torch.Tensor,
                      output_rows: Optional[torch.Tensor] = None) -> tuple[torch.Tensor, torch.Tensor]:
    """column_sum: the forward's (B, H); grad: (B, N, H), or (B, 1, H) with output_rows (B,) ->
    d(pair) (3, B, N, H) (in the inputs' dtype when all six share one, else float32), and
    (3 N + 2,) float32: d position_scales (3, N), d origin_scale, d contrast_scale (the batch
    sums, one reduction launch for all of them).

    The gradient of filtered[i] equals that of conv_outputs[i] (they enter as a sum): one
    (3, B, N, H) tensor serves both."""
    from ..kernels.contrast_gelu import _contrast_gelu_bwd as launch

    return launch([filtered_small, filtered_middle, filtered_large], [conv_small, conv_middle, conv_large],
                  position_scales, origin_scale, contrast_scale, column_sum, grad, output_rows)


@contrast_gelu_bwd.register_fake
def contrast_gelu_bwd_fake(filtered_small, filtered_middle, filtered_large, conv_small, conv_middle, conv_large,
                           position_scales, origin_scale, contrast_scale, column_sum, grad, output_rows=None):
    from ..kernels.contrast_gelu import branch_grad_dtype

    batch, seq_len, hidden = conv_small.shape
    dtype = branch_grad_dtype([filtered_small, filtered_middle, filtered_large], [conv_small, conv_middle, conv_large])
    return (conv_small.new_empty((3, batch, seq_len, hidden), dtype=dtype),
            conv_small.new_empty((3 * seq_len + 2,), dtype=torch.float32))


# ---- autograd ----

def _rows_contiguous(tensors: list) -> list:
    """The kernel reads rows contiguously with one batch stride per list: copy only if needed."""
    hidden = tensors[0].shape[-1]
    if all(t.stride()[1:] == (hidden, 1) and t.stride(0) == tensors[0].stride(0) for t in tensors):
        return tensors
    return [t.contiguous() for t in tensors]


class ContrastGeluFn(torch.autograd.Function):
    """Triton forward/backward of ``contrast_gelu_ref``. filtered, convs: (3, B, N, H)
    stacked [small, middle, large] (the filter's and the convolutions' own outputs), so each
    gets its gradient as one tensor: the kernel's d(pair), which serves both (they enter as a
    sum), with no per-branch gradients for autograd to stack. output_rows: None (every row:
    (B, N, H)) or (B,) int64 (the kernels store and read back only row output_rows[b]: (B, 1, H),
    no gather forward, no zero-fill + scatter backward); it gets no gradient."""

    @staticmethod
    def forward(ctx, filtered, convs, position_scales, origin_scale, contrast_scale, output_rows=None):
        filtered_rows = _rows_contiguous(list(filtered.unbind(0)))
        conv_rows = _rows_contiguous(list(convs.unbind(0)))
        scalars = [position_scales.reshape(3, -1).contiguous(), origin_scale.contiguous(), contrast_scale.contiguous()]
        rows = [] if output_rows is None else [output_rows.contiguous()]
        # the kernel stores the output in the inputs' dtype, the reference's
        out, column_sum = contrast_gelu_fwd(*filtered_rows, *conv_rows, *scalars, *rows)
        ctx.save_for_backward(*filtered_rows, *conv_rows, *scalars, column_sum, *rows)
        ctx.shapes = (position_scales.shape, origin_scale.shape, contrast_scale.shape)
        ctx.dtypes = [t.dtype for t in (filtered, convs, position_scales, origin_scale, contrast_scale)]
        return out

    @staticmethod
    def backward(ctx, grad):
        saved = ctx.saved_tensors
        # the saved inputs, then grad, then the rows if any (the custom op's argument order)
        dpair, dsums = contrast_gelu_bwd(*saved[:10], grad.contiguous(), *saved[10:])
        scale_shape, origin_shape, contrast_shape = ctx.shapes
        scale_count = dsums.numel() - 2
        grads = [dpair, dpair, dsums[:scale_count].view(scale_shape),
                 dsums[scale_count:scale_count + 1].view(origin_shape), dsums[scale_count + 1:].view(contrast_shape)]
        return (*(g.to(dtype) for g, dtype in zip(grads, ctx.dtypes)), None)


def _stacked(branches) -> torch.Tensor:
    # the seasonal branch hands over (3, B, N, H) tensors as they are; three separate tensors
    # are stacked here (one copy)
    return branches if torch.is_tensor(branches) else torch.stack(list(branches))


def _triton(filtered, conv_outputs, position_scales, origin_scale, contrast_scale, output_rows=None):
    # with output_rows the kernels write and read only those rows (B, 1, H)
    return ContrastGeluFn.apply(_stacked(filtered), _stacked(conv_outputs), position_scales, origin_scale,
                                contrast_scale, output_rows)


def _triton_unsupported(filtered, conv_outputs, position_scales, origin_scale, contrast_scale, output_rows=None):
    from ..kernels.contrast_gelu import unsupported_shape

    named = {f"filtered[{i}]": t for i, t in enumerate(filtered)}
    named.update({f"conv_outputs[{i}]": t for i, t in enumerate(conv_outputs)})
    return (unsupported_tensors(**named, position_scales=position_scales, origin_scale=origin_scale,
                                contrast_scale=contrast_scale)
            or unsupported_shape(conv_outputs[0].shape[1], conv_outputs[0].shape[2]))


backends.register("contrast_gelu", contrast_gelu_ref, triton=backends.FusedKernel(_triton, _triton_unsupported))


# ---- public op ----

def contrast_gelu(filtered, conv_outputs, position_scales: torch.Tensor, origin_scale: torch.Tensor,
                  contrast_scale: torch.Tensor, output_rows=None) -> torch.Tensor:
    """See ``asrec.reference.contrast_gelu_ref``: the filtered and the convolution outputs
    [small, middle, large], each three (batch, seq_len, hidden) tensors or one (3, batch, seq_len,
    hidden) tensor (the seasonal branch's: no copies forward or backward); position_scales
    (3, seq_len, 1); output_rows: None or (batch,) int64 positions in [0, seq_len) -> (batch,
    seq_len, hidden), or (batch, 1, hidden): each sequence's row output_rows[b]. (The positions
    are checked on CPU tensors; on a GPU that would read the device: the caller holds them.)"""
    _contract.check_contrast_gelu(filtered, conv_outputs, position_scales, origin_scale, contrast_scale, output_rows)
    args = (filtered, conv_outputs, position_scales, origin_scale, contrast_scale, output_rows)
    return backends.dispatch("contrast_gelu", conv_outputs[0].device, *args)(*args)
