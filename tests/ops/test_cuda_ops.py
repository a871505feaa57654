"""The built CUDA extension (asrec._C) on a GPU: each op against float64 math and the
reference at the published shapes in float32/bfloat16/float16, its dropout against the
Triton kernels' (same Philox bits, same seed: the input stage equal to Triton's, the filter
equal to float64 math on Triton's dropout factors), its registrations (opcheck), its argument
checks, the model on the "cuda" backend, and a torch.compile capture. Skipped without a
GPU; on a GPU without the built extension they skip, or fail when
ASREC_REQUIRE_CUDA_EXTENSION=1 (benchmarks/gpu_check.sh sets it)."""

import os
import sys

import pytest
import torch

import asrec
from asrec import backends
from asrec.ops import frequency_filter, input_stage
from asrec.reference import frequency_keep_mask

from ..input_stage_support import input_tables, padded_ids, run_input_stage
from ..oracle import filter_f64_and_grads

pytestmark = pytest.mark.gpu
EPS = 1e-12
DEVICE = "cuda"


@pytest.fixture(autouse=True)
def _extension():
    reason = backends.cuda_missing_reason() if torch.cuda.is_available() else "no GPU"
    if reason is not None:
        if os.environ.get("ASREC_REQUIRE_CUDA_EXTENSION", "0") not in ("", "0"):
            pytest.fail(reason)
        pytest.skip(reason)


def _fixed_seed(monkeypatch, seed, offset=0):
    """Every dropping call draws the Philox state (seed, offset)."""
    monkeypatch.setattr(sys.modules["asrec.ops._dropout"], "dropout_rng",
                        lambda device: torch.tensor([seed, offset], device=device))


def _low_precision_close(actual, exact, reference_low):
    """flash-attention's criterion: error vs float64 within twice the reference's own in that dtype."""
    ours = (actual.double() - exact).abs().max().item()
    theirs = (reference_low.double() - exact).abs().max().item()
    assert ours <= 2 * theirs + 1e-5 * exact.abs().max().item(), f"cuda error {ours:.3g} vs reference {theirs:.3g}"


# ---- input stage ----

def _tables(n_items, seq_len, hidden, dtype=torch.float32):
    return input_tables(n_items, seq_len, hidden, DEVICE, dtype)


def _padded_ids(batch, seq_len, n_items):
    return padded_ids(batch, seq_len, n_items, DEVICE)


def _stage(backend, ids, tables, mix, grad, dropout_p=0.0, training=False):
    return run_input_stage(backend, ids, tables, mix, grad, EPS, dropout_p, training)


@pytest.mark.parametrize("seq_len,hidden", [(7, 24), (50, 256), (200, 64)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_input_stage_against_float64(seq_len, hidden, dtype):
    ids = _padded_ids(256, seq_len, 5000)
    tables = _tables(5000, seq_len, hidden, dtype)
    grad = torch.randn(256, seq_len, hidden, device=DEVICE)
    ours = _stage("cuda", ids, tables, 0.4, grad)
    exact = _stage("reference", ids, {k: v.detach().double().requires_grad_() for k, v in tables.items()}, 0.4,
                   grad.double())
    low = _stage("reference", ids, tables, 0.4, grad)
    for a, b, c in zip(ours, exact, low):
        _low_precision_close(a, b, c)
    assert ours[1][0].abs().max() == 0, "the padding item's row must get no gradient"


def test_input_stage_dropout_equals_tritons(monkeypatch):
    pytest.importorskip("triton")
    _fixed_seed(monkeypatch, 2**61 + 77, 2**32 - 1000)  # 64-bit key, counters across 2^32
    ids = _padded_ids(64, 50, 300)
    tables = _tables(300, 50, 64)
    grad = torch.randn(64, 50, 64, device=DEVICE)
    for a, b in zip(_stage("cuda", ids, tables, 0.4, grad, 0.3, True),
                    _stage("triton", ids, tables, 0.4, grad, 0.3, True)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


# ---- frequency filter ----

def _norm(hidden):
    return ((1 + 0.1 * torch.randn(hidden, device=DEVICE)).requires_grad_(),
            (0.1 * torch.randn(hidden, device=DEVICE)).requires_grad_())


def _kernel_keep(y, q):
    batch, groups, seq_len, hidden = y.shape
    energy = torch.ops.asrec_cuda.frequency_energy(y.reshape(-1, seq_len, hidden).contiguous())
    return frequency_keep_mask(energy.view(batch, groups, -1), seq_len, torch.tensor(q, device=DEVICE)).float()


def _filter(backend, y, weight, bias, grad, dropout_p=0.5, training=False):
    with asrec.use_backend(backend):
        out = frequency_filter(y, torch.tensor(0.8, device=DEVICE), weight, bias, EPS, dropout_p, training)
    return (out, *torch.autograd.grad(out, (y, weight, bias), grad))


def _filter_f64(y, keep, weight, bias, grad, factors=None):
    return filter_f64_and_grads(y, keep, weight, bias, grad, EPS, factors)


@pytest.mark.parametrize("seq_len,hidden", [(7, 24), (50, 256), (200, 64)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_frequency_filter_against_float64_on_its_own_mask(seq_len, hidden, dtype):
    y = torch.randn(256, 3, seq_len, hidden, device=DEVICE).to(dtype).requires_grad_()
    weight, bias = _norm(hidden)
    grad = torch.randn(y.shape, device=DEVICE).to(dtype)
    keep = _kernel_keep(y.detach(), 0.8)
    ours = _filter("cuda", y, weight, bias, grad)
    exact = _filter_f64(y, keep, weight, bias, grad)
    if dtype == torch.float32:
        for name, a, b in zip(("out", "dy", "dweight", "dbias"), ours, exact):
            torch.testing.assert_close(a.double(), b, rtol=2e-5, atol=2e-5, msg=lambda m, name=name: f"{name}: {m}")
    else:  # the answer rounded once to the dtype is the error a dtype result must carry
        low = [exact[0].to(dtype), exact[1].to(dtype), exact[2].float(), exact[3].float()]
        for a, b, c in zip(ours, exact, low):
            _low_precision_close(a, b, c)


def test_frequency_filter_dropout_is_tritons_philox_mask(monkeypatch):
    """Forward and backward with dropout equal float64 math on the CUDA mask built from the
    Triton kernels' dropout factors (the same Philox bits; the keep-masks of the two backends
    may differ at a bin within rounding of the threshold, so the filters are not compared)."""
    pytest.importorskip("triton")
    from ..triton_support import kernel_dropout_factors

    _fixed_seed(monkeypatch, 1234)
    y = torch.randn(64, 3, 50, 64, device=DEVICE, requires_grad=True)
    weight, bias = _norm(64)
    grad = torch.randn_like(y)
    keep = _kernel_keep(y.detach(), 0.8)
    factors = kernel_dropout_factors(y.numel(), 1234, 0.5, DEVICE).view(y.shape)
    ours = _filter("cuda", y, weight, bias, grad, training=True)
    for name, a, b in zip(("out", "dy", "dweight", "dbias"), ours, _filter_f64(y, keep, weight, bias, grad, factors)):
        torch.testing.assert_close(a.double(), b, rtol=2e-5, atol=2e-5, msg=lambda m, name=name: f"{name}: {m}")


# ---- registrations, checks, the model ----

def _rng():
    """A dropout Philox state (seed, offset) on the GPU, read by the kernels."""
    return torch.tensor([5, 0], device=DEVICE)


@pytest.mark.parametrize("dropping", [False, True])
def test_opcheck(dropping):
    ops = torch.ops.asrec_cuda
    ids = torch.randint(0, 20, (3, 7), device=DEVICE)
    stage = (ids, torch.randn(20, 8, device=DEVICE), torch.randn(7, 8, device=DEVICE),
             torch.randn(8, device=DEVICE), torch.randn(8, device=DEVICE), torch.tensor([0.3], device=DEVICE),
             torch.randn(1, 1, 8, device=DEVICE), torch.randn(1, 1, 8, device=DEVICE))
    settings = (_rng(), 1e-12, 0.3, dropping, 0.1, 0.4)
    torch.library.opcheck(ops.input_stage_fwd.default, (*stage, *settings))
    torch.library.opcheck(ops.input_stage_bwd.default, (*stage, torch.randn(3, 7, 8, device=DEVICE), *settings))
    y = torch.randn(6, 12, 24, device=DEVICE)
    keep = (torch.rand(6, 7, device=DEVICE) > 0.5).float()
    norm = (torch.randn(24, device=DEVICE), torch.randn(24, device=DEVICE))
    torch.library.opcheck(ops.frequency_energy.default, (y,))
    torch.library.opcheck(ops.frequency_filter_fwd.default, (y, keep, *norm, _rng(), 1e-12, 0.5, dropping))
    torch.library.opcheck(ops.frequency_filter_bwd.default, (y, torch.randn_like(y), keep, norm[0], _rng(), 1e-12, 0.5,
                                                              dropping))


def test_argument_checks_name_the_argument():
    ops = torch.ops.asrec_cuda
    y = torch.randn(6, 12, 24, device=DEVICE)
    norm = torch.randn(24, device=DEVICE)
    with pytest.raises(RuntimeError, match=r"asrec_cuda::frequency_filter_fwd: keep must have shape \[6, 7\]"):
        ops.frequency_filter_fwd(y, torch.ones(6, 6, device=DEVICE), norm, norm, _rng(), 1e-12, 0.5, False)
    with pytest.raises(RuntimeError, match="asrec_cuda::frequency_energy: y must be float32, bfloat16 or float16"):
        ops.frequency_energy(y.double())
    with pytest.raises(RuntimeError, match="asrec_cuda::frequency_energy: y must be contiguous"):
        ops.frequency_energy(y.transpose(1, 2))
    with pytest.raises(RuntimeError, match=r"asrec_cuda::frequency_filter_fwd: rng must be a contiguous \(2,\) int64"):
        ops.frequency_filter_fwd(y, torch.ones(6, 7, device=DEVICE), norm, norm, _rng()[:1], 1e-12, 0.5, True)
    with pytest.raises(RuntimeError, match="asrec_cuda::frequency_filter_fwd: rng is on cpu"):
        ops.frequency_filter_fwd(y, torch.ones(6, 7, device=DEVICE), norm, norm, _rng().cpu(), 1e-12, 0.5, True)


def test_model_trains_on_the_cuda_backend_like_the_reference():
    model = asrec.ASRecModel(n_items=300, max_seq_length=50, hidden_size=64, n_heads=2, inner_size=64,
                             hidden_dropout_prob=0.0, attn_dropout_prob=0.0).to(DEVICE)
    items = _padded_ids(32, 50, 300)
    lengths = (items > 0).sum(1)
    targets = torch.randint(1, 300, (32,), device=DEVICE)
    results = {}
    for backend in ("reference", "cuda"):
        model.zero_grad(set_to_none=True)
        with asrec.use_backend(backend):
            loss = model.loss(items, lengths, targets)
        loss.backward()
        results[backend] = [loss.detach()] + [p.grad.clone() for p in model.parameters() if p.grad is not None]
    for a, b in zip(results["cuda"], results["reference"]):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_compile_captures_the_cuda_ops_in_one_graph():
    ids = _padded_ids(8, 12, 40)
    tables = _tables(40, 12, 24)
    t = tables
    weight, bias = _norm(24)

    def stage_and_filter(ids):
        x = input_stage(ids, t["item_weight"], t["position_weight"], t["norm_weight"], t["norm_bias"], EPS, 0.0,
                        False, t["smoothing_logit"], t["init_level"], t["smoothed_scale"], 0.4)
        return frequency_filter(x, torch.tensor(0.8, device=DEVICE), weight, bias, EPS)

    with asrec.use_backend("cuda"):
        eager = stage_and_filter(ids)
        compiled = torch.compile(stage_and_filter, backend="aot_eager", fullgraph=True)(ids)
    torch.testing.assert_close(compiled, eager)


def test_the_extension_reports_its_shared_memory_and_the_dispatch_reads_it():
    """The kernels' shared memory per block comes from the extension itself (one formula, in
    csrc/): the byte counts the launchers ask for, and the dispatch refuses a shape above the
    device's limit with the figure."""
    ops = torch.ops.asrec_cuda
    warps, floats = 8, 4  # kBlockWarps (csrc/common/device.cuh), sizeof(float)
    assert ops.input_stage_shared_memory(50, 64) == floats * 2 * warps * 64
    bins = 50 // 2 + 1
    assert ops.frequency_filter_shared_memory(50, 64) == floats * (2 * 50 + 2 * bins * 64 + 3 * warps * 64)
    limit = torch.cuda.get_device_properties(0).shared_memory_per_block_optin
    seq_len = 2 * limit // (floats * 2 * 64)  # the spectrum alone exceeds the limit
    y = torch.randn(1, seq_len, 64, device=DEVICE)
    reason = backends.plan("frequency_filter", "cuda", (y, torch.tensor(0.5, device=DEVICE), torch.ones(64, device=DEVICE),
                                                        torch.zeros(64, device=DEVICE), EPS, 0.0, False, "batch"),
                           selection="cuda").error
    assert reason is not None and "bytes of shared memory per block" in reason
