"""The seasonal branch's scale combination, over-smoothing contrast and gelu (SPEC section 4):
the public op (a leaf of the seasonal branch), its autograd Function on Triton."""

import torch

from ..reference import contrast_gelu_ref
from ..reference.attention import take_rows
from . import _library
from ._triton_checks import unsupported_tensors
from .registry import KernelImplementation, implementation, register


def _rows_contiguous(tensors: list) -> list:
    """The kernel reads rows contiguously with one batch stride per list: copy only if needed."""
    hidden = tensors[0].shape[-1]
    if all(t.stride()[1:] == (hidden, 1) and t.stride(0) == tensors[0].stride(0) for t in tensors):
        return tensors
    return [t.contiguous() for t in tensors]


class ContrastGeluFn(torch.autograd.Function):
    """Triton forward/backward of ``contrast_gelu_ref`` (all rows) through ``asrec::contrast_gelu_fwd/bwd``."""

    @staticmethod
    def forward(ctx, filtered_small, filtered_middle, filtered_large, conv_small, conv_middle, conv_large,
                position_scales, origin_scale, contrast_scale):
        filtered = _rows_contiguous([filtered_small, filtered_middle, filtered_large])
        convs = _rows_contiguous([conv_small, conv_middle, conv_large])
        scalars = [position_scales.reshape(3, -1).contiguous(), origin_scale.contiguous(), contrast_scale.contiguous()]
        out = _library.contrast_gelu_fwd(*filtered, *convs, *scalars)
        ctx.save_for_backward(*filtered, *convs, *scalars)
        ctx.shapes = (position_scales.shape, origin_scale.shape, contrast_scale.shape)
        ctx.dtypes = [t.dtype for t in (filtered_small, filtered_middle, filtered_large, conv_small, conv_middle,
                                        conv_large, position_scales, origin_scale, contrast_scale)]
        return out

    @staticmethod
    def backward(ctx, grad):
        saved = ctx.saved_tensors
        dpair, dscales, dorigin, dcontrast = _library.contrast_gelu_bwd(*saved, grad.contiguous())
        scale_shape, origin_shape, contrast_shape = ctx.shapes
        grads = [dpair[0], dpair[1], dpair[2], dpair[0], dpair[1], dpair[2], dscales.view(scale_shape),
                 dorigin.view(origin_shape), dcontrast.view(contrast_shape)]
        return tuple(g.to(dtype) for g, dtype in zip(grads, ctx.dtypes))


def contrast_gelu_unsupported(filtered, scales, position_scales, origin_scale, contrast_scale, output_rows=None):
    from ..kernels.contrast_gelu import unsupported_shape

    named = {f"filtered[{i}]": t for i, t in enumerate(filtered)}
    named.update({f"scales[{i}]": t for i, t in enumerate(scales)})
    return (unsupported_tensors(**named, position_scales=position_scales, origin_scale=origin_scale,
                                contrast_scale=contrast_scale)
            or unsupported_shape(scales[0].shape[1], scales[0].shape[2]))


def contrast_gelu_triton(filtered, scales, position_scales, origin_scale, contrast_scale, output_rows=None):
    """Same contract as ``contrast_gelu_ref``; the kernel activates every row, then the rows are taken."""
    out = ContrastGeluFn.apply(*filtered, *scales, position_scales, origin_scale, contrast_scale)
    return take_rows(out, output_rows)


def contrast_gelu(filtered: list, scales: list, position_scales: torch.Tensor, origin_scale: torch.Tensor,
                  contrast_scale: torch.Tensor, output_rows=None) -> torch.Tensor:
    """See ``asrec.reference.contrast_gelu_ref``: three filtered and three conv outputs
    (batch, seq_len, hidden), position_scales (3, seq_len, 1) -> (batch, seq_len | 1, hidden)."""
    if len(filtered) != 3 or len(scales) != 3:
        raise ValueError(f"contrast_gelu: expected three filtered and three conv outputs, got {len(filtered)} and "
                         f"{len(scales)}")
    shape = scales[0].shape
    for name, tensor in [(f"filtered[{i}]", t) for i, t in enumerate(filtered)] + \
                        [(f"scales[{i}]", t) for i, t in enumerate(scales)]:
        if tensor.shape != shape:
            raise ValueError(f"contrast_gelu: {name} has shape {tuple(tensor.shape)}, expected {tuple(shape)}")
    if position_scales.numel() != 3 * shape[1]:
        raise ValueError(f"contrast_gelu: position_scales must be (3, {shape[1]}, 1), "
                         f"got {tuple(position_scales.shape)}")
    args = (filtered, scales, position_scales, origin_scale, contrast_scale, output_rows)
    return implementation("contrast_gelu", scales[0].device, *args)(*args)


# not yet run compiled on a GPU: "auto" keeps the reference until it has been
register("contrast_gelu", contrast_gelu_ref,
         KernelImplementation(contrast_gelu_triton, contrast_gelu_unsupported, gpu_verified=False))
