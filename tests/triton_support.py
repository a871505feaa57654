"""Shared pieces of the Triton backend tests: the device to run on, float64 oracles that
take the kernels' own keep-mask and dropout factors, and the low-precision criterion."""

import pytest
import torch

from asrec.reference.frequency_filter import frequency_keep_mask

from .oracle import filter_with_mask_f64  # noqa: F401  (the tests import it from here too)

triton = pytest.importorskip("triton", reason="the Triton backend tests need triton (pip install triton)")
import triton.language as tl  # noqa: E402

from asrec.kernels._common import _dropout_scale  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"  # CPU: Triton's interpreter (tests/conftest.py)


@triton.jit
def _dropout_factors_kernel(out_ptr, numel, rng_ptr, p, BLOCK: tl.constexpr):
    # module level: the interpreter re-parses a kernel's source against its module globals
    # (a closure's names would be lost)
    offsets = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    tl.store(out_ptr + offsets, _dropout_scale(rng_ptr, offsets, p), mask=offsets < numel)


def rng_state(seed: int, offset: int = 0, device=DEVICE) -> torch.Tensor:
    """A fixed dropout Philox state: the (2,) int64 (seed, offset) tensor the kernels read."""
    return torch.tensor([seed, offset], dtype=torch.int64, device=device)


def fix_dropout_rng(monkeypatch, seed: int, offset: int = 0) -> None:
    """Make every dropping call draw the Philox state (seed, offset) (asrec.ops._dropout.dropout_rng)."""
    import sys

    monkeypatch.setattr(sys.modules["asrec.ops._dropout"], "dropout_rng",
                        lambda device: rng_state(seed, offset, device))


def kernel_dropout_factors(numel: int, seed: int, p: float, device, offset: int = 0) -> torch.Tensor:
    """The (numel,) float32 dropout factors the kernels use for state ``(seed, offset)`` and
    ``p`` at elements ``0..numel-1``, so a test can rebuild the reference with the kernels' own mask."""
    out = torch.empty(numel, device=device, dtype=torch.float32)
    block = 1024
    _dropout_factors_kernel[(triton.cdiv(numel, block),)](out, numel, rng_state(seed, offset, device), p,
                                                            BLOCK=block)
    return out


def kernel_keep(y, q, scope="batch"):
    """The keep-mask the Triton filter uses for y (B, G, N, H): kernel energies, reference mask code.
    Returns (B, G, K) float32 0/1."""
    from asrec.kernels.frequency_filter import _frequency_energy

    batch, groups, seq_len, hidden = y.shape
    energy = _frequency_energy(y.reshape(batch * groups, seq_len, hidden).contiguous()).view(batch, groups, -1)
    return frequency_keep_mask(energy, seq_len, torch.as_tensor(q, device=y.device), scope).float()


def assert_low_precision_close(actual, exact, reference_low):
    """The flash-attention criterion: a fused result's error against the float64 answer stays
    within twice the error of the reference run in the same low dtype (plus float32 slack)."""
    ours = (actual.double() - exact).abs().max().item()
    theirs = (reference_low.double() - exact).abs().max().item()
    assert ours <= 2 * theirs + 1e-5 * exact.abs().max().item(), f"fused error {ours:.3g} vs reference {theirs:.3g}"


def past_the_contract(op: str, backend: str):
    """The implementation of ``op`` on ``backend`` as ``backends.plan`` names it, without the op's
    boundary: where a call on a GPU arrives with index values the contract does not read (on
    CPU tensors the contract refuses them first)."""
    from asrec import backends

    return backends.plan(op, "cuda", None, backend).run
