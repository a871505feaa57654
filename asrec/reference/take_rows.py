"""One row per sequence: ``t[b, rows[b]]`` (the model reads each sequence at its last item)."""

import torch


def take_rows_ref(rows, *tensors: torch.Tensor) -> tuple:
    """``t[b, rows[b]]`` of each tensor as (batch, 1, hidden); ``rows=None`` returns the tensors unchanged.

    The model reads each sequence's hidden state at one position (its last item), and
    every op after the last layer's position-mixing steps is row-wise, so that layer
    only computes those rows. tensors: (batch, seq_len, hidden); rows: (batch,) int64.
    -> a tuple, one per tensor (``asrec.ops.take_rows``'s signature).
    """
    if rows is None:
        return tensors
    return tuple(t.gather(1, rows.view(-1, 1, 1).expand(-1, 1, t.shape[-1])) for t in tensors)
