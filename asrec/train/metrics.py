"""Full-ranking metrics as RecBole 1.2 computes them for one target per user.

``rank`` is the 0-based position of the target among all real items (the padding item is
excluded by giving it -inf; history items are not excluded). Ties count in the target's
favour: ``rank`` is the number of items scored strictly higher.
"""

import math

import torch

METRICS = ("hit", "ndcg", "mrr")
TOPK = (1, 5, 10, 20)


def target_ranks(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """scores: (batch, n_items) with column 0 the padding item; targets: (batch,) -> (batch,) int64."""
    scores = scores.clone()
    scores[:, 0] = -math.inf
    target_scores = scores.gather(1, targets.view(-1, 1))
    return (scores > target_scores).sum(dim=1)


def metrics_from_ranks(ranks: torch.Tensor, topk=TOPK) -> dict:
    """Mean Hit@k, NDCG@k and MRR@k over users. ranks: (users,) 0-based."""
    ranks = ranks.double()
    result = {}
    for k in topk:
        hit = (ranks < k).double()
        result[f"hit@{k}"] = hit.mean().item()
        result[f"ndcg@{k}"] = (hit / torch.log2(ranks + 2)).mean().item()
        result[f"mrr@{k}"] = (hit / (ranks + 1)).mean().item()
    return result
