"""The Triton launchers registered as ``torch.library`` custom ops (namespace ``asrec``).

Each launcher of ``asrec.kernels`` becomes an opaque op with a fake (shape-only)
implementation (eager calls skip the dispatcher, see ``_Op``), so ``torch.compile``
traces the autograd Functions of ``asrec.ops`` into one graph without breaking at a
kernel launch, and ``torch.library.opcheck`` can
test the registrations. The ops take tensors and scalars only: the dropout seed travels
as a one-element int64 CPU tensor drawn by the caller (a traced random op under
``torch.compile``, never a constant baked into the graph).

Registering needs no Triton: each implementation imports its kernels when first called.
"""

import typing

import torch

from ..reference.frequency_filter import frequency_keep_mask
from ..reference.fsm import smoothing_norm


class _Op:
    """A custom op that eager code calls directly.

    Under ``torch.compile`` the registered op is called (an opaque node with its fake
    implementation); in eager mode the implementation runs without the dispatcher's
    Python custom-op path, which costs tens of microseconds a call (measured ~50 us on the
    development CPU) and is pure host overhead here. Both run the same function.
    """

    def __init__(self, name: str, implementation):
        self.implementation = implementation
        self.op = torch.library.custom_op(name, implementation, mutates_args=())

    def register_fake(self, fake):
        self.op.register_fake(fake)
        return fake

    def __call__(self, *args):
        if torch.compiler.is_compiling():
            return self.op(*args)
        return self.implementation(*args)


def _custom_op(name: str):
    return lambda implementation: _Op(name, implementation)


def _logit_grad(dalpha_parts: torch.Tensor, smoothing_logit: torch.Tensor) -> torch.Tensor:
    """The smoothing logit's gradient from partial sums of d/d alpha (alpha = sigmoid(logit)), float32."""
    alpha = torch.sigmoid(smoothing_logit.float())
    return (dalpha_parts.sum() * alpha * (1.0 - alpha)).reshape(smoothing_logit.shape)


def input_stage_grads(dembedded: torch.Tensor, parts: torch.Tensor, smoothing_logit: torch.Tensor) -> tuple:
    """The input stage's backward results from its kernel's outputs (Triton and CUDA alike):
    dembedded (B, N, H) and per-sequence parts (5, B, H) of d alpha, d init_level, d smoothed_scale,
    d LN weight, d LN bias -> (dembedded, d logit (1,), the four sums (4, H), d position rows (N, H))."""
    return dembedded, _logit_grad(parts[0], smoothing_logit), parts[1:].sum(1), dembedded.sum(0)


def filter_keep(energy: torch.Tensor, batch: int, groups: int, threshold: torch.Tensor, scope: str,
                seq_len: int) -> torch.Tensor:
    """(B*G, K) kernel energies -> (B, G, K) float32 0/1 keep-mask: the reference's mask code."""
    return frequency_keep_mask(energy.view(batch, groups, -1), seq_len, threshold, scope).to(torch.float32)


@_custom_op("asrec::fourier_smoothing_fwd")
def fourier_smoothing_fwd(x: torch.Tensor, smoothing_logit: torch.Tensor, init_level: torch.Tensor,
                          smoothed_scale: torch.Tensor, mix: float) -> torch.Tensor:
    from ..kernels.fourier_smoothing import _fourier_smoothing_fwd

    return _fourier_smoothing_fwd(x, smoothing_logit, init_level, smoothed_scale, mix, smoothing_norm(x.shape[1]))


@fourier_smoothing_fwd.register_fake
def _(x, smoothing_logit, init_level, smoothed_scale, mix):
    return x.new_empty(x.shape, dtype=torch.float32)


@_custom_op("asrec::fourier_smoothing_bwd")
def fourier_smoothing_bwd(x: torch.Tensor, grad: torch.Tensor, smoothing_logit: torch.Tensor,
                          init_level: torch.Tensor, smoothed_scale: torch.Tensor,
                          mix: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """-> dx (float32), and float32 gradients of smoothing_logit, init_level, smoothed_scale."""
    from ..kernels.fourier_smoothing import _fourier_smoothing_bwd

    dx, dalpha, dlevel, dscale = _fourier_smoothing_bwd(x, grad, smoothing_logit, init_level, smoothed_scale, mix,
                                                        smoothing_norm(x.shape[1]))
    return (dx, _logit_grad(dalpha, smoothing_logit), dlevel.sum(0).view(init_level.shape),
            dscale.sum(0).view(smoothed_scale.shape))


@fourier_smoothing_bwd.register_fake
def _(x, grad, smoothing_logit, init_level, smoothed_scale, mix):
    def like(t):
        return t.new_empty(t.shape, dtype=torch.float32)
    return like(x), like(smoothing_logit), like(init_level), like(smoothed_scale)


@_custom_op("asrec::input_stage_fwd")
def input_stage_fwd(item_seq: torch.Tensor, item_weight: torch.Tensor, position_weight: torch.Tensor,
                    norm_weight: torch.Tensor, norm_bias: torch.Tensor, smoothing_logit: torch.Tensor,
                    init_level: torch.Tensor, smoothed_scale: torch.Tensor, seed: torch.Tensor, eps: float,
                    dropout_p: float, dropping: bool, mix: float) -> torch.Tensor:
    from ..kernels.input_stage import _input_stage_fwd

    return _input_stage_fwd(item_seq, item_weight, position_weight, norm_weight, norm_bias, smoothing_logit,
                            init_level, smoothed_scale, eps, int(seed.item()), dropout_p, dropping,
                            smoothing_norm(item_seq.shape[1]), mix)


@input_stage_fwd.register_fake
def _(item_seq, item_weight, position_weight, norm_weight, norm_bias, smoothing_logit, init_level, smoothed_scale,
      seed, eps, dropout_p, dropping, mix):
    return item_weight.new_empty((*item_seq.shape, item_weight.shape[1]), dtype=torch.float32)


@_custom_op("asrec::input_stage_bwd")
def input_stage_bwd(item_seq: torch.Tensor, item_weight: torch.Tensor, position_weight: torch.Tensor,
                    norm_weight: torch.Tensor, norm_bias: torch.Tensor, smoothing_logit: torch.Tensor,
                    init_level: torch.Tensor, smoothed_scale: torch.Tensor, grad: torch.Tensor, seed: torch.Tensor,
                    eps: float, dropout_p: float, dropping: bool,
                    mix: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """-> d(embedding sum) (B, N, H), the smoothing logit's gradient (1,), (4, H) gradients of
    init_level, smoothed_scale, the LayerNorm weight and bias, and the used position rows' (N, H);
    float32."""
    from ..kernels.input_stage import _input_stage_bwd

    dembedded, parts = _input_stage_bwd(item_seq, item_weight, position_weight, norm_weight, norm_bias,
                                        smoothing_logit, init_level, smoothed_scale, grad, eps, int(seed.item()),
                                        dropout_p, dropping, smoothing_norm(item_seq.shape[1]), mix)
    return input_stage_grads(dembedded, parts, smoothing_logit)


@input_stage_bwd.register_fake
def _(item_seq, item_weight, position_weight, norm_weight, norm_bias, smoothing_logit, init_level, smoothed_scale,
      grad, seed, eps, dropout_p, dropping, mix):
    hidden = item_weight.shape[1]
    return (grad.new_empty(grad.shape, dtype=torch.float32), grad.new_empty((1,), dtype=torch.float32),
            grad.new_empty((4, hidden), dtype=torch.float32),
            grad.new_empty((item_seq.shape[1], hidden), dtype=torch.float32))


@_custom_op("asrec::frequency_filter_fwd")
def frequency_filter_fwd(y: torch.Tensor, threshold: torch.Tensor, norm_weight: torch.Tensor,
                         norm_bias: torch.Tensor, seed: torch.Tensor, eps: float, dropout_p: float, dropping: bool,
                         scope: str) -> tuple[torch.Tensor, torch.Tensor]:
    """y: (B, G, N, H) -> (out (B, G, N, H) in y's dtype, keep (B, G, N//2 + 1) float32 0/1)."""
    from ..kernels.frequency_filter import _frequency_energy, _frequency_filter_fwd

    batch, groups, seq_len, hidden = y.shape
    flat = y.view(batch * groups, seq_len, hidden)
    keep = filter_keep(_frequency_energy(flat), batch, groups, threshold, scope, seq_len)
    out = _frequency_filter_fwd(flat, keep, norm_weight, norm_bias, eps, int(seed.item()), dropout_p, dropping)
    return out.view(y.shape), keep


@frequency_filter_fwd.register_fake
def _(y, threshold, norm_weight, norm_bias, seed, eps, dropout_p, dropping, scope):
    return y.new_empty(y.shape), y.new_empty((*y.shape[:2], y.shape[2] // 2 + 1), dtype=torch.float32)


@_custom_op("asrec::frequency_filter_bwd")
def frequency_filter_bwd(y: torch.Tensor, grad: torch.Tensor, keep: torch.Tensor, norm_weight: torch.Tensor,
                         seed: torch.Tensor, eps: float, dropout_p: float,
                         dropping: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """-> dy (B, G, N, H) float32, and the float32 LayerNorm weight and bias gradients (H,)."""
    from ..kernels.frequency_filter import _frequency_filter_bwd

    batch, groups, seq_len, hidden = y.shape
    dy, dweight, dbias = _frequency_filter_bwd(y.view(-1, seq_len, hidden), grad.reshape(-1, seq_len, hidden),
                                               keep, norm_weight, eps, int(seed.item()), dropout_p, dropping)
    return dy.view(y.shape), dweight.sum(0), dbias.sum(0)


@frequency_filter_bwd.register_fake
def _(y, grad, keep, norm_weight, seed, eps, dropout_p, dropping):
    hidden = y.shape[-1]
    return (y.new_empty(y.shape, dtype=torch.float32), y.new_empty((hidden,), dtype=torch.float32),
            y.new_empty((hidden,), dtype=torch.float32))


@_custom_op("asrec::residual_norm_fwd")
def residual_norm_fwd(x: torch.Tensor, residual: torch.Tensor, norm_weight: torch.Tensor, norm_bias: torch.Tensor,
                      seed: torch.Tensor, eps: float, dropout_p: float, dropping: bool,
                      out_dtype: torch.dtype) -> torch.Tensor:
    from ..kernels.residual_norm import _residual_norm_fwd

    return _residual_norm_fwd(x, residual, norm_weight, norm_bias, eps, int(seed.item()), dropout_p, dropping,
                              out_dtype)


@residual_norm_fwd.register_fake
def _(x, residual, norm_weight, norm_bias, seed, eps, dropout_p, dropping, out_dtype):
    return x.new_empty(x.shape, dtype=out_dtype)


@_custom_op("asrec::residual_norm_bwd")
def residual_norm_bwd(x: torch.Tensor, residual: torch.Tensor, norm_weight: torch.Tensor, grad: torch.Tensor,
                      seed: torch.Tensor, eps: float, dropout_p: float,
                      dropping: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """-> dx (x's dtype), dresidual (residual's dtype), float32 LayerNorm weight and bias gradients (H,)."""
    from ..kernels.residual_norm import _residual_norm_bwd

    dx, dresidual, dweight, dbias = _residual_norm_bwd(x, residual, norm_weight, grad, eps, int(seed.item()),
                                                       dropout_p, dropping)
    return dx, dresidual, dweight.sum(0), dbias.sum(0)


@residual_norm_bwd.register_fake
def _(x, residual, norm_weight, grad, seed, eps, dropout_p, dropping):
    hidden = x.shape[-1]
    return (x.new_empty(x.shape), residual.new_empty(residual.shape), x.new_empty((hidden,), dtype=torch.float32),
            x.new_empty((hidden,), dtype=torch.float32))


@_custom_op("asrec::contrast_gelu_fwd")
def contrast_gelu_fwd(filtered_small: torch.Tensor, filtered_middle: torch.Tensor, filtered_large: torch.Tensor,
                      conv_small: torch.Tensor, conv_middle: torch.Tensor, conv_large: torch.Tensor,
                      position_scales: torch.Tensor, origin_scale: torch.Tensor,
                      contrast_scale: torch.Tensor) -> torch.Tensor:
    from ..kernels.contrast_gelu import _contrast_gelu_fwd

    return _contrast_gelu_fwd([filtered_small, filtered_middle, filtered_large], [conv_small, conv_middle, conv_large],
                              position_scales, origin_scale, contrast_scale)


@contrast_gelu_fwd.register_fake
def _(filtered_small, filtered_middle, filtered_large, conv_small, conv_middle, conv_large, position_scales,
      origin_scale, contrast_scale):
    return conv_small.new_empty(conv_small.shape, dtype=torch.float32)


@_custom_op("asrec::contrast_gelu_bwd")
def contrast_gelu_bwd(filtered_small: torch.Tensor, filtered_middle: torch.Tensor, filtered_large: torch.Tensor,
                      conv_small: torch.Tensor, conv_middle: torch.Tensor, conv_large: torch.Tensor,
                      position_scales: torch.Tensor, origin_scale: torch.Tensor, contrast_scale: torch.Tensor,
                      grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """-> d(pair) (3, B, N, H), d position_scales (3, N), d origin_scale, d contrast_scale (scalars), float32."""
    from ..kernels.contrast_gelu import _contrast_gelu_bwd

    dpair, dscale, dscalars = _contrast_gelu_bwd([filtered_small, filtered_middle, filtered_large],
                                                 [conv_small, conv_middle, conv_large], position_scales, origin_scale,
                                                 contrast_scale, grad)
    return dpair, dscale.sum(0), dscalars[:, 0].sum(), dscalars[:, 1].sum()


@contrast_gelu_bwd.register_fake
def _(filtered_small, filtered_middle, filtered_large, conv_small, conv_middle, conv_large, position_scales,
      origin_scale, contrast_scale, grad):
    batch, seq_len, hidden = conv_small.shape
    return (grad.new_empty((3, batch, seq_len, hidden), dtype=torch.float32),
            grad.new_empty((3, seq_len), dtype=torch.float32), grad.new_empty((), dtype=torch.float32),
            grad.new_empty((), dtype=torch.float32))


@_custom_op("asrec::attention_fwd")
def attention_fwd(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, key_bias: torch.Tensor,
                  gate_weight: typing.Optional[torch.Tensor], gate_bias: typing.Optional[torch.Tensor],
                  seed: torch.Tensor, dropout_p: float,
                  dropping: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """q: (B, h, Nq, d), k, v: (B, h, Nk, d) -> out (q's dtype), ungated context (B*h, Nq, d) and row
    log-sum-exp (B*h, Nq), float32."""
    from ..kernels.gated_attention import _attention_fwd

    out = torch.empty_like(q, memory_format=torch.contiguous_format)
    context, lse = _attention_fwd(q[None], k[None], v[None], key_bias, gate_weight, gate_bias, int(seed.item()),
                                  dropout_p, dropping, out[None])
    return out, context, lse


@attention_fwd.register_fake
def _(q, k, v, key_bias, gate_weight, gate_bias, seed, dropout_p, dropping):
    batch, heads, q_len, head_dim = q.shape
    return (q.new_empty(q.shape), q.new_empty((batch * heads, q_len, head_dim), dtype=torch.float32),
            q.new_empty((batch * heads, q_len), dtype=torch.float32))


@_custom_op("asrec::attention_bwd")
def attention_bwd(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, key_bias: torch.Tensor,
                  gate_weight: typing.Optional[torch.Tensor], gate_bias: typing.Optional[torch.Tensor],
                  context: torch.Tensor, lse: torch.Tensor, grad: torch.Tensor, seed: torch.Tensor, dropout_p: float,
                  dropping: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """-> dq, dk, dv (float32, (B, h, N, d)), dW, db (float32; zero-sized without the gate)."""
    from ..kernels.gated_attention import _attention_bwd

    dq = torch.empty(q.shape, device=q.device, dtype=torch.float32)
    dk = torch.empty(k.shape, device=q.device, dtype=torch.float32)
    dv = torch.empty(k.shape, device=q.device, dtype=torch.float32)
    dw, db = _attention_bwd(q[None], k[None], v[None], key_bias, gate_weight, gate_bias, context, lse, grad[None],
                            dq[None], dk[None], dv[None], int(seed.item()), dropout_p, dropping)
    if dw is None:
        dw, db = q.new_zeros((0,), dtype=torch.float32), q.new_zeros((0,), dtype=torch.float32)
    return dq, dk, dv, dw, db


@attention_bwd.register_fake
def _(q, k, v, key_bias, gate_weight, gate_bias, context, lse, grad, seed, dropout_p, dropping):
    def f32(shape):
        return q.new_empty(shape, dtype=torch.float32)
    gate = gate_weight is not None
    return (f32(q.shape), f32(k.shape), f32(v.shape), f32(gate_weight.shape if gate else (0,)),
            f32(gate_bias.shape if gate else (0,)))


@_custom_op("asrec::hybrid_attention_fwd")
def hybrid_attention_fwd(qkv: torch.Tensor, key_bias: torch.Tensor, gate_weight: torch.Tensor,
                         gate_bias: torch.Tensor, heads: int, seed: torch.Tensor, dropout_p: float,
                         dropping: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Both branches' attention from one stacked projection qkv (B, N, 6H) ([seasonal | dynamic]
    x [q | k | v]): -> out (2, B, N, H) in qkv's dtype (the gated seasonal context, the dynamic
    context, heads merged), ungated context (2*B*h, N, d) and row log-sum-exp (2*B*h, N), float32."""
    from ..kernels.gated_attention import _attention_fwd, merged_heads_view, stacked_projection_views

    batch, seq_len, width = qkv.shape
    out = qkv.new_empty((2, batch, seq_len, width // 6))
    context, lse = _attention_fwd(*stacked_projection_views(qkv, heads), key_bias, gate_weight, gate_bias,
                                  int(seed.item()), dropout_p, dropping, merged_heads_view(out, heads))
    return out, context, lse


@hybrid_attention_fwd.register_fake
def _(qkv, key_bias, gate_weight, gate_bias, heads, seed, dropout_p, dropping):
    batch, seq_len, width = qkv.shape
    hidden = width // 6
    return (qkv.new_empty((2, batch, seq_len, hidden)),
            qkv.new_empty((2 * batch * heads, seq_len, hidden // heads), dtype=torch.float32),
            qkv.new_empty((2 * batch * heads, seq_len), dtype=torch.float32))


@_custom_op("asrec::hybrid_attention_bwd")
def hybrid_attention_bwd(qkv: torch.Tensor, key_bias: torch.Tensor, gate_weight: torch.Tensor,
                         gate_bias: torch.Tensor, context: torch.Tensor, lse: torch.Tensor, grad: torch.Tensor,
                         heads: int, seed: torch.Tensor, dropout_p: float,
                         dropping: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """grad: (2, B, N, H) -> d qkv (B, N, 6H) in the stacked layout, dW (2d, 2d), db (2d,); float32."""
    from ..kernels.gated_attention import _attention_bwd, merged_heads_view, stacked_projection_views

    dqkv = torch.empty(qkv.shape, device=qkv.device, dtype=torch.float32)
    dw, db = _attention_bwd(*stacked_projection_views(qkv, heads), key_bias, gate_weight, gate_bias, context, lse,
                            merged_heads_view(grad, heads), *stacked_projection_views(dqkv, heads), int(seed.item()),
                            dropout_p, dropping)
    return dqkv, dw, db


@hybrid_attention_bwd.register_fake
def _(qkv, key_bias, gate_weight, gate_bias, context, lse, grad, heads, seed, dropout_p, dropping):
    return (qkv.new_empty(qkv.shape, dtype=torch.float32),
            gate_weight.new_empty(gate_weight.shape, dtype=torch.float32),
            gate_bias.new_empty(gate_bias.shape, dtype=torch.float32))


@_custom_op("asrec::multiscale_conv_fwd")
def multiscale_conv_fwd(x: torch.Tensor, weight_small: torch.Tensor, weight_middle: torch.Tensor,
                        weight_large: torch.Tensor, bias_small: torch.Tensor, bias_middle: torch.Tensor,
                        bias_large: torch.Tensor) -> torch.Tensor:
    """-> (3, B, N, H) in x's dtype: the small, middle and large convolutions."""
    from ..kernels.multiscale_conv import _multiscale_conv_fwd

    return _multiscale_conv_fwd(x, (weight_small, weight_middle, weight_large), (bias_small, bias_middle, bias_large))


@multiscale_conv_fwd.register_fake
def _(x, weight_small, weight_middle, weight_large, bias_small, bias_middle, bias_large):
    return x.new_empty((3, *x.shape))


@_custom_op("asrec::multiscale_conv_bwd")
def multiscale_conv_bwd(x: torch.Tensor, weight_small: torch.Tensor, weight_middle: torch.Tensor,
                        weight_large: torch.Tensor,
                        grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor,
                                                     torch.Tensor]:
    """-> dx (B, N, H), d weight_small, d weight_middle, d weight_large, d biases (3, N), all float32."""
    from ..kernels.multiscale_conv import _multiscale_conv_bwd

    return _multiscale_conv_bwd(x, (weight_small, weight_middle, weight_large), grad)


@multiscale_conv_bwd.register_fake
def _(x, weight_small, weight_middle, weight_large, grad):
    def f32(t):
        return t.new_empty(t.shape, dtype=torch.float32)
    return f32(x), f32(weight_small), f32(weight_middle), f32(weight_large), x.new_empty((3, x.shape[1]),
                                                                                           dtype=torch.float32)
