"""The over-smoothing contrast of the seasonal branch (SPEC section 4) and its activation."""

import torch
import torch.nn.functional as F

from .take_rows import take_rows_ref


def oversmoothing_contrast_ref(context: torch.Tensor, origin_scale: torch.Tensor,
                               contrast_scale: torch.Tensor) -> torch.Tensor:
    """``origin * ctx - contrast * (sim * ctx)`` with ``sim = softmax_H(xn^2) + softmax_N(xn^2)``.

    ``xn = ctx / max(||ctx||_2 over hidden, 1e-12)``; the softmax over positions includes
    padded rows, as published. context: (batch, seq_len, hidden) -> same shape.
    """
    # xn^2 lies in [0, 1] (|xn| <= 1 after the L2 normalisation), so exp(xn^2) lies in [1, e]:
    # both softmaxes share one exp and need no max subtraction (the same values as
    # torch.softmax to rounding): sim = e / sum_H(e) + e / sum_N(e)
    exp_squared = F.normalize(context, dim=2).square().exp()
    by_hidden = exp_squared.sum(dim=2, keepdim=True).reciprocal()
    by_position = exp_squared.sum(dim=1, keepdim=True).reciprocal()
    similarity = torch.addcmul(exp_squared * by_hidden, exp_squared, by_position)
    # = context * (origin - contrast * sim): two passes over (B, N, H) instead of four
    return context * torch.addcmul(origin_scale, similarity, contrast_scale, value=-1)


def contrast_gelu_ref(filtered: list, conv_outputs: list, position_scales: torch.Tensor, origin_scale: torch.Tensor,
                      contrast_scale: torch.Tensor, output_rows=None) -> torch.Tensor:
    """``gelu(contrast(sum_i position_scales[i] * (filtered[i] + conv_outputs[i])))`` (SPEC section 4).

    filtered, conv_outputs: three (batch, seq_len, hidden) tensors each (small, middle, large
    convolution, and each one's frequency filter);
    position_scales: (3, seq_len, 1); origin_scale, contrast_scale: scalars (1,). With
    ``output_rows`` (batch,) only those rows are activated: (batch, 1, hidden).
    """
    # sum_i scale_i * (f_i + s_i), accumulated by addcmul (no separate product and sum passes);
    # one unbind, so that backward stacks the three scale gradients in one step
    scales = position_scales.unbind(0)
    combined = (filtered[0] + conv_outputs[0]) * scales[0]
    for scale, f, c in zip(scales[1:], filtered[1:], conv_outputs[1:]):
        combined = torch.addcmul(combined, f + c, scale)
    return F.gelu(take_rows_ref(output_rows, oversmoothing_contrast_ref(combined, origin_scale, contrast_scale))[0])
