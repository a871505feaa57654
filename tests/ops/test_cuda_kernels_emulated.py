"""The CUDA kernels of csrc/, compiled for the host over an emulated thread block
(tests/cuda_emulation), through the same autograd Functions and op wrappers as on a GPU,
against float64 math. This checks their indexing, phase order, reductions, dropout bits
and gradients where there is no GPU; tests/test_gpu_cuda.py runs the built extension."""

import ctypes
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from asrec import _cuda_extension
from asrec.ops.frequency_filter import FrequencyFilterCudaFn
from asrec.ops.input_stage import InputStageCudaFn
from asrec.reference import frequency_keep_mask, input_stage_ref

from ..cuda_emulation import emulated
from ..input_stage_support import input_tables, padded_ids
from ..oracle import filter_f64_and_grads

pytestmark = pytest.mark.skipif(emulated.compiler() is None, reason="needs a C++ compiler (c++ or g++)")

EPS = 1e-12


@pytest.fixture(autouse=True)
def _emulated_kernels(monkeypatch):
    try:
        emulated.library()
    except subprocess.CalledProcessError as error:
        if torch.cuda.is_available():  # a GPU machine tests the built kernels instead (test_cuda_ops.py)
            pytest.skip(f"the host emulation does not compile here ({error}); the GPU tests run the kernels")
        raise
    monkeypatch.setattr(_cuda_extension, "kernel_ops", emulated.kernel_ops())


def _fixed_seed(monkeypatch, seed, offset=0):
    """Every dropping call draws the Philox state (seed, offset)."""
    monkeypatch.setattr(sys.modules["asrec.ops._dropout"], "dropout_rng",
                        lambda device: torch.tensor([seed, offset], device=device))


def _dropout_factors(shape, seed, p, offset=0):
    """The kernels' own dropout factors of elements 0..numel-1 under the state (seed, offset),
    read through a pointer as the kernels read it (from the compiled Philox)."""
    lib = emulated.library()
    rng = torch.tensor([seed, offset])
    numel = torch.Size(shape).numel()
    return torch.tensor([lib.emulated_dropout_factor_at(ctypes.c_void_p(rng.data_ptr()), i, p)
                         for i in range(numel)]).view(shape)


# ---- dropout bits ----

def _philox_first_word(seed, offset):
    """Philox4x32-10, first word: an independent transcription (Salmon et al. 2011) with
    Triton's conventions (key = seed lo/hi, counter = offset lo/hi, 0, 0)."""
    mask = 0xFFFFFFFF
    c0, c1, c2, c3 = offset & mask, offset >> 32, 0, 0
    k0, k1 = seed & mask, seed >> 32
    for _ in range(10):
        p0, p2 = 0xD2511F53 * c0, 0xCD9E8D57 * c2
        c0, c1, c2, c3 = ((p2 >> 32) ^ c1 ^ k0) & mask, p2 & mask, ((p0 >> 32) ^ c3 ^ k1) & mask, p0 & mask
        k0, k1 = (k0 + 0x9E3779B9) & mask, (k1 + 0xBB67AE85) & mask
    return c0


@pytest.mark.parametrize("seed", [0, 77, 2**31 - 2])
def test_dropout_bits_are_philox_with_tritons_conventions(seed):
    lib = emulated.library()
    offsets = list(range(0, 64)) + [2**31 - 1, 2**32 - 1, 2**32, 2**32 + 5, 3 * 2**40 + 17]
    for offset in offsets:
        bits = _philox_first_word(seed, offset)
        folded = bits if bits < 2**31 else 2**32 - 1 - bits  # ~x of the int32 reading
        uniform = torch.tensor(folded, dtype=torch.float32) * torch.tensor(4.6566127342e-10, dtype=torch.float32)
        p = torch.tensor(0.3, dtype=torch.float32)
        expected = (1.0 / (1.0 - p)).item() if uniform >= p else 0.0
        assert lib.emulated_dropout_factor(seed, offset, 0.3) == expected, (seed, offset)


def test_dropout_bits_equal_tritons_mask():
    pytest.importorskip("triton")
    from ..triton_support import kernel_dropout_factors

    for seed, p in [(77, 0.5), (1234, 0.3), (2**31 - 2, 0.1)]:
        torch.testing.assert_close(_dropout_factors((4096,), seed, p), kernel_dropout_factors(4096, seed, p, "cpu"),
                                   rtol=0, atol=0)


def test_dropout_bits_at_a_state_equal_tritons_mask():
    """The state (seed, offset) as the kernels read it: 64-bit seeds, counters across 2^32."""
    pytest.importorskip("triton")
    from ..triton_support import kernel_dropout_factors

    for seed, offset, p in [(77, 2**32 - 300, 0.5), (2**61 + 3, 2**40 + 7, 0.3), (2**62 - 1, 0, 0.1)]:
        torch.testing.assert_close(_dropout_factors((600,), seed, p, offset),
                                   kernel_dropout_factors(600, seed, p, "cpu", offset=offset), rtol=0, atol=0)


# ---- input stage ----

def _stage(run, ids, tables, mix, grad, dropout_p=0.0, training=False):
    t = tables
    out = run(ids, t["item_weight"], t["position_weight"], t["norm_weight"], t["norm_bias"], EPS, dropout_p,
              training, t["smoothing_logit"], t["init_level"], t["smoothed_scale"], mix)
    return (out, *torch.autograd.grad(out, list(tables.values()), grad))


def _stage_f64(factors=None):
    """input_stage_ref in float64, the dropout factors (B, N, H) applied after the LayerNorm."""
    def run(ids, item_weight, position_weight, norm_weight, norm_bias, eps, dropout_p, training, logit, level, scale,
            mix):
        from asrec.reference import fourier_smoothing_ref

        d = [t.double() for t in (item_weight, position_weight, norm_weight, norm_bias, logit, level, scale)]
        seq_len = ids.shape[1]
        embedded = F.embedding(ids, d[0], padding_idx=0) + d[1][:seq_len]  # the padding row gets no gradient
        y = F.layer_norm(embedded, (d[0].shape[1],), d[2], d[3], eps)
        if factors is not None:
            y = y * factors.double()
        return fourier_smoothing_ref(y, d[4], d[5], d[6], mix)
    return run


STAGE_NAMES = ("out", "item_weight", "position_weight", "norm_weight", "norm_bias", "smoothing_logit", "init_level",
               "smoothed_scale")


@pytest.mark.parametrize("seq_len,hidden", [(1, 8), (7, 24), (12, 40), (50, 64)])
@pytest.mark.parametrize("mix", [1.0, 0.4])
def test_input_stage_forward_and_gradients(seq_len, hidden, mix):
    ids = padded_ids(3, seq_len, 30)
    tables = input_tables(30, seq_len, hidden, position_rows=seq_len + 2)
    grad = torch.randn(3, seq_len, hidden)
    ours = _stage(InputStageCudaFn.apply, ids, tables, mix, grad)
    expected = _stage(_stage_f64(), ids, tables, mix, grad.double())
    for name, a, b in zip(STAGE_NAMES, ours, expected):
        torch.testing.assert_close(a.double(), b.double(), rtol=2e-5, atol=2e-5, msg=lambda m, name=name: f"{name}: {m}")
    assert ours[1][0].abs().max() == 0, "the padding item's row must get no gradient"
    torch.testing.assert_close(ours[0], input_stage_ref(ids, *[tables[k] for k in STAGE_NAMES[1:5]], EPS, 0.0, False,
                                                        *[tables[k] for k in STAGE_NAMES[5:]], mix),
                               rtol=1e-5, atol=1e-5)


def test_input_stage_dropout_forward_and_backward_use_one_mask(monkeypatch):
    _fixed_seed(monkeypatch, 77, 2**32 - 500)  # the call's counters cross 2^32
    ids = padded_ids(3, 12, 20)
    tables = input_tables(20, 12, 24, position_rows=14)
    grad = torch.randn(3, 12, 24)
    ours = _stage(InputStageCudaFn.apply, ids, tables, 0.4, grad, dropout_p=0.3, training=True)
    expected = _stage(_stage_f64(_dropout_factors((3, 12, 24), 77, 0.3, 2**32 - 500)), ids, tables, 0.4, grad.double())
    for name, a, b in zip(STAGE_NAMES, ours, expected):
        torch.testing.assert_close(a.double(), b.double(), rtol=2e-5, atol=2e-5, msg=lambda m, name=name: f"{name}: {m}")


# ---- frequency filter ----

def _norm(hidden):
    return (1 + 0.1 * torch.randn(hidden)).requires_grad_(), (0.1 * torch.randn(hidden)).requires_grad_()


def _kernel_keep(y, q):
    batch, groups, seq_len, hidden = y.shape
    energy = emulated.frequency_energy(y.reshape(-1, seq_len, hidden)).view(batch, groups, -1)
    return frequency_keep_mask(energy, seq_len, torch.tensor(q)).float()


def _filter_f64(y, keep, weight, bias, grad, factors=None):
    return filter_f64_and_grads(y, keep, weight, bias, grad, EPS, factors)


def _filter(y, weight, bias, grad, q=0.8, dropout_p=0.5, training=False):
    out = FrequencyFilterCudaFn.apply(y, torch.tensor(q), weight, bias, EPS, dropout_p, training, "batch")
    return (out, *torch.autograd.grad(out, (y, weight, bias), grad))


def test_energies_match_float64_rfft():
    y = torch.randn(5, 12, 40)
    exact = torch.fft.rfft(y.double(), dim=1).abs().square().sum(-1)
    torch.testing.assert_close(emulated.frequency_energy(y).double(), exact, rtol=2e-5, atol=1e-4)


@pytest.mark.parametrize("seq_len,hidden", [(1, 8), (7, 8), (12, 24), (13, 40), (50, 64)])
def test_filter_forward_and_gradients(seq_len, hidden):
    y = torch.randn(3, 3, seq_len, hidden, requires_grad=True)
    weight, bias = _norm(hidden)
    grad = torch.randn_like(y)
    keep = _kernel_keep(y.detach(), 0.8)
    for name, a, b in zip(("out", "dy", "dweight", "dbias"), _filter(y, weight, bias, grad),
                          _filter_f64(y, keep, weight, bias, grad)):
        torch.testing.assert_close(a.double(), b.double(), rtol=2e-5, atol=2e-5, msg=lambda m, name=name: f"{name}: {m}")


def test_filter_dropout_forward_and_backward_use_one_mask(monkeypatch):
    _fixed_seed(monkeypatch, 1234, 5)
    y = torch.randn(2, 3, 12, 24, requires_grad=True)
    weight, bias = _norm(24)
    grad = torch.randn_like(y)
    keep = _kernel_keep(y.detach(), 0.8)
    ours = _filter(y, weight, bias, grad, training=True)
    expected = _filter_f64(y, keep, weight, bias, grad, _dropout_factors(y.shape, 1234, 0.5, 5))
    for name, a, b in zip(("out", "dy", "dweight", "dbias"), ours, expected):
        torch.testing.assert_close(a.double(), b.double(), rtol=2e-5, atol=2e-5, msg=lambda m, name=name: f"{name}: {m}")
