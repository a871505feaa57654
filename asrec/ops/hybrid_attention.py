"""Both attention branches of a layer (SPEC sections 4 and 5) as one op: the public op (a
leaf of the hybrid layer) and, on Triton, one stacked projection and one kernel launch.

On the ``"triton"`` backend the six projections (seasonal and dynamic q, k, v) are one
GEMM over the concatenated (6H, H) weight, and one launch of the attention kernels runs
both branches (grid axis 2 = branch; the seasonal gate in branch 0's epilogue), reading
q, k, v straight out of the (B, N, 6H) product and writing both contexts heads-merged.
Backward writes d(qkv) in the stacked layout, so the projections' backward is again one
GEMM for the input and one for the weights.
"""

import torch
import torch.nn.functional as F

from ..reference.attention import take_rows
from ..reference.hybrid_attention import hybrid_attention_ref
from ..reference.weights import DynamicWeights, SeasonalWeights
from . import _library
from ._triton_checks import dropout_plan, unsupported_tensors
from .registry import KernelImplementation, implementation, register


class HybridAttentionFn(torch.autograd.Function):
    """Triton forward/backward of both branches' attention through ``asrec::hybrid_attention_fwd/bwd``.

    qkv: (B, N, 6H) -> (2, B, N, H): [gated seasonal context, dynamic context]. Saves qkv,
    the ungated seasonal/dynamic contexts and the row log-sum-exp; backward recomputes the
    probabilities block by block.
    """

    @staticmethod
    def forward(ctx, qkv, key_bias, gate_weight, gate_bias, heads: int, dropout_p: float, training: bool):
        qkv = qkv.contiguous()
        batch, seq_len, _ = qkv.shape
        bias = key_bias.reshape(batch, seq_len).to(torch.float32).contiguous()
        gate_weight, gate_bias = gate_weight.contiguous(), gate_bias.contiguous()
        dropping, seed = dropout_plan(dropout_p, training)
        out, context, lse = _library.hybrid_attention_fwd(qkv, bias, gate_weight, gate_bias, heads, seed, dropout_p,
                                                          dropping)
        ctx.save_for_backward(qkv, bias, gate_weight, gate_bias, context, lse, seed)
        ctx.settings = (heads, dropout_p, dropping)
        return out

    @staticmethod
    def backward(ctx, grad):
        qkv, bias, gate_weight, gate_bias, context, lse, seed = ctx.saved_tensors
        heads, dropout_p, dropping = ctx.settings
        dqkv, dw, db = _library.hybrid_attention_bwd(qkv, bias, gate_weight, gate_bias, context, lse,
                                                     grad.contiguous(), heads, seed, dropout_p, dropping)
        return dqkv.to(qkv.dtype), None, dw.to(gate_weight.dtype), db.to(gate_bias.dtype), None, None, None


def _projections(seasonal: SeasonalWeights, dynamic: DynamicWeights) -> dict:
    """The six q/k/v projections, named, in the stacked weight's order."""
    return {"seasonal.query": seasonal.query, "seasonal.key": seasonal.key, "seasonal.value": seasonal.value,
            "dynamic.query": dynamic.query, "dynamic.key": dynamic.key, "dynamic.value": dynamic.value}


def hybrid_attention_unsupported(x, key_bias, seasonal, dynamic, n_heads, dropout_p=0.0, training=False,
                                 output_rows=None):
    from ..kernels.gated_attention import unsupported_shape

    named = {"x": x, "gate_weight": seasonal.gate.weight, "gate_bias": seasonal.gate.bias}
    for name, linear in _projections(seasonal, dynamic).items():
        named[f"{name}.weight"], named[f"{name}.bias"] = linear.weight, linear.bias
    return unsupported_tensors(**named) or unsupported_shape(x.shape[-1] // n_heads)


def hybrid_attention_triton(x, key_bias, seasonal, dynamic, n_heads, dropout_p=0.0, training=False,
                            output_rows=None):
    """Same contract as ``hybrid_attention_ref``. Both branches attend from every row (one
    launch); with ``output_rows`` the dynamic context's rows are taken afterwards (at the
    model's last layer the dynamic branch computes N - 1 rows per sequence it then drops, in
    exchange for one launch instead of two)."""
    projections = _projections(seasonal, dynamic).values()
    weight = torch.cat([linear.weight for linear in projections])
    bias = torch.cat([linear.bias for linear in projections])
    qkv = F.linear(x, weight, bias)
    out = HybridAttentionFn.apply(qkv, key_bias, *seasonal.gate, n_heads, dropout_p, training)
    return out[0], take_rows(out[1], output_rows)


def hybrid_attention(x: torch.Tensor, key_bias: torch.Tensor, seasonal: SeasonalWeights, dynamic: DynamicWeights,
                     n_heads: int, dropout_p: float = 0.0, training: bool = False, output_rows=None) -> tuple:
    """See ``asrec.reference.hybrid_attention_ref``. x: (batch, seq_len, hidden); key_bias:
    (batch, 1, 1, seq_len). -> (seasonal context (batch, seq_len, hidden), dynamic context
    (batch, seq_len | 1, hidden))."""
    if x.dim() != 3:
        raise ValueError(f"hybrid_attention: x must be (batch, seq_len, hidden), got {tuple(x.shape)}")
    batch, seq_len, hidden = x.shape
    if hidden % n_heads:
        raise ValueError(f"hybrid_attention: hidden {hidden} is not a multiple of n_heads {n_heads}")
    if key_bias.numel() != batch * seq_len:
        raise ValueError(f"hybrid_attention: key_bias must be ({batch}, 1, 1, {seq_len}), got {tuple(key_bias.shape)}")
    for name, linear in _projections(seasonal, dynamic).items():
        if linear.weight.shape != (hidden, hidden) or linear.bias.shape != (hidden,):
            raise ValueError(f"hybrid_attention: {name} must be a ({hidden}, {hidden}) weight and a ({hidden},) "
                             f"bias, got {tuple(linear.weight.shape)} and {tuple(linear.bias.shape)}")
    d = hidden // n_heads
    if seasonal.gate.weight.shape != (2 * d, 2 * d) or seasonal.gate.bias.shape != (2 * d,):
        raise ValueError(f"hybrid_attention: the gate must be a ({2 * d}, {2 * d}) weight and a ({2 * d},) bias, "
                         f"got {tuple(seasonal.gate.weight.shape)} and {tuple(seasonal.gate.bias.shape)}")
    args = (x, key_bias, seasonal, dynamic, n_heads, dropout_p, training, output_rows)
    return implementation("hybrid_attention", x.device, *args)(*args)


# not yet run compiled on a GPU: "auto" keeps the reference until it has been
register("hybrid_attention", hybrid_attention_ref,
         KernelImplementation(hybrid_attention_triton, hybrid_attention_unsupported, gpu_verified=False))
