"""The point-wise feed-forward block of each layer (SPEC section 6):
``LN(drop(dense_out(act(dense_in(x)))) + x)``.

Its reference is a composition over the public ops (``feed_forward_composition``: the norm
through ``residual_norm``); on ``"triton"`` the block is one autograd Function
(``FeedForwardFn``): forward ``h = x @ W_in^T`` (mm, no bias), one kernel ``a = act(h + b_in)``,
``dense = a @ W_out^T`` (mm), the residual-norm kernel adding b_out; backward the norm's
backward kernel, the two dense_out GEMMs, one activation-backward kernel that also writes the
b_in gradient's partial sums, ONE ``column_sums`` launch for every bias and norm parameter,
the dW_in GEMM and ``dx = d_residual.addmm_(d_h, W_in)`` (x's two gradients joined in the
GEMM, where autograd adds them in a kernel of its own). Seven launches where the composition's
backward takes nine (addmm's bias ``sum``, autograd's ``add``). ``with_residual``: the output
twice (the second a view), for the next layer's projections and residual path; the norm's
backward kernel adds the two gradients as it reads them.
"""

from typing import Optional

import torch
import torch.nn.functional as F

from .. import backends
from ..reference.activations import ACTIVATIONS
from ..reference.weights import FeedForwardWeights
from . import _contract
from ._checks import unsupported_tensors
from ._custom_op import custom_op
from ._dropout import dropout_plan
from .residual_norm import _out_dtype, project_without_bias, residual_norm

# ---- the reference: a composition of public ops ----


def feed_forward_composition(x: torch.Tensor, weights: FeedForwardWeights, dropout_p: float = 0.0,
                             training: bool = False, with_residual: bool = False):
    """``LN(drop(dense_out(act(dense_in(x)))) + x)`` over the public ops (each on its own backend;
    under ``"reference"`` the reference math). dense_out's bias goes to the norm (added before
    the dropout, as F.linear would add it): the projection is a plain mm and the bias gradient
    one more row of the norm's second-stage sums."""
    inner = ACTIVATIONS[weights.activation](F.linear(x, *weights.dense_in))
    norm, dense_out = weights.norm, weights.dense_out
    out = residual_norm(project_without_bias(inner, dense_out.weight), x, norm.weight, norm.bias, norm.eps, dropout_p,
                        training, x_bias=dense_out.bias)
    return (out, out) if with_residual else out


# ---- Triton custom ops ----


@custom_op("asrec::feed_forward_fwd")
def feed_forward_fwd(x: torch.Tensor, residual: torch.Tensor, w_in: torch.Tensor, b_in: torch.Tensor,
                     w_out: torch.Tensor, b_out: torch.Tensor, norm_weight: torch.Tensor, norm_bias: torch.Tensor,
                     rng: torch.Tensor, eps: float, dropout_p: float, dropping: bool, out_dtype: torch.dtype,
                     activation: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """x: (rows, H) in the products' dtype; residual: (rows, H) (x's values, the block input's
    dtype); w_in: (I, H), w_out: (H, I) in x's dtype; b_in: (I,); b_out, norm_*: (H,) ->
    (out (rows, H) in out_dtype, h = x @ w_in^T (rows, I), a = act(h + b_in) (rows, I),
    dense = a @ w_out^T (rows, H)); the last three for backward."""
    from ..kernels.feed_forward import _activation_fwd
    from ..kernels.residual_norm import _residual_norm_fwd

    h = torch.mm(x, w_in.t())
    a = _activation_fwd(h, b_in, activation)
    dense = torch.mm(a, w_out.t())
    out = _residual_norm_fwd(dense, residual, norm_weight, norm_bias, eps, rng, dropout_p, dropping, out_dtype,
                             x_bias=b_out)
    return out, h, a, dense


@feed_forward_fwd.register_fake
def feed_forward_fwd_fake(x, residual, w_in, b_in, w_out, b_out, norm_weight, norm_bias, rng, eps, dropout_p, dropping,
                          out_dtype, activation):
    rows, inner = x.shape[0], w_in.shape[0]
    return (x.new_empty(x.shape, dtype=out_dtype), x.new_empty((rows, inner)), x.new_empty((rows, inner)),
            x.new_empty(x.shape))


@custom_op("asrec::feed_forward_bwd")
def feed_forward_bwd(x: torch.Tensor, residual: torch.Tensor, w_in: torch.Tensor, b_in: torch.Tensor,
                     w_out: torch.Tensor, b_out: torch.Tensor, norm_weight: torch.Tensor, norm_bias: torch.Tensor,
                     h: torch.Tensor, a: torch.Tensor, dense: torch.Tensor, grad: torch.Tensor, rng: torch.Tensor,
                     eps: float, dropout_p: float, dropping: bool, activation: str,
                     grad2: Optional[torch.Tensor] = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor,
                                                                    torch.Tensor]:
    """``feed_forward_fwd``'s inputs and saved (h, a, dense), grad: (rows, H) -> (dx (residual's
    dtype; both of x's gradients), dW_in (I, H), dW_out (H, I) (x's dtype), float32 sums
    (3 + ceil(I / H), H): the norm weight's and bias' gradients, b_out's, then b_in's in chunks
    of H (the flattened first I entries)). grad2: the output's second handle's gradient (grad's
    layout), added to grad in the norm's backward kernel."""
    import triton

    from ..kernels._common import column_sums
    from ..kernels.feed_forward import _activation_bwd, bias_chunks
    from ..kernels.residual_norm import _residual_norm_bwd, backward_blocks, partial_groups

    rows, hidden = x.shape
    inner = w_in.shape[0]
    block_r = backward_blocks(hidden, False)["BLOCK_R"]
    norm_groups = partial_groups(False, True, False)  # norm weight, norm bias, b_out
    # one partial-sum buffer for both kernels (the same row blocks), one second-stage launch
    parts = torch.empty((norm_groups + bias_chunks(inner, hidden), triton.cdiv(rows, block_r), hidden),
                        device=x.device, dtype=torch.float32)
    ddense, dresidual, _, parts = _residual_norm_bwd(dense, residual, norm_weight, norm_bias, grad, eps, rng,
                                                     dropout_p, dropping, x_bias=b_out, parts=parts, grad2=grad2)
    dw_out = torch.mm(ddense.t(), a)
    dh = _activation_bwd(h, b_in, torch.mm(ddense, w_out), activation, parts, norm_groups, block_r)
    sums = column_sums(parts)
    dw_in = torch.mm(dh.t(), x)
    if dresidual.dtype == dh.dtype:
        # x feeds dense_in and the residual: the GEMM adds its product to the residual's gradient
        # (in place, beta = 1: out of place, ATen's CUDA addmm first copies a 2-D self into the
        # result, a kernel of its own; dresidual is this call's own buffer)
        dx = dresidual.addmm_(dh, w_in)
    else:  # autocast: low-precision products, a float32 residual stream
        dx = dresidual + torch.mm(dh, w_in)
    return dx, dw_in, dw_out, sums


@feed_forward_bwd.register_fake
def feed_forward_bwd_fake(x, residual, w_in, b_in, w_out, b_out, norm_weight, norm_bias, h, a, dense, grad, rng, eps,
                          dropout_p, dropping, activation, grad2=None):
    from ..kernels.feed_forward import bias_chunks
    from ..kernels.residual_norm import partial_groups

    rows, hidden = x.shape
    inner = w_in.shape[0]
    groups = partial_groups(False, True, False) + bias_chunks(inner, hidden)  # as feed_forward_bwd's buffer
    return (residual.new_empty(residual.shape, dtype=torch.promote_types(residual.dtype, x.dtype)),
            x.new_empty((inner, hidden)), x.new_empty((hidden, inner)),
            x.new_empty((groups, hidden), dtype=torch.float32))


# ---- autograd ----


def _product_dtype(x, w_in, w_out):
    """The GEMMs' dtype: autocast's where it is on (as F.linear under autocast), else x's and the
    weights' (one dtype: the op's contract holds it)."""
    if torch.is_autocast_enabled(x.device.type):
        return torch.get_autocast_dtype(x.device.type)
    return x.dtype


class FeedForwardFn(torch.autograd.Function):
    """Triton forward/backward of ``feed_forward_composition`` (see the module docstring); saves
    x, the weights, h = x W_in^T, a = act(h + b_in), the dense_out product and the dropout RNG
    state (the composition's autograd saves the same)."""

    @staticmethod
    def forward(ctx, x, w_in, b_in, w_out, b_out, norm_weight, norm_bias, eps: float, dropout_p: float,
                training: bool, activation: str, with_residual: bool = False):
        shape = x.shape
        residual = x.reshape(-1, shape[-1]).contiguous()
        dtype = _product_dtype(x, w_in, w_out)
        products = (residual.to(dtype), w_in.to(dtype).contiguous(), w_out.to(dtype).contiguous())
        params = tuple(t.contiguous() for t in (b_in, b_out, norm_weight, norm_bias))
        dropping, rng = dropout_plan(dropout_p, training, x.device)
        with torch.autocast(x.device.type, enabled=False):  # the products are cast already
            out, h, a, dense = feed_forward_fwd(products[0], residual, products[1], params[0], products[2],
                                                *params[1:], rng, eps, dropout_p, dropping,
                                                _out_dtype(x, x, b_out), activation)
        ctx.save_for_backward(*products, residual, *params, h, a, dense, rng)
        ctx.eps, ctx.dropout_p, ctx.dropping, ctx.activation = eps, dropout_p, dropping, activation
        ctx.dtypes = (x.dtype, w_in.dtype, w_out.dtype)
        out = out.view(shape)
        return (out, out.view_as(out)) if with_residual else out

    @staticmethod
    def backward(ctx, grad, grad2=None):
        x_product, w_in, w_out, residual, b_in, b_out, norm_weight, norm_bias, h, a, dense, rng = ctx.saved_tensors
        x_dtype, w_in_dtype, w_out_dtype = ctx.dtypes
        if grad is None:  # only the second handle was used
            grad, grad2 = grad2, None
        shape = grad.shape
        grad2 = None if grad2 is None else grad2.reshape(residual.shape).contiguous()
        dx, dw_in, dw_out, sums = feed_forward_bwd(
            x_product, residual, w_in, b_in, w_out, b_out, norm_weight, norm_bias, h, a, dense,
            grad.reshape(residual.shape).contiguous(), rng, ctx.eps, ctx.dropout_p, ctx.dropping, ctx.activation, grad2)
        inner = w_in.shape[0]
        return (dx.view(shape).to(x_dtype), dw_in.to(w_in_dtype), sums[3:].reshape(-1)[:inner].to(b_in.dtype),
                dw_out.to(w_out_dtype), sums[2].to(b_out.dtype), sums[0].to(norm_weight.dtype),
                sums[1].to(norm_bias.dtype), None, None, None, None, None)


def _triton(x, weights, dropout_p=0.0, training=False, with_residual=False):
    (w_in, b_in), (w_out, b_out), norm, activation = weights
    return FeedForwardFn.apply(x, w_in, b_in, w_out, b_out, norm.weight, norm.bias, norm.eps, dropout_p, training,
                               activation, with_residual)


def _triton_unsupported(x, weights, dropout_p=0.0, training=False, with_residual=False):
    from ..kernels.residual_norm import unsupported_shape

    (w_in, b_in), (w_out, b_out), norm, _ = weights
    return (unsupported_tensors(x=x, dense_in_weight=w_in, dense_in_bias=b_in, dense_out_weight=w_out,
                                dense_out_bias=b_out, norm_weight=norm.weight, norm_bias=norm.bias)
            or unsupported_shape(x.shape[-1]))


backends.register("feed_forward", feed_forward_composition,
                  triton=backends.FusedKernel(_triton, _triton_unsupported))


# ---- public op ----


def feed_forward(x: torch.Tensor, weights: FeedForwardWeights, dropout_p: float = 0.0,
                 training: bool = False) -> torch.Tensor:
    """``LN(drop(p)(dense_out(act(dense_in(x)))) + x)``. x: (..., hidden) -> x's shape;
    weights.dense_in: (inner, hidden) and (inner,), dense_out: (hidden, inner) and (hidden,),
    norm: (hidden,) twice; ``weights.activation`` one of ``asrec.reference.ACTIVATIONS``."""
    return _feed_forward(x, weights, dropout_p, training, with_residual=False)


def _feed_forward(x: torch.Tensor, weights: FeedForwardWeights, dropout_p: float, training: bool,
                  with_residual: bool):
    """``feed_forward`` for the hybrid layer (the model's path). ``with_residual=True`` returns
    (out, residual), the same values twice for a consumer that feeds them to two ops (the next
    layer's projections and its residual path): on "triton" the second is a view output of the
    op, and backward adds both gradients in its norm kernel."""
    _contract.check_feed_forward(x, weights, dropout_p, training, ACTIVATIONS)
    args = (x, weights, dropout_p, training, bool(with_residual))
    return backends.dispatch("feed_forward", x.device, *args)(*args)
