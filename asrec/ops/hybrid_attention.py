"""Both attention branches of a layer (SPEC sections 4 and 5) as one op: the Triton custom
ops, the autograd Function and the public op ``hybrid_attention`` (a leaf of the layer).

On ``"triton"`` the six projections (seasonal and dynamic q, k, v) are one GEMM over the
stacked (6H, H) weight (the hybrid layer's parameter, which both bundles carry as
``stacked_projections``; separately given projections are concatenated per call), and one
launch of the attention kernels runs both branches (grid axis 2 = branch; the seasonal
gate in branch 0's epilogue), reading q, k, v straight out of the (B, N, 6H) product and
writing both contexts heads-merged. Backward writes d(qkv) in the stacked layout, so the
projections' backward is again one GEMM for the input and one for the weights (the
stacked parameter's gradient as it is).
"""

import torch
import torch.nn.functional as F

from .. import backends
from ..reference.hybrid_attention import hybrid_attention_ref
from ..reference.take_rows import take_rows_ref
from ..reference.weights import DynamicWeights, SeasonalWeights
from . import _contract
from ._checks import unsupported_tensors
from ._custom_op import custom_op
from ._dropout import dropout_plan

# ---- Triton custom ops ----


@custom_op("asrec::hybrid_attention_fwd")
def hybrid_attention_fwd(qkv: torch.Tensor, key_bias: torch.Tensor, gate_weight: torch.Tensor,
                         gate_bias: torch.Tensor, heads: int, rng: torch.Tensor, dropout_p: float,
                         dropping: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """qkv (B, N, 6H) ([seasonal | dynamic] x [q | k | v]) -> out (2, B, N, H) in qkv's dtype (the
    gated seasonal context, the dynamic context, heads merged), ungated context (2*B*h, N, d)
    and row log-sum-exp (2*B*h, N), float32."""
    from ..kernels.gated_attention import _attention_fwd, heads_view, stacked_projection_views

    batch, seq_len, width = qkv.shape
    out = qkv.new_empty((2, batch, seq_len, width // 6))
    context, lse = _attention_fwd(*stacked_projection_views(qkv, heads), key_bias, gate_weight, gate_bias,
                                  rng, dropout_p, dropping, heads_view(out, heads))
    return out, context, lse


@hybrid_attention_fwd.register_fake
def hybrid_attention_fwd_fake(qkv, key_bias, gate_weight, gate_bias, heads, rng, dropout_p, dropping):
    batch, seq_len, width = qkv.shape
    hidden = width // 6
    return (qkv.new_empty((2, batch, seq_len, hidden)),
            qkv.new_empty((2 * batch * heads, seq_len, hidden // heads), dtype=torch.float32),
            qkv.new_empty((2 * batch * heads, seq_len), dtype=torch.float32))


@custom_op("asrec::hybrid_attention_bwd")
def hybrid_attention_bwd(qkv: torch.Tensor, key_bias: torch.Tensor, gate_weight: torch.Tensor,
                         gate_bias: torch.Tensor, context: torch.Tensor, lse: torch.Tensor,
                         grad_seasonal: torch.Tensor, grad_dynamic: torch.Tensor, heads: int, rng: torch.Tensor,
                         dropout_p: float, dropping: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """grad_seasonal, grad_dynamic: each branch's output gradient, (B, N, H), contiguous (read where
    they are, no stacking) -> d qkv (B, N, 6H) in the stacked layout, dW (2d, 2d), db (2d,); float32."""
    from ..kernels.gated_attention import _attention_bwd, heads_view, stacked_projection_views

    dqkv = torch.empty(qkv.shape, device=qkv.device, dtype=torch.float32)
    grads = (heads_view(grad_seasonal, heads), heads_view(grad_dynamic, heads))
    dw, db = _attention_bwd(*stacked_projection_views(qkv, heads), key_bias, gate_weight, gate_bias, context, lse,
                            grads, *stacked_projection_views(dqkv, heads), rng, dropout_p, dropping)
    return dqkv, dw, db


@hybrid_attention_bwd.register_fake
def hybrid_attention_bwd_fake(qkv, key_bias, gate_weight, gate_bias, context, lse, grad_seasonal, grad_dynamic, heads,
                              rng, dropout_p, dropping):
    return (qkv.new_empty(qkv.shape, dtype=torch.float32),
            gate_weight.new_empty(gate_weight.shape, dtype=torch.float32),
            gate_bias.new_empty(gate_bias.shape, dtype=torch.float32))


# ---- autograd ----

def _branch_shape(qkv: torch.Tensor) -> tuple:
    batch, seq_len, width = qkv.shape
    return batch, seq_len, width // 6


class HybridAttentionFn(torch.autograd.Function):
    """Triton forward/backward of both branches' attention: qkv (B, N, 6H) -> (gated seasonal
    context, dynamic context), each (B, N, H): two outputs (views of one buffer the kernel
    writes), so backward takes each branch's gradient as it comes instead of autograd
    scattering both into zero-filled (2, B, N, H) tensors and adding them. Saves qkv, the
    ungated contexts and the row log-sum-exp; backward recomputes the probabilities block by
    block."""

    @staticmethod
    def forward(ctx, qkv, key_bias, gate_weight, gate_bias, heads: int, dropout_p: float, training: bool):
        qkv = qkv.contiguous()
        batch, seq_len, _ = qkv.shape
        bias = key_bias.reshape(batch, seq_len).to(torch.float32).contiguous()
        gate_weight, gate_bias = gate_weight.contiguous(), gate_bias.contiguous()
        dropping, rng = dropout_plan(dropout_p, training, qkv.device)
        out, context, lse = hybrid_attention_fwd(qkv, bias, gate_weight, gate_bias, heads, rng, dropout_p, dropping)
        ctx.save_for_backward(qkv, bias, gate_weight, gate_bias, context, lse, rng)
        ctx.heads, ctx.dropout_p, ctx.dropping = heads, dropout_p, dropping
        return out[0], out[1]

    @staticmethod
    def backward(ctx, grad_seasonal, grad_dynamic):
        qkv, bias, gate_weight, gate_bias, context, lse, rng = ctx.saved_tensors
        # the kernels read each branch's gradient where it is (one pointer per branch, one set of
        # strides: both contiguous (B, N, H)); a branch without a gradient contributes zeros
        shape = _branch_shape(qkv)
        grads = [g.to(qkv.dtype, memory_format=torch.contiguous_format) if g is not None else qkv.new_zeros(shape)
                 for g in (grad_seasonal, grad_dynamic)]
        dqkv, dw, db = hybrid_attention_bwd(qkv, bias, gate_weight, gate_bias, context, lse, *grads, ctx.heads,
                                            rng, ctx.dropout_p, ctx.dropping)
        return dqkv.to(qkv.dtype), None, dw.to(gate_weight.dtype), db.to(gate_bias.dtype), None, None, None


def _projections(seasonal: SeasonalWeights, dynamic: DynamicWeights) -> dict:
    """The six q/k/v projections, named, in the stacked weight's order."""
    return {"seasonal.query": seasonal.query, "seasonal.key": seasonal.key, "seasonal.value": seasonal.value,
            "dynamic.query": dynamic.query, "dynamic.key": dynamic.key, "dynamic.value": dynamic.value}


def _stacked_projections(seasonal: SeasonalWeights, dynamic: DynamicWeights):
    """The (6H, H) stack both bundles' q/k/v are rows of, if they share one (the hybrid layer's)."""
    stacked, other = seasonal.stacked_projections, dynamic.stacked_projections
    if stacked is None or other is None or stacked.weight is not other.weight or stacked.bias is not other.bias:
        return None
    return stacked


def _triton(x, key_bias, seasonal, dynamic, n_heads, dropout_p=0.0, training=False, output_rows=None):
    # Both branches attend from every row (one launch); with output_rows the dynamic
    # context's rows are taken afterwards: at the model's last layer the dynamic branch
    # computes N - 1 rows per sequence it then drops, in exchange for one launch instead of two.
    stacked = _stacked_projections(seasonal, dynamic)
    if stacked is None:  # separate tensors (the modules hand over their stacked parameter)
        projections = _projections(seasonal, dynamic).values()
        stacked = (torch.cat([linear.weight for linear in projections]),
                   torch.cat([linear.bias for linear in projections]))
    qkv = F.linear(x, *stacked)
    seasonal_context, dynamic_context = HybridAttentionFn.apply(qkv, key_bias, *seasonal.gate, n_heads, dropout_p,
                                                                training)
    return seasonal_context, take_rows_ref(output_rows, dynamic_context)[0]


def _triton_unsupported(x, key_bias, seasonal, dynamic, n_heads, *rest):
    from ..kernels.gated_attention import unsupported_shape

    named = {"x": x, "gate_weight": seasonal.gate.weight, "gate_bias": seasonal.gate.bias}
    for name, linear in _projections(seasonal, dynamic).items():
        named[f"{name}.weight"], named[f"{name}.bias"] = linear.weight, linear.bias
    stacked = _stacked_projections(seasonal, dynamic)
    if stacked is not None:
        named["stacked_projections.weight"], named["stacked_projections.bias"] = stacked
    return unsupported_tensors(**named) or unsupported_shape(x.shape[-1] // n_heads)


backends.register("hybrid_attention", hybrid_attention_ref, triton=backends.FusedKernel(_triton, _triton_unsupported))


# ---- public op ----

def hybrid_attention(x: torch.Tensor, key_bias: torch.Tensor, seasonal: SeasonalWeights, dynamic: DynamicWeights,
                     n_heads: int, dropout_p: float = 0.0, training: bool = False, output_rows=None) -> tuple:
    """See ``asrec.reference.hybrid_attention_ref``. x: (batch, seq_len, hidden); key_bias:
    (batch, 1, 1, seq_len). -> (seasonal context (batch, seq_len, hidden), dynamic context
    (batch, seq_len | 1, hidden)).

    When both bundles carry the same ``stacked_projections`` (6H, H), (6H,), their query, key
    and value must be its rows [seasonal q, k, v | dynamic q, k, v] (views, as the hybrid
    layer's ``weights()`` builds them): the fused path projects with the stack."""
    _contract.check_hybrid_attention(x, key_bias, seasonal, dynamic, n_heads, dropout_p, training, output_rows,
                                     _projections(seasonal, dynamic), _stacked_projections(seasonal, dynamic))
    args = (x, key_bias, seasonal, dynamic, n_heads, dropout_p, training, output_rows)
    return backends.dispatch("hybrid_attention", x.device, *args)(*args)
