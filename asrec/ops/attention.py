"""Masked attention (SPEC section 5) and attention with the seasonal gate (SPEC section 4):
the public ops (leaves of the two branches) and their autograd Function on Triton."""

import torch

from ..reference import attention_context_ref
from ..reference.attention import gated_attention_ref
from . import _library
from ._triton_checks import dropout_plan, unsupported_tensors
from .registry import KernelImplementation, implementation, register


class AttentionFn(torch.autograd.Function):
    """Triton flash-style attention, optionally gated, through ``asrec::attention_fwd/bwd``.

    Saves q, k, v, the ungated context and the row log-sum-exp; backward recomputes the
    probabilities block by block.
    """

    @staticmethod
    def forward(ctx, q, k, v, key_bias, gate_weight, gate_bias, dropout_p: float, training: bool):
        q, k, v = (t if t.stride(-1) == 1 else t.contiguous() for t in (q, k, v))
        bias = key_bias.reshape(q.shape[0], k.shape[2]).to(torch.float32).contiguous()
        gate = [t.contiguous() if t is not None else None for t in (gate_weight, gate_bias)]
        dropping, seed = dropout_plan(dropout_p, training)
        out, context, lse = _library.attention_fwd(q, k, v, bias, *gate, seed, dropout_p, dropping)
        ctx.save_for_backward(q, k, v, bias, *[t if t is not None else torch.empty(0) for t in gate], context, lse,
                              seed)
        ctx.gated = gate_weight is not None
        ctx.settings = (dropout_p, dropping)
        return out

    @staticmethod
    def backward(ctx, grad):
        q, k, v, bias, gate_weight, gate_bias, context, lse, seed = ctx.saved_tensors
        if not ctx.gated:
            gate_weight = gate_bias = None
        dq, dk, dv, dw, db = _library.attention_bwd(q, k, v, bias, gate_weight, gate_bias, context, lse,
                                                    grad.contiguous(), seed, *ctx.settings)
        gate_grads = (dw.to(gate_weight.dtype), db.to(gate_bias.dtype)) if ctx.gated else (None, None)
        return dq.to(q.dtype), dk.to(k.dtype), dv.to(v.dtype), None, *gate_grads, None, None


def _check(q, k, v, key_bias):
    if q.dim() != 4 or k.dim() != 4 or v.dim() != 4:
        raise ValueError(f"attention: q, k, v must be (batch, heads, seq_len, head_dim), got {tuple(q.shape)}, "
                         f"{tuple(k.shape)}, {tuple(v.shape)}")
    if k.shape != v.shape or q.shape[:2] != k.shape[:2] or q.shape[3] != k.shape[3]:
        raise ValueError(f"attention: q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)} do not agree")
    if key_bias.numel() != k.shape[0] * k.shape[2]:
        raise ValueError(f"attention: key_bias must be (batch, 1, 1, {k.shape[2]}), got {tuple(key_bias.shape)}")


def attention_unsupported(q, k, v, key_bias, *rest):
    from ..kernels.gated_attention import unsupported_shape

    return unsupported_tensors(q=q, k=k, v=v) or unsupported_shape(q.shape[-1])


def gated_attention_unsupported(q, k, v, key_bias, gate_weight, gate_bias, *rest):
    return (attention_unsupported(q, k, v, key_bias)
            or unsupported_tensors(q=q, gate_weight=gate_weight, gate_bias=gate_bias))


def attention_triton(q, k, v, key_bias, dropout_p=0.0, training=False):
    return AttentionFn.apply(q, k, v, key_bias, None, None, dropout_p, training)


def gated_attention_triton(q, k, v, key_bias, gate_weight, gate_bias, dropout_p=0.0, training=False):
    return AttentionFn.apply(q, k, v, key_bias, gate_weight, gate_bias, dropout_p, training)


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, key_bias: torch.Tensor, dropout_p: float = 0.0,
              training: bool = False) -> torch.Tensor:
    """See ``asrec.reference.attention_context_ref``. q: (batch, heads, q_len, d); k, v: (batch, heads, N, d)."""
    _check(q, k, v, key_bias)
    args = (q, k, v, key_bias, dropout_p, training)
    return implementation("attention", q.device, *args)(*args)


def gated_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, key_bias: torch.Tensor,
                    gate_weight: torch.Tensor, gate_bias: torch.Tensor, dropout_p: float = 0.0,
                    training: bool = False) -> torch.Tensor:
    """See ``asrec.reference.attention.gated_attention_ref``. q, k, v: (batch, heads, N, d)."""
    _check(q, k, v, key_bias)
    if q.shape != k.shape:
        raise ValueError(f"gated_attention: the gate reads v at every query, so q {tuple(q.shape)} must match "
                         f"k {tuple(k.shape)}")
    d = q.shape[-1]
    if gate_weight.shape != (2 * d, 2 * d) or gate_bias.shape != (2 * d,):
        raise ValueError(f"gated_attention: gate_weight must be ({2 * d}, {2 * d}) and gate_bias ({2 * d},), got "
                         f"{tuple(gate_weight.shape)} and {tuple(gate_bias.shape)}")
    args = (q, k, v, key_bias, gate_weight, gate_bias, dropout_p, training)
    return implementation("gated_attention", q.device, *args)(*args)


# not yet run compiled on a GPU: "auto" keeps the reference until they have been
register("attention", attention_context_ref,
         KernelImplementation(attention_triton, attention_unsupported, gpu_verified=False))
register("gated_attention", gated_attention_ref,
         KernelImplementation(gated_attention_triton, gated_attention_unsupported, gpu_verified=False))
