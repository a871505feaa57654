"""The Triton filter's keep-mask with the threshold over the whole batch of several processes
(``asrec.distributed_filter``): the same two kernels as ``kernels.frequency_filter._frequency_keep``
with an all-gather between them."""

import torch

from ..distributed_filter import FilterGather, keep_over_whole_batch


def triton_whole_batch_keep(flat: torch.Tensor, batch: int, groups: int, threshold: torch.Tensor,
                            group_major: bool, plan: FilterGather) -> torch.Tensor:
    """flat: (B*G, N, H) contiguous, rows ``b * G + g`` (``g * B + b`` with ``group_major``) ->
    (B*G, N//2 + 1) float32 0/1 keep-mask, rows as flat's, ``scope="batch"``.

    The energy kernel writes each sequence's median-normalised energies (a per-sequence
    program: the values one process computes for that row); these are all-gathered into the
    whole batch's (B_total, G, K) rows, the group kernel selects each group's quantile over
    them and writes the whole batch's mask (an exact selection, independent of the rows'
    order: the one-process bits), and this rank's rows are returned."""
    from ..kernels.frequency_filter import NORMALISED, _energy_launch
    from ..kernels.frequency_keep_mask import _frequency_keep_mask

    seq_len = flat.shape[1]
    normalised = _energy_launch(flat, threshold, NORMALISED)  # (B*G, K)
    bins = normalised.shape[1]
    local = (normalised.view(groups, batch, bins).transpose(0, 1) if group_major
             else normalised.view(batch, groups, bins))  # (B, G, K)

    def keep_of(values):  # (B_total, G, K), a fresh tensor (the gather's): the kernel overwrites it
        rows = values.contiguous()
        return _frequency_keep_mask(rows.view(-1, bins), rows.shape[0], groups, threshold, seq_len).view(rows.shape)

    keep = keep_over_whole_batch(local, keep_of, plan)  # (B, G, K)
    return (keep.transpose(0, 1) if group_major else keep).contiguous().view(-1, bins)
