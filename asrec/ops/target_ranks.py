"""Full-ranking evaluation without the (batch, n_items) score matrix: the public op
``target_ranks`` (reference: ``asrec.reference.target_ranks``, the path of every backend;
no Triton kernel is built for it yet, so "triton" runs the reference, as ``describe()`` says)."""

import torch

from .. import backends
from ..reference.target_ranks import target_ranks_ref
from . import _contract

backends.register("target_ranks", target_ranks_ref)


def target_ranks(hidden: torch.Tensor, item_weight: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Each target's 0-based rank among the real items: hidden (batch, H) float, item_weight
    (n_items, H) float, targets (batch,) integer ids in [1, n_items) -> (batch,) int64, the
    number of items 1..n_items-1 scored strictly higher than the target (the padding item
    never counts; ties count for the target), -1 for a row with a NaN score (see
    ``asrec.reference.target_ranks.target_ranks_ref``). Memory O(batch x item tile)."""
    _contract.check_scoring("target_ranks", hidden, item_weight, targets=targets)
    args = (hidden, item_weight, targets)
    return backends.dispatch("target_ranks", hidden.device, *args)(*args)
