"""Top-k recommendation without the (batch, n_items) score matrix: the public op
``top_items`` behind ``ASRecModel.recommend`` and its backends: the reference
(``asrec.reference.top_items``: torch GEMMs and topk over item tiles, the CPU's path) and
Triton (``asrec.kernels.top_items``: per-split candidates, then one topk); the cuda backend
has no kernel for it and runs the reference, as ``describe()`` says."""

from typing import Optional

import torch

from .. import backends
from ..reference.top_items import top_items_ref
from . import _contract
from ._custom_op import custom_op


@custom_op("asrec::top_items")
def top_items_launch(hidden: torch.Tensor, item_weight: torch.Tensor, k: int,
                     exclude: Optional[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """The Triton path (``asrec.kernels.top_items``): (scores (B, k) float32, item ids (B, k) int64)."""
    from ..kernels.top_items import top_items_triton

    return top_items_triton(hidden, item_weight, k, exclude)


@top_items_launch.register_fake
def top_items_fake(hidden, item_weight, k, exclude):
    batch = hidden.shape[0]
    return hidden.new_empty((batch, k), dtype=torch.float32), hidden.new_empty((batch, k), dtype=torch.int64)


def _triton(hidden, item_weight, k, exclude):
    return top_items_launch(hidden, item_weight, k, exclude)


def _triton_unsupported(hidden, item_weight, k, exclude):
    from ..kernels.top_items import unsupported

    return unsupported(hidden, item_weight, k, exclude)


backends.register("top_items", top_items_ref, triton=backends.FusedKernel(_triton, _triton_unsupported))


def top_items(hidden: torch.Tensor, item_weight: torch.Tensor, k: int, exclude=None) -> tuple:
    """The k best real items per row: hidden (batch, H) float, item_weight (n_items, H) float,
    k an int in [1, n_items - 1], exclude None or a (batch, M) integer tensor of ids to leave
    out per row (0 entries ignored) -> (scores (batch, k) float32, item ids (batch, k)
    int64), best first, equal scores in increasing id order, never the padding item 0; where
    fewer than k items are left, the last slots hold score -inf and id -1."""
    _contract.check_top_items(hidden, item_weight, k, exclude)
    args = (hidden, item_weight, int(k), exclude)
    return backends.dispatch("top_items", hidden.device, *args)(*args)
