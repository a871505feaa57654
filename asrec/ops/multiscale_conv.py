"""The seasonal branch's three position-channel convolutions (SPEC section 4) as one op: its
Triton custom ops, the autograd Function and the public op ``multiscale_conv``."""

import torch

from .. import backends
from ..reference.multiscale_conv import CONV_KERNEL_SIZES, multiscale_conv_ref
from . import _contract
from ._checks import unsupported_tensors
from ._custom_op import custom_op

# ---- Triton custom ops ----


@custom_op("asrec::multiscale_conv_fwd")
def multiscale_conv_fwd(x: torch.Tensor, weight_small: torch.Tensor, weight_middle: torch.Tensor,
                        weight_large: torch.Tensor, bias_small: torch.Tensor, bias_middle: torch.Tensor,
                        bias_large: torch.Tensor) -> torch.Tensor:
    """x: (B, N, H) -> (3, B, N, H) in x's dtype: the small, middle and large convolutions."""
    from ..kernels.multiscale_conv import _multiscale_conv_fwd as launch

    return launch(x, (weight_small, weight_middle, weight_large), (bias_small, bias_middle, bias_large))


@multiscale_conv_fwd.register_fake
def multiscale_conv_fwd_fake(x, weight_small, weight_middle, weight_large, bias_small, bias_middle, bias_large):
    return x.new_empty((3, *x.shape))


@custom_op("asrec::multiscale_conv_bwd")
def multiscale_conv_bwd(x: torch.Tensor, weight_small: torch.Tensor, weight_middle: torch.Tensor,
                        weight_large: torch.Tensor,
                        grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor,
                                                     torch.Tensor]:
    """-> dx (B, N, H), d weight_small, d weight_middle, d weight_large, d biases (3, N), all float32."""
    from ..kernels.multiscale_conv import _multiscale_conv_bwd as launch

    return launch(x, (weight_small, weight_middle, weight_large), grad)


@multiscale_conv_bwd.register_fake
def multiscale_conv_bwd_fake(x, weight_small, weight_middle, weight_large, grad):
    def f32(t):
        return t.new_empty(t.shape, dtype=torch.float32)
    return (f32(x), f32(weight_small), f32(weight_middle), f32(weight_large),
            x.new_empty((3, x.shape[1]), dtype=torch.float32))


# ---- autograd ----

class MultiscaleConvFn(torch.autograd.Function):
    """Triton forward/backward of ``multiscale_conv_ref``: the three outputs stacked, (3, B, N, H);
    saves only x and the weights (the backward needs no forward intermediate)."""

    @staticmethod
    def forward(ctx, x, weight_small, weight_middle, weight_large, bias_small, bias_middle, bias_large):
        x = x.contiguous()
        weights = [w.contiguous() for w in (weight_small, weight_middle, weight_large)]
        biases = [b.contiguous() for b in (bias_small, bias_middle, bias_large)]
        out = multiscale_conv_fwd(x, *weights, *biases)
        ctx.save_for_backward(x, *weights)
        ctx.dtypes = [t.dtype for t in (x, weight_small, weight_middle, weight_large, bias_small, bias_middle,
                                        bias_large)]
        return out

    @staticmethod
    def backward(ctx, grad):
        dx, *dweights, dbiases = multiscale_conv_bwd(*ctx.saved_tensors, grad.contiguous())
        return tuple(g.to(dtype) for g, dtype in zip((dx, *dweights, *dbiases), ctx.dtypes))


def _triton(context, conv_weights, conv_biases, stacked=False):
    out = MultiscaleConvFn.apply(context, *conv_weights, *conv_biases)  # (3, B, N, H)
    return out if stacked else list(out.unbind(0))


def _reference(context, conv_weights, conv_biases, stacked=False):
    outputs = multiscale_conv_ref(context, conv_weights, conv_biases)
    return torch.stack(outputs) if stacked else outputs


def _triton_unsupported(context, conv_weights, conv_biases, stacked=False):
    from ..kernels.multiscale_conv import unsupported_shape

    named = {"context": context}
    named.update({f"conv_weights[{i}]": w for i, w in enumerate(conv_weights)})
    named.update({f"conv_biases[{i}]": b for i, b in enumerate(conv_biases)})
    return unsupported_tensors(**named) or unsupported_shape(context.shape[1], context.shape[2])


backends.register("multiscale_conv", _reference, triton=backends.FusedKernel(_triton, _triton_unsupported))


# ---- public op ----

def multiscale_conv(context: torch.Tensor, conv_weights: tuple, conv_biases: tuple, stacked: bool = False):
    """See ``asrec.reference.multiscale_conv_ref``. context: (batch, seq_len, hidden); conv_weights:
    (N, N, 3), (N, N, 5), (N, N, 7); conv_biases: three (N,). -> [small, middle, large], each context's
    shape, or with ``stacked`` one (3, batch, seq_len, hidden) tensor (the Triton kernel's own output:
    ``frequency_filter_groups`` takes it as it is)."""
    _contract.check_multiscale_conv(context, conv_weights, conv_biases, stacked, CONV_KERNEL_SIZES)
    args = (context, conv_weights, conv_biases, bool(stacked))
    return backends.dispatch("multiscale_conv", context.device, *args)(*args)
