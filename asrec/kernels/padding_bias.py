"""The attention's key-padding bias and each sequence's last position, from the item ids and
lengths in one launch (the published code builds them in three elementwise kernels).

One program per sequence: ``bias[b, n] = -10000`` where ``item_seq[b, n] == 0`` (padding),
else ``-0.0`` (the published ``(item == 0) * -10000`` gives negative zero there; no sum with a
score can tell), and ``last[b] = item_seq_len[b] - 1``.
"""

import torch
import triton
import triton.language as tl

PADDING_BIAS = tl.constexpr(-10000.0)
# Tools that skip interpreted kernels to count or record launches (benchmarks/count_launches.py,
# tests/triton_aot/record_launches.py) still run these: a CPU gather checks the positions they
# write, where on a GPU only device code reads them.
RUN_WHEN_SKIPPING = frozenset({"_padding_bias_kernel"})


@triton.jit
def _padding_bias_kernel(item_seq_ptr, lengths_ptr, bias_ptr, last_ptr, seq_len, HAS_LENGTHS: tl.constexpr,
                         BLOCK_N: tl.constexpr):
    sequence = tl.program_id(0).to(tl.int64)
    positions = tl.arange(0, BLOCK_N)
    in_bounds = positions < seq_len
    items = tl.load(item_seq_ptr + sequence * seq_len + positions, mask=in_bounds, other=1)
    tl.store(bias_ptr + sequence * seq_len + positions, tl.where(items == 0, PADDING_BIAS, -0.0), mask=in_bounds)
    if HAS_LENGTHS:
        tl.store(last_ptr + sequence, tl.load(lengths_ptr + sequence).to(tl.int64) - 1)


def _padding_bias(item_seq, item_seq_len=None):
    """item_seq: (B, N) integer ids, contiguous; item_seq_len: (B,) or None -> (bias (B, N) float32,
    last (B,) int64 or None)."""
    batch, seq_len = item_seq.shape
    bias = torch.empty((batch, seq_len), device=item_seq.device, dtype=torch.float32)
    has_lengths = item_seq_len is not None
    last = torch.empty(batch, device=item_seq.device, dtype=torch.int64) if has_lengths else None
    if batch == 0:
        return bias, last
    _padding_bias_kernel[(batch,)](item_seq, item_seq_len if has_lengths else item_seq, bias,
                                   last if has_lengths else bias, seq_len, HAS_LENGTHS=has_lengths,
                                   BLOCK_N=max(16, triton.next_power_of_2(seq_len)), num_warps=1)
    return bias, last
