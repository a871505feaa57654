"""The seasonal attention branch (SPEC section 4), a composition of leaf ops: gated
attention, the three position-channel convolutions, their frequency filters, the scale
combination with the over-smoothing contrast and gelu, dense, dropout + residual + LayerNorm.

Plain code over the public dispatching ops, so each leaf runs on its own backend; under
``"reference"`` this is the reference composition.
"""

import torch
import torch.nn.functional as F

from .. import backends
from ..reference._heads import merge_heads, split_heads
from ..reference.frequency_filter import FILTER_DROPOUT
from ..reference.weights import SeasonalWeights
from . import _contract
from .contrast_gelu import contrast_gelu
from .frequency_filter_groups import _frequency_filter_groups
from .gated_attention import gated_attention
from .multiscale_conv import multiscale_conv
from .residual_norm import project_without_bias, residual_norm
from .take_rows import take_rows


def seasonal_tail(context: torch.Tensor, residual, weights: SeasonalWeights, dropout_p: float, training: bool,
                  filter_scope: str = "batch", output_rows=None) -> torch.Tensor:
    """Everything after the gated attention: convolutions, filters, contrast, dense, LN.

    context: (batch, seq_len, hidden) merged gated context; residual: the branch input x, or
    with ``output_rows`` its rows ``take_rows(output_rows, x)[0]`` (batch, 1, hidden) (the hybrid
    layer takes them once for both branches).
    ``ctx = s1 (F(S) + S) + s2 (F(G) + G) + s3 (F(M) + M)`` with S, M, G the small, middle
    and large convolutions (published quirk: ``contra_scale2`` scales the LARGE one), then
    ``LN(drop(dense(gelu(contrast(ctx)))) + x)``. With ``output_rows`` (batch,), only those
    rows go through the row-wise gelu, dense and LN: the result is (batch, 1, hidden).
    ``residual=None``: the dense projection WITHOUT its bias, before the dropout, residual and
    LN (the hybrid layer applies those and adds the bias with the dynamic branch's, in one
    ``residual_norm`` call: ``other_bias``).
    """
    # (3, B, N, H) stacked, as the Triton convolution writes them and the filter reads them: no copies.
    # A reference forward without autograd keeps three tensors, as its convolutions make them:
    # stacking them, and the filter's outputs after them, were two copies of (3, B, N, H) that
    # nothing reads stacked. (With autograd the stack stays: it fixes the order in which the
    # gradients of each convolution output are summed, so training's values stay as they were.)
    stacked = torch.is_grad_enabled() or backends.plan("multiscale_conv", context.device.type).backend != "reference"
    conv_outputs = multiscale_conv(context, weights.conv_weights, weights.conv_biases, stacked=stacked)
    ff = weights.frequency_filter
    # the contrast reads the convolutions' outputs too: it takes them back from the filter
    # (with_input), so that on the Triton backend the filter's backward kernel adds the
    # contrast's gradient of them into its own (no autograd add of two (3, B, N, H) gradients)
    filtered, conv_outputs = _frequency_filter_groups(conv_outputs, ff.threshold, ff.norm.weight, ff.norm.bias,
                                                      ff.norm.eps, FILTER_DROPOUT, training, filter_scope,
                                                      with_input=True)
    activated = contrast_gelu(filtered, conv_outputs, weights.position_scales, weights.origin_scale,
                              weights.contrast_scale, output_rows)
    # the dense bias goes to the norm, which adds it before the dropout and sums its gradient
    # with its own parameters' (no bias-gradient kernel of its own)
    dense = project_without_bias(activated, weights.dense.weight)
    if residual is None:
        return dense
    norm = weights.norm
    return residual_norm(dense, residual, norm.weight, norm.bias, norm.eps, dropout_p, training,
                         x_bias=weights.dense.bias)


def seasonal_branch(x: torch.Tensor, key_bias: torch.Tensor, weights: SeasonalWeights, n_heads: int,
                    hidden_dropout_p: float = 0.0, attn_dropout_p: float = 0.0, training: bool = False,
                    filter_scope: str = "batch", output_rows=None) -> torch.Tensor:
    """SPEC section 4 end to end. x: (batch, seq_len, hidden); key_bias: (batch, 1, 1, seq_len);
    output_rows: see ``seasonal_tail``. -> x's shape, or (batch, 1, hidden) with output_rows.

    The standalone entry (``SeasonalAttention.forward``); the model's layers run the branch inside
    ``hybrid_layer`` instead (``hybrid_attention``, then ``seasonal_tail``, its norm joined with the
    dynamic branch's)."""
    _contract.check_branch("seasonal_branch", x, key_bias, weights, n_heads, hidden_dropout_p, attn_dropout_p,
                           training, output_rows, filter_scope)
    q, k, v = (split_heads(F.linear(x, *linear), n_heads) for linear in (weights.query, weights.key, weights.value))
    context = merge_heads(gated_attention(q, k, v, key_bias, *weights.gate, attn_dropout_p, training))
    return seasonal_tail(context, take_rows(output_rows, x)[0], weights, hidden_dropout_p, training, filter_scope,
                         output_rows)


backends.register_composition("seasonal_branch")
