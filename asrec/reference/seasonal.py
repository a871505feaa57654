"""Seasonal attention branch (SPEC section 4): gated attention, multi-scale convolutions,
three adaptive frequency filters and the over-smoothing contrast."""

import torch
import torch.nn.functional as F

from .attention import take_rows
from .convolutions import CONV_KERNEL_SIZES, multiscale_conv_ref  # noqa: F401 (re-exported)
from .hybrid_attention import seasonal_context_ref
from .pieces import REFERENCE_PIECES, Pieces
from .weights import SeasonalWeights


def seasonal_tail_ref(context: torch.Tensor, residual: torch.Tensor, weights: SeasonalWeights,
                      dropout_p: float, training: bool, filter_scope: str = "batch", output_rows=None,
                      pieces: Pieces = REFERENCE_PIECES) -> torch.Tensor:
    """Everything after the gated attention: convolutions, filters, contrast, dense, LN.

    context: (batch, seq_len, hidden) merged gated context; residual: the branch input x.
    ``ctx = s1 (F(S) + S) + s2 (F(G) + G) + s3 (F(M) + M)`` with S, M, G the small, middle
    and large convolutions (published quirk: ``contra_scale2`` scales the LARGE one), then
    ``LN(drop(dense(gelu(contrast(ctx)))) + x)``. With ``output_rows`` (batch,), only those
    rows go through the row-wise gelu, dense and LN: the result is (batch, 1, hidden).
    """
    scales = pieces.multiscale_conv(context, weights.conv_weights, weights.conv_biases)
    ff = weights.frequency_filter
    filtered = pieces.filter_groups(scales, ff.threshold, ff.norm.weight, ff.norm.bias, ff.norm.eps, 0.5, training,
                                    filter_scope)
    activated = pieces.contrast_gelu(filtered, scales, weights.position_scales, weights.origin_scale,
                                     weights.contrast_scale, output_rows)
    residual = take_rows(residual, output_rows)
    norm = weights.norm
    return pieces.residual_norm(F.linear(activated, *weights.dense), residual, norm.weight, norm.bias, norm.eps,
                                dropout_p, training)


def seasonal_branch_ref(x: torch.Tensor, key_bias: torch.Tensor, weights: SeasonalWeights, n_heads: int,
                        hidden_dropout_p: float = 0.0, attn_dropout_p: float = 0.0, training: bool = False,
                        filter_scope: str = "batch", output_rows=None,
                        pieces: Pieces = REFERENCE_PIECES) -> torch.Tensor:
    """SPEC section 4 end to end. x: (batch, seq_len, hidden); key_bias: (batch, 1, 1, seq_len);
    output_rows, pieces: see ``seasonal_tail_ref``."""
    gated = seasonal_context_ref(x, key_bias, weights, n_heads, attn_dropout_p, training, pieces.gated_attention)
    return seasonal_tail_ref(gated, x, weights, hidden_dropout_p, training, filter_scope, output_rows, pieces)
