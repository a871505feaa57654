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


def _group_values(kind, batch, groups, bins, generator):
    """(B, G, K) non-negative float32 values of one kind, chosen to exercise every digit of the
    radix select: equal values, a few levels, values differing only in their low mantissa bits
    (the top three digits tied), values spread over many exponents, and zeros."""
    shape = (batch, groups, bins)
    if kind == "equal":
        return torch.full(shape, 0.75)
    if kind == "levels":
        return torch.randint(0, 3, shape, generator=generator).float() / 2
    if kind == "low_bits":
        return 1.0 + torch.randint(0, 300, shape, generator=generator).float() * 2.0 ** -23
    if kind == "exponents":
        return torch.rand(shape, generator=generator) * 2.0 ** torch.randint(-120, 120, shape, generator=generator)
    return torch.zeros(shape)


@pytest.mark.parametrize("batch", [1, 3, 257])
@pytest.mark.parametrize("seq_len", [1, 6])
@pytest.mark.parametrize("group_major", [False, True])
def test_group_quantile_of_ties_equal_values_and_every_digit(batch, seq_len, group_major):
    """The radix select's threshold is the reference's bit for bit: all-equal values, few
    levels, values tied in their top digits, values over many exponents, zeros; N = 1 (one bin)
    and N = 6; batches of 1, 3 and 257 (several row blocks); both row layouts."""
    groups, bins = 3, seq_len // 2 + 1
    generator = torch.Generator().manual_seed(batch * 10 + seq_len)
    for kind in ("equal", "levels", "low_bits", "exponents", "zeros"):
        values = _group_values(kind, batch, groups, bins, generator).to(DEVICE)
        stored = values.transpose(0, 1) if group_major else values  # rows g * B + b, or b * G + g
        for q in (0.0, 0.3, 0.5, 0.8, 1.0):
            threshold = torch.tensor(q, device=DEVICE)
            ours = keep_mask_kernels._frequency_keep_mask(stored.contiguous().view(batch * groups, bins), batch,
                                                          groups, threshold, seq_len, group_major=group_major)
            ours = ours.view(stored.shape)
            ours = ours.transpose(0, 1) if group_major else ours
            assert torch.equal(ours, _reference_group_mask(values, seq_len, threshold)), (kind, q)


def test_keep_mask_is_deterministic():
    values = _group_values("low_bits", 40, 3, 26, torch.Generator().manual_seed(1)).view(120, 26)
    threshold = torch.tensor(0.8)
    first = keep_mask_kernels._frequency_keep_mask(values.clone().to(DEVICE), 40, 3, threshold.to(DEVICE), 50)
    again = keep_mask_kernels._frequency_keep_mask(values.clone().to(DEVICE), 40, 3, threshold.to(DEVICE), 50)
    assert torch.equal(first, again)
