"""Masked attention (SPEC section 5) and attention with the seasonal gate (SPEC section 4):
the Triton custom ops, the autograd Function and the public ops ``attention`` and
``gated_attention``. (The hybrid layer runs both branches through ``hybrid_attention``,
which launches the same kernels once for both.)"""

import typing

import torch

from .. import backends
from ..reference.gated_attention import attention_context_ref, gated_attention_ref
from . import _contract
from ._checks import unsupported_tensors
from ._custom_op import custom_op
from ._dropout import dropout_plan

# ---- Triton custom ops ----


@custom_op("asrec::attention_fwd")
def attention_fwd(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, key_bias: torch.Tensor,
                  gate_weight: typing.Optional[torch.Tensor], gate_bias: typing.Optional[torch.Tensor],
                  rng: torch.Tensor, dropout_p: float,
                  dropping: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """q: (B, h, Nq, d), k, v: (B, h, Nk, d) -> out (q's dtype), ungated context (B*h, Nq, d) and row
    log-sum-exp (B*h, Nq), float32."""
    from ..kernels.gated_attention import _attention_fwd

    out = torch.empty_like(q, memory_format=torch.contiguous_format)
    context, lse = _attention_fwd(q[None], k[None], v[None], key_bias, gate_weight, gate_bias, rng,
                                  dropout_p, dropping, out[None])
    return out, context, lse


@attention_fwd.register_fake
def attention_fwd_fake(q, k, v, key_bias, gate_weight, gate_bias, rng, dropout_p, dropping):
    batch, heads, q_len, head_dim = q.shape
    return (q.new_empty(q.shape), q.new_empty((batch * heads, q_len, head_dim), dtype=torch.float32),
            q.new_empty((batch * heads, q_len), dtype=torch.float32))


@custom_op("asrec::attention_bwd")
def attention_bwd(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, key_bias: torch.Tensor,
                  gate_weight: typing.Optional[torch.Tensor], gate_bias: typing.Optional[torch.Tensor],
                  context: torch.Tensor, lse: torch.Tensor, grad: torch.Tensor, rng: torch.Tensor, dropout_p: float,
                  dropping: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """-> dq, dk, dv (float32, (B, h, N, d)), dW, db (float32; zero-sized without the gate)."""
    from ..kernels.gated_attention import _attention_bwd

    dq = torch.empty(q.shape, device=q.device, dtype=torch.float32)
    dk = torch.empty(k.shape, device=q.device, dtype=torch.float32)
    dv = torch.empty(k.shape, device=q.device, dtype=torch.float32)
    dw, db = _attention_bwd(q[None], k[None], v[None], key_bias, gate_weight, gate_bias, context, lse, (grad,),
                            dq[None], dk[None], dv[None], rng, dropout_p, dropping)
    if dw is None:
        dw, db = q.new_zeros((0,), dtype=torch.float32), q.new_zeros((0,), dtype=torch.float32)
    return dq, dk, dv, dw, db


@attention_bwd.register_fake
def attention_bwd_fake(q, k, v, key_bias, gate_weight, gate_bias, context, lse, grad, rng, dropout_p, dropping):
    def f32(shape):
        return q.new_empty(shape, dtype=torch.float32)
    gate = gate_weight is not None
    return (f32(q.shape), f32(k.shape), f32(v.shape), f32(gate_weight.shape if gate else (0,)),
            f32(gate_bias.shape if gate else (0,)))


# ---- autograd ----

class AttentionFn(torch.autograd.Function):
    """Triton flash-style attention, optionally gated. Saves q, k, v, the ungated context and
    the row log-sum-exp; backward recomputes the probabilities block by block."""

    @staticmethod
    def forward(ctx, q, k, v, key_bias, gate_weight, gate_bias, dropout_p: float, training: bool):
        q, k, v = (t if t.stride(-1) == 1 else t.contiguous() for t in (q, k, v))
        bias = key_bias.reshape(q.shape[0], k.shape[2]).to(torch.float32).contiguous()
        gate = [t.contiguous() if t is not None else None for t in (gate_weight, gate_bias)]
        dropping, rng = dropout_plan(dropout_p, training, q.device)
        out, context, lse = attention_fwd(q, k, v, bias, *gate, rng, dropout_p, dropping)
        ctx.save_for_backward(q, k, v, bias, *[t if t is not None else torch.empty(0) for t in gate], context, lse,
                              rng)
        ctx.gated = gate_weight is not None
        ctx.dropout_p, ctx.dropping = dropout_p, dropping
        return out

    @staticmethod
    def backward(ctx, grad):
        q, k, v, bias, gate_weight, gate_bias, context, lse, rng = ctx.saved_tensors
        if not ctx.gated:
            gate_weight = gate_bias = None
        dq, dk, dv, dw, db = attention_bwd(q, k, v, bias, gate_weight, gate_bias, context, lse, grad.contiguous(),
                                           rng, ctx.dropout_p, ctx.dropping)
        gate_grads = (dw.to(gate_weight.dtype), db.to(gate_bias.dtype)) if ctx.gated else (None, None)
        return dq.to(q.dtype), dk.to(k.dtype), dv.to(v.dtype), None, *gate_grads, None, None


def _attention_unsupported(q, k, v, key_bias, *rest):
    from ..kernels.gated_attention import unsupported_shape

    return unsupported_tensors(q=q, k=k, v=v) or unsupported_shape(q.shape[-1])


def _gated_attention_unsupported(q, k, v, key_bias, gate_weight, gate_bias, *rest):
    return (_attention_unsupported(q, k, v, key_bias)
            or unsupported_tensors(q=q, gate_weight=gate_weight, gate_bias=gate_bias))


def _attention_triton(q, k, v, key_bias, dropout_p=0.0, training=False):
    return AttentionFn.apply(q, k, v, key_bias, None, None, dropout_p, training)


backends.register("attention", attention_context_ref,
                  triton=backends.FusedKernel(_attention_triton, _attention_unsupported))
backends.register("gated_attention", gated_attention_ref,
                  triton=backends.FusedKernel(AttentionFn.apply, _gated_attention_unsupported))


# ---- public ops ----

def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, key_bias: torch.Tensor, dropout_p: float = 0.0,
              training: bool = False) -> torch.Tensor:
    """See ``asrec.reference.attention_context_ref``. q: (batch, heads, q_len, d); k, v: (batch, heads, N, d);
    key_bias: (batch, 1, 1, N) -> q's shape.

    The standalone entry (``dynamic_branch`` uses it); the model's layers use ``hybrid_attention``
    instead, both branches' attention in one op."""
    _contract.check_attention(q, k, v, key_bias, dropout_p, training)
    args = (q, k, v, key_bias, dropout_p, training)
    return backends.dispatch("attention", q.device, *args)(*args)


def gated_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, key_bias: torch.Tensor,
                    gate_weight: torch.Tensor, gate_bias: torch.Tensor, dropout_p: float = 0.0,
                    training: bool = False) -> torch.Tensor:
    """See ``asrec.reference.gated_attention_ref``. q, k, v: (batch, heads, N, d); key_bias:
    (batch, 1, 1, N); gate_weight: (2d, 2d), gate_bias: (2d,) -> q's shape.

    The standalone entry (``seasonal_branch`` uses it); the model's layers use ``hybrid_attention``
    instead, both branches' attention in one op."""
    _contract.check_gated_attention(q, k, v, key_bias, gate_weight, gate_bias, dropout_p, training)
    args = (q, k, v, key_bias, gate_weight, gate_bias, dropout_p, training)
    return backends.dispatch("gated_attention", q.device, *args)(*args)
