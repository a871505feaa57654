"""The seasonal branch's three position-channel convolutions (SPEC section 4) as one op:
the public op (a leaf of the seasonal branch), its autograd Function on Triton."""

import torch

from ..reference import multiscale_conv_ref
from ..reference.seasonal import CONV_KERNEL_SIZES
from . import _library
from ._triton_checks import unsupported_tensors
from .registry import KernelImplementation, implementation, register


class MultiscaleConvFn(torch.autograd.Function):
    """Triton forward/backward of ``multiscale_conv_ref`` through ``asrec::multiscale_conv_fwd/bwd``.

    Returns the three outputs stacked, (3, B, N, H); saves only x and the weights (the
    backward needs no forward intermediate).
    """

    @staticmethod
    def forward(ctx, x, weight_small, weight_middle, weight_large, bias_small, bias_middle, bias_large):
        x = x.contiguous()
        weights = [w.contiguous() for w in (weight_small, weight_middle, weight_large)]
        biases = [b.contiguous() for b in (bias_small, bias_middle, bias_large)]
        out = _library.multiscale_conv_fwd(x, *weights, *biases)
        ctx.save_for_backward(x, *weights)
        ctx.dtypes = [t.dtype for t in (x, weight_small, weight_middle, weight_large, bias_small, bias_middle,
                                        bias_large)]
        return out

    @staticmethod
    def backward(ctx, grad):
        dx, *dweights, dbiases = _library.multiscale_conv_bwd(*ctx.saved_tensors, grad.contiguous())
        return tuple(g.to(dtype) for g, dtype in zip((dx, *dweights, *dbiases), ctx.dtypes))


def multiscale_conv_unsupported(context, conv_weights, conv_biases):
    from ..kernels.multiscale_conv import unsupported_shape

    named = {"context": context}
    named.update({f"conv_weights[{i}]": w for i, w in enumerate(conv_weights)})
    named.update({f"conv_biases[{i}]": b for i, b in enumerate(conv_biases)})
    return unsupported_tensors(**named) or unsupported_shape(context.shape[1], context.shape[2])


def multiscale_conv_triton(context, conv_weights, conv_biases):
    """Same contract as ``multiscale_conv_ref``: [small, middle, large], views of one (3, B, N, H) output."""
    return list(MultiscaleConvFn.apply(context, *conv_weights, *conv_biases).unbind(0))


def multiscale_conv(context: torch.Tensor, conv_weights: tuple, conv_biases: tuple) -> list:
    """See ``asrec.reference.multiscale_conv_ref``. context: (batch, seq_len, hidden); conv_weights:
    (N, N, 3), (N, N, 5), (N, N, 7); conv_biases: three (N,). -> [small, middle, large], each context's shape."""
    if context.dim() != 3:
        raise ValueError(f"multiscale_conv: context must be (batch, seq_len, hidden), got {tuple(context.shape)}")
    if len(conv_weights) != 3 or len(conv_biases) != 3:
        raise ValueError(f"multiscale_conv: expected three weights and three biases, got {len(conv_weights)} and "
                         f"{len(conv_biases)}")
    seq_len = context.shape[1]
    for i, (size, weight, bias) in enumerate(zip(CONV_KERNEL_SIZES, conv_weights, conv_biases)):
        if weight.shape != (seq_len, seq_len, size):
            raise ValueError(f"multiscale_conv: conv_weights[{i}] must be ({seq_len}, {seq_len}, {size}) (positions "
                             f"are the channels), got {tuple(weight.shape)}")
        if bias.shape != (seq_len,):
            raise ValueError(f"multiscale_conv: conv_biases[{i}] must be ({seq_len},), got {tuple(bias.shape)}")
    args = (context, conv_weights, conv_biases)
    return implementation("multiscale_conv", context.device, *args)(*args)


# not yet run compiled on a GPU: "auto" keeps the reference until it has been
register("multiscale_conv", multiscale_conv_ref,
         KernelImplementation(multiscale_conv_triton, multiscale_conv_unsupported, gpu_verified=False))
