"""The training loss (SPEC's next-item cross-entropy over all items): PyTorch's own."""

import torch
import torch.nn.functional as F


def cross_entropy_ref(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``F.cross_entropy(scores, targets)`` with its default arguments: scores (batch, n_items),
    targets (batch,) integer item ids -> the mean over the batch of ``logsumexp(scores[b]) -
    scores[b, targets[b]]`` (a scalar in scores' dtype)."""
    return F.cross_entropy(scores, targets.long())
