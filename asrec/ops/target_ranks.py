"""Full-ranking evaluation without the (batch, n_items) score matrix: the public op
``target_ranks`` and its backends: the reference (``asrec.reference.target_ranks``: torch
GEMMs over item tiles, the CPU's path) and Triton (``asrec.kernels.target_ranks``); the cuda
backend has no kernel for it and runs the reference, as ``describe()`` says."""

import torch

from .. import backends
from ..reference.target_ranks import target_ranks_ref
from . import _contract
from ._custom_op import custom_op


@custom_op("asrec::target_ranks")
def target_ranks_launch(hidden: torch.Tensor, item_weight: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The Triton path (``asrec.kernels.target_ranks``): (B,) int64 ranks, -1 for a row with a NaN score."""
    from ..kernels.target_ranks import target_ranks_triton

    return target_ranks_triton(hidden, item_weight, targets)


@target_ranks_launch.register_fake
def target_ranks_fake(hidden, item_weight, targets):
    return hidden.new_empty(hidden.shape[0], dtype=torch.int64)


def _triton(hidden, item_weight, targets):
    return target_ranks_launch(hidden, item_weight, targets)


def _triton_unsupported(hidden, item_weight, targets):
    from ..kernels.target_ranks import unsupported

    return unsupported(hidden, item_weight, targets)


backends.register("target_ranks", target_ranks_ref, triton=backends.FusedKernel(_triton, _triton_unsupported))


def target_ranks(hidden: torch.Tensor, item_weight: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Each target's 0-based rank among the real items: hidden (batch, H) float, item_weight
    (n_items, H) float, targets (batch,) integer ids in [1, n_items) -> (batch,) int64, the
    number of items 1..n_items-1 scored strictly higher than the target (the padding item
    never counts; ties count for the target), -1 for a row with a NaN score (see
    ``asrec.reference.target_ranks.target_ranks_ref``). Memory O(batch x item tile)."""
    _contract.check_scoring("target_ranks", hidden, item_weight, targets=targets)
    args = (hidden, item_weight, targets)
    return backends.dispatch("target_ranks", hidden.device, *args)(*args)
