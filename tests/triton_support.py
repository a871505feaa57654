"""Shared pieces of the Triton backend tests: the device to run on, float64 oracles that
take the kernels' own keep-mask and dropout factors, and the low-precision criterion."""

import pytest
import torch
import torch.nn.functional as F

from asrec.reference.frequency_filter import frequency_keep_mask

triton = pytest.importorskip("triton", reason="the Triton backend tests need triton (pip install triton)")

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"  # CPU: Triton's interpreter (tests/conftest.py)


def kernel_keep(y, q, scope="batch"):
    """The keep-mask the Triton filter uses for y (B, G, N, H): kernel energies, reference mask code.
    Returns (B, G, K) float32 0/1."""
    from asrec.kernels.frequency_filter import _frequency_energy

    batch, groups, seq_len, hidden = y.shape
    energy = _frequency_energy(y.reshape(batch * groups, seq_len, hidden).contiguous()).view(batch, groups, -1)
    return frequency_keep_mask(energy, seq_len, torch.as_tensor(q, device=y.device), scope).float()


def filter_with_mask_f64(y, keep_half, weight, bias, eps, factors=None):
    """SPEC 3 in float64 with a given half-spectrum mask (B, G, K) and dropout factors (B, G, N, H)."""
    y = y.double()
    spectrum = torch.fft.rfft(y, dim=-2) * keep_half.double()[..., None]
    filtered = torch.fft.irfft(spectrum, n=y.shape[-2], dim=-2)
    if factors is not None:
        filtered = filtered * factors.double()
    return F.layer_norm(filtered + y, (y.shape[-1],), weight.double(), bias.double(), eps)


def assert_low_precision_close(actual, exact, reference_low):
    """The flash-attention criterion: a fused result's error against the float64 answer stays
    within twice the error of the reference run in the same low dtype (plus float32 slack)."""
    ours = (actual.double() - exact).abs().max().item()
    theirs = (reference_low.double() - exact).abs().max().item()
    assert ours <= 2 * theirs + 1e-5 * exact.abs().max().item(), f"fused error {ours:.3g} vs reference {theirs:.3g}"
