"""The Triton keep-mask (asrec/kernels/frequency_keep_mask.py) against the reference's mask code:
the same bits on the same energies, ties, zeros and every quantile level included (the mask
is a hard threshold: DESIGN.md)."""

import pytest
import torch

from asrec.reference.frequency_filter import frequency_keep_mask, full_spectrum_index, quantile

from ..triton_support import DEVICE

kernels = pytest.importorskip("asrec.kernels.frequency_filter")
keep_mask_kernels = pytest.importorskip("asrec.kernels.frequency_keep_mask")


def _sequences(batch, groups, seq_len, hidden):
    """(B*G, N, H) float32 rows ``b * G + g`` with ties: a repeated sequence, an all-zero one and a
    constant one (energy only at bin 0) among random ones."""
    y = torch.randn(batch, groups, seq_len, hidden, device=DEVICE)
    if batch > 1:
        y[-1] = y[0]
    if batch > 2:
        y[1, 0] = 0.0
        y[2, -1] = 1.5
    return y.reshape(batch * groups, seq_len, hidden).contiguous()


@pytest.mark.parametrize("seq_len", [1, 2, 7, 12, 50])
@pytest.mark.parametrize("batch,groups", [(1, 1), (3, 1), (5, 3)])
@pytest.mark.parametrize("scope", ["batch", "sequence"])
def test_mask_equals_the_reference_mask_of_the_kernel_energies(seq_len, batch, groups, scope):
    y = _sequences(batch, groups, seq_len, 8)
    energy = kernels._frequency_energy(y).view(batch, groups, -1)
    for q in (0.0, 0.5, 0.8, 1.0):
        threshold = torch.tensor(q, device=DEVICE)
        ours = kernels._frequency_keep(y, batch, groups, threshold, scope).view(batch, groups, -1)
        expected = frequency_keep_mask(energy, seq_len, threshold, scope, host_ranks=False).float()
        assert torch.equal(ours, expected), (q, (ours != expected).nonzero().tolist())


def _reference_group_mask(values, seq_len, q):
    """(B, G, K) normalised values -> the batch-scope mask, the reference's quantile code."""
    full = values[..., full_spectrum_index(seq_len, values.device)]
    cutoff = quantile(full.transpose(0, 1).flatten(1), q, host_ranks=False)[None, :, None]
    return (values > cutoff).float()


@pytest.mark.parametrize("batch,seq_len,row_blocks", [(1, 1, 1), (4, 9, 1), (300, 50, 3), (70, 200, 3)])
def test_group_quantile_on_tie_heavy_values_over_several_row_blocks(batch, seq_len, row_blocks):
    """Values from a few levels (every order statistic tied), zeros and infinities, over batches
    of one and of several (BLOCK_B, BLOCK_K) tiles."""
    groups, bins = 3, seq_len // 2 + 1
    assert -(-batch // keep_mask_kernels.keep_mask_blocks(batch, bins)["BLOCK_B"]) == row_blocks
    values = torch.randint(0, 6, (batch, groups, bins), device=DEVICE).float() / 4
    values[0, 0, 0] = float("inf")
    for q in torch.linspace(0, 1, 11).tolist() + [0.123456]:
        threshold = torch.tensor(q, device=DEVICE)
        ours = keep_mask_kernels._frequency_keep_mask(values.clone().view(batch * groups, bins), batch, groups,
                                                      threshold, seq_len).view(batch, groups, bins)
        assert torch.equal(ours, _reference_group_mask(values, seq_len, threshold)), q


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16, torch.float16])
def test_threshold_of_any_float_dtype_is_read_as_the_reference_reads_it(dtype):
    batch, groups, seq_len = 6, 3, 12
    y = _sequences(batch, groups, seq_len, 8)
    energy = kernels._frequency_energy(y).view(batch, groups, -1)
    threshold = torch.tensor(0.7001, device=DEVICE, dtype=dtype)
    for scope in ("batch", "sequence"):
        ours = kernels._frequency_keep(y, batch, groups, threshold, scope).view(batch, groups, -1)
        expected = frequency_keep_mask(energy, seq_len, threshold, scope, host_ranks=False).float()
        assert torch.equal(ours, expected)


def test_random_energies_at_the_published_shape_match_bit_for_bit():
    """Continuous energies (no ties): the interpolated cutoff falls between two order statistics."""
    batch, groups, seq_len = 64, 3, 50
    y = torch.randn(batch * groups, seq_len, 16, device=DEVICE)
    energy = kernels._frequency_energy(y).view(batch, groups, -1)
    for q in (0.8, 0.5, 0.95):
        threshold = torch.tensor(q, device=DEVICE)
        ours = kernels._frequency_keep(y, batch, groups, threshold, "batch").view(batch, groups, -1)
        assert torch.equal(ours, frequency_keep_mask(energy, seq_len, threshold, host_ranks=False).float())
