"""Dynamic attention branch (SPEC section 5): plain multi-head attention with the padding mask."""

import torch
import torch.nn.functional as F

from .attention import take_rows
from .hybrid_attention import dynamic_context_ref
from .pieces import REFERENCE_PIECES, Pieces
from .weights import DynamicWeights


def dynamic_tail_ref(context: torch.Tensor, residual: torch.Tensor, weights: DynamicWeights,
                     dropout_p: float, training: bool, pieces: Pieces = REFERENCE_PIECES) -> torch.Tensor:
    """``LN(drop(dense(context)) + x)``. context, residual: (batch, seq_len, hidden)."""
    norm = weights.norm
    return pieces.residual_norm(F.linear(context, *weights.dense), residual, norm.weight, norm.bias, norm.eps,
                                dropout_p, training)


def dynamic_branch_ref(x: torch.Tensor, key_bias: torch.Tensor, weights: DynamicWeights, n_heads: int,
                       hidden_dropout_p: float = 0.0, attn_dropout_p: float = 0.0,
                       training: bool = False, output_rows=None, pieces: Pieces = REFERENCE_PIECES) -> torch.Tensor:
    """SPEC section 5. x: (batch, seq_len, hidden); key_bias: (batch, 1, 1, seq_len).

    output_rows: optional (batch,) positions; then only those query rows are computed and
    the result is (batch, 1, hidden) (attention rows are independent of each other).
    pieces: the attention and residual-norm implementations (see ``asrec.reference.pieces``).
    """
    context = dynamic_context_ref(x, key_bias, weights, n_heads, attn_dropout_p, training, output_rows,
                                  pieces.attention)
    return dynamic_tail_ref(context, take_rows(x, output_rows), weights, hidden_dropout_p, training, pieces)
