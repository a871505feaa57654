"""Top-k recommendation without the (batch, n_items) score matrix: the public op
``top_items`` behind ``ASRecModel.recommend`` (reference: ``asrec.reference.top_items``,
the path of every backend; no Triton kernel is built for it yet, so "triton" runs the
reference, as ``describe()`` says)."""

import torch

from .. import backends
from ..reference.top_items import top_items_ref
from . import _contract

backends.register("top_items", top_items_ref)


def top_items(hidden: torch.Tensor, item_weight: torch.Tensor, k: int, exclude=None) -> tuple:
    """The k best real items per row: hidden (batch, H) float, item_weight (n_items, H) float,
    k an int in [1, n_items - 1], exclude None or a (batch, M) integer tensor of ids to leave
    out per row (0 entries ignored) -> (scores (batch, k) float32, item ids (batch, k)
    int64), best first, equal scores in increasing id order, never the padding item 0; where
    fewer than k items are left, the last slots hold score -inf and id -1."""
    _contract.check_top_items(hidden, item_weight, k, exclude)
    args = (hidden, item_weight, int(k), exclude)
    return backends.dispatch("top_items", hidden.device, *args)(*args)
