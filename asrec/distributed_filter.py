"""The frequency filter's batch-wide threshold across data-parallel processes (issue 26).

With ``scope="batch"`` the filter keeps the bins above one quantile of the whole batch's
normalised energies (SPEC section 3). When K processes each hold a share of the batch, a
process alone sees only its share's energies; inside ``with distributed_filter(shares):`` every
filter call with ``scope="batch"`` all-gathers the per-sequence values its
threshold needs (a (rows, G, N//2 + 1) float tensor per call: tiny next to the activations),
takes the quantile over the whole batch exactly as one process does, and keeps its own rows
of the mask. The mask is a hard threshold without a gradient, so backward is unchanged.

The context states "the filter calls inside belong to one batch dealt as ``shares``": it is
explicit, and outside it (one process, evaluation, ``asrec train`` on one device) nothing is
gathered: the op is the single-process op. ``asrec train`` enters it around each training
step's forward only; its evaluation deals whole batches to processes and never enters it.
Inside, the model's mode does not matter (an eval-mode forward, dropout off, gathers too).

No host synchronisation: every share size is known on the host before the step (from the
deal plan), so the gather's sizes are Python integers; the one-tensor all-gather needs equal
sizes, so each share is padded to the largest and the padding rows are dropped after the
gather (a quantile does not depend on the order of its values).
"""

import contextlib
from collections.abc import Sequence
from typing import Callable, NamedTuple, Optional

import torch
import torch.distributed as dist


class FilterGather(NamedTuple):
    """One step's deal: ``shares[r]`` sequences of the batch are on rank ``r`` of ``group``
    (``None``: the default group). A rank whose share is 0 still calls the filter (on a
    stand-in row that ``asrec train`` weighs 0) and still joins every gather."""

    shares: tuple
    group: Optional[object] = None


# The deal of the enclosing ``distributed_filter`` context, or None. A module global rather
# than a ContextVar: torch.compile traces a global's read (and guards on it), but cannot trace
# ``ContextVar.get``. The context is per process, as the process group is: not thread-local.
_active_plan: Optional[FilterGather] = None


@contextlib.contextmanager
def distributed_filter(shares: Sequence[int], group=None):
    """Inside: training-mode ``scope="batch"`` filter calls take their threshold over the
    whole batch dealt as ``shares`` (sequences per rank of ``group``, rank order).

    Every rank of the group must enter it with the same ``shares`` and run the same filter
    calls (as DDP's ranks run the same model); each call is one collective."""
    if not dist.is_available() or not dist.is_initialized():
        raise ValueError("distributed_filter: no torch.distributed process group is initialised")
    shares = tuple(shares)
    world = dist.get_world_size(group)
    if len(shares) != world:
        raise ValueError(f"distributed_filter: shares must give one size per rank of the group ({world}), "
                         f"got {len(shares)}")
    if any(not isinstance(s, int) or isinstance(s, bool) or s < 0 for s in shares) or not any(shares):
        raise ValueError(f"distributed_filter: shares must be non-negative ints with a positive total, got {shares}")
    global _active_plan
    outer, _active_plan = _active_plan, FilterGather(shares, group)
    try:
        yield
    finally:
        _active_plan = outer


def active_gather(scope: str) -> Optional[FilterGather]:
    """The deal a filter call must gather over, or None (no context, or ``scope="sequence"``,
    whose threshold is per sequence)."""
    plan = _active_plan
    return plan if plan is not None and scope == "batch" else None


def _all_gather_single():
    """torch's equal-size all-gather into one tensor: ``all_gather_single`` (torch 2.13 names it
    so and deprecates ``all_gather_into_tensor``, which earlier releases have)."""
    return getattr(dist, "all_gather_single", None) or dist.all_gather_into_tensor


def whole_batch_rows(local: torch.Tensor, plan: FilterGather) -> tuple:
    """local: (B_local, ...) this rank's rows -> (whole (B, ...), offset): every other rank's
    share rows and, at ``offset`` (the sequences before this rank's share), ``local`` itself.

    B is the batch size, except on a rank whose share is 0: its B_local stand-in rows join its
    own ``whole`` (what it computes is weighed 0). One all-gather (``all_gather_single``) of
    (world * max(shares), ...) values; its sizes are host integers (no device read)."""
    group = plan.group
    rank, world = dist.get_rank(group), dist.get_world_size(group)
    rows = max(plan.shares)
    mine = plan.shares[rank]
    if local.shape[0] != mine and not (mine == 0 and local.shape[0] <= rows):
        raise ValueError(f"distributed_filter: rank {rank} filters {local.shape[0]} sequences, but the context's "
                         f"shares {plan.shares} give it {mine}")
    send = local.new_zeros((rows, *local.shape[1:]))
    send[:local.shape[0]] = local
    gathered = local.new_empty((world * rows, *local.shape[1:]))
    _all_gather_single()(gathered, send, group=group)
    blocks = gathered.view(world, rows, *local.shape[1:])
    parts = [local if r == rank else blocks[r, :plan.shares[r]] for r in range(world)]
    return torch.cat(parts), sum(plan.shares[:rank])


def keep_over_whole_batch(local: torch.Tensor, keep_of: Callable[[torch.Tensor], torch.Tensor],
                          plan: Optional[FilterGather]) -> torch.Tensor:
    """``keep_of`` (B, G, K) per-sequence values -> (B, G, K) keep-mask, applied to the whole
    batch's rows when ``plan`` is given, and this rank's rows of the result returned.

    local: (B_local, G, K) batch-major values (energies or normalised energies) whose keep
    depends on the other rows only through the batch quantile; -> (B_local, G, K). Without a
    plan, ``keep_of(local)``: the single-process op, no collective."""
    if plan is None:
        return keep_of(local)
    whole, offset = whole_batch_rows(local, plan)
    return keep_of(whole)[offset:offset + local.shape[0]]
