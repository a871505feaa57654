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
    """-> out (q's dtype), ungated context (float32), row log-sum-exp (B*h, Nq) float32."""
    from ..kernels.gated_attention import _attention_fwd

    return _attention_fwd(q, k, v, key_bias, gate_weight, gate_bias, int(seed.item()), dropout_p, dropping)


@attention_fwd.register_fake
def _(q, k, v, key_bias, gate_weight, gate_bias, seed, dropout_p, dropping):
    batch, heads, q_len, _ = q.shape
    return (q.new_empty(q.shape), q.new_empty(q.shape, dtype=torch.float32),
            q.new_empty((batch * heads, q_len), dtype=torch.float32))


@_custom_op("asrec::attention_bwd")
def attention_bwd(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, key_bias: torch.Tensor,
                  gate_weight: typing.Optional[torch.Tensor], gate_bias: typing.Optional[torch.Tensor],
                  context: torch.Tensor, lse: torch.Tensor, grad: torch.Tensor, seed: torch.Tensor, dropout_p: float,
                  dropping: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """-> dq, dk, dv (float32), dW, db (float32; zero-sized without the gate)."""
    from ..kernels.gated_attention import _attention_bwd

    dq, dk, dv, dw, db = _attention_bwd(q, k, v, key_bias, gate_weight, gate_bias, context, lse, grad,
                                        int(seed.item()), dropout_p, dropping)
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
