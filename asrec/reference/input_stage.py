"""The model's input stage (SPEC sections 1-2): embeddings, LayerNorm, dropout, Fourier smoothing."""

import torch
import torch.nn.functional as F

from .fourier_smoothing import fourier_smoothing_ref


def input_stage_ref(item_seq: torch.Tensor, item_weight: torch.Tensor, position_weight: torch.Tensor,
                    norm_weight: torch.Tensor, norm_bias: torch.Tensor, eps: float, dropout_p: float,
                    training: bool, smoothing_logit: torch.Tensor, init_level: torch.Tensor,
                    smoothed_scale: torch.Tensor, mix: float) -> torch.Tensor:
    """``fourier_smoothing(drop(LN(item_weight[item_seq] + position_weight[n])))``.

    item_seq: (batch, seq_len) ids (0 = padding; its row gets no gradient, as the published
    ``padding_idx=0``); item_weight: (n_items, hidden); position_weight: (>= seq_len, hidden);
    norm_weight, norm_bias: (hidden,); smoothing parameters as ``fourier_smoothing_ref``.
    Returns (batch, seq_len, hidden) in the compute dtype.
    """
    seq_len, hidden = item_seq.shape[1], item_weight.shape[1]
    embedded = F.embedding(item_seq, item_weight, padding_idx=0) + position_weight[:seq_len]
    embedded = F.dropout(F.layer_norm(embedded, (hidden,), norm_weight, norm_bias, eps), dropout_p, training)
    return fourier_smoothing_ref(embedded, smoothing_logit, init_level, smoothed_scale, mix)
