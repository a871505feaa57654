"""The kernels follow ``torch.get_float32_matmul_precision()``: "highest" -> IEEE float32 ``tl.dot``
(exact parity, the other tests), "high"/"medium" -> TF32 in the GEMM-like products (attention,
the multiscale convolutions, the filter's DFTs), with the keep-mask's energies IEEE at every
setting (DESIGN.md: hard decisions stay float32).

Triton's CPU interpreter computes every ``tl.dot`` in IEEE float32 whatever the precision asked,
so on the CPU these tests check what the launchers ask for (the ``DOT_PRECISION`` constexpr of
every launch) and that the "high" variants run and match float64; the ``gpu`` tests hold the
TF32 results to float64 within TF32 error.
"""

import os

import pytest
import torch

import asrec
from asrec.ops import frequency_filter, gated_attention, multiscale_conv

from ..oracle import filter_f64_and_grads
from ..triton_support import DEVICE, kernel_keep

# the kernels whose products follow the setting; every other Triton kernel has no tl.dot
# (or, the filter's energy kernel, a fixed IEEE one)
FOLLOWING = {"_attention_fwd_kernel", "_attention_bwd_preprocess_kernel", "_attention_bwd_dkdv_kernel",
             "_attention_bwd_dq_kernel", "_multiscale_conv_fwd_kernel", "_multiscale_conv_bwd_input_kernel",
             "_multiscale_conv_bwd_weight_kernel", "_frequency_filter_fwd_kernel", "_frequency_filter_bwd_kernel"}
EXPECTED = {"highest": "ieee", "high": "tf32", "medium": "tf32"}
# TF32 keeps 10 of float32's 23 mantissa bits (unit roundoff 2^-11 ~ 4.9e-4): products of
# random data over K terms then carry errors near 1e-3 of the largest output
TF32_SLACK = 2e-3


@pytest.fixture
def matmul_precision():
    """Set torch's float32 matmul precision for one test; restored afterwards."""
    saved = torch.get_float32_matmul_precision()
    yield torch.set_float32_matmul_precision
    torch.set_float32_matmul_precision(saved)


def _record_launches(monkeypatch) -> list:
    """(kernel name, launch kwargs) of every Triton launch from now on; the launches still run."""
    if os.environ.get("TRITON_INTERPRET") == "1":
        from triton.runtime.interpreter import InterpretedFunction as launched
    else:
        from triton.runtime.jit import JITFunction as launched
    launches = []
    run = launched.run

    def recording(self, *args, **kwargs):
        launches.append((self.fn.__name__, dict(kwargs)))
        return run(self, *args, **kwargs)

    monkeypatch.setattr(launched, "run", recording)
    return launches


def _model_step(seq_len=12, hidden=16):
    """One training step (forward, loss, backward) and one eval forward of a small model on "triton"."""
    model = asrec.ASRecModel(n_items=30, max_seq_length=seq_len, hidden_size=hidden, n_heads=2, n_layers=1,
                             device=DEVICE)
    items = torch.randint(1, 30, (3, seq_len), device=DEVICE)
    lengths = torch.tensor([seq_len, 5, 1], device=DEVICE)
    targets = torch.randint(1, 30, (3,), device=DEVICE)
    with asrec.use_backend("triton"):
        model.train()
        model.loss(items, lengths, targets).backward()
        model.eval()
        with torch.no_grad():
            model.full_sort_scores(items, lengths)


@pytest.mark.parametrize("setting", ["highest", "high", "medium"])
def test_launchers_pass_the_setting_to_every_gemm_like_kernel(setting, matmul_precision, monkeypatch):
    from asrec.kernels import frequency_filter as filter_kernels

    matmul_precision(setting)
    launches = _record_launches(monkeypatch)
    _model_step()
    asked = {}
    for name, kwargs in launches:
        if "DOT_PRECISION" in kwargs:
            asked.setdefault(name, set()).add(kwargs["DOT_PRECISION"])
    launched = {name for name, _ in launches}
    assert FOLLOWING <= launched  # the model runs every one of them
    assert set(asked) == FOLLOWING
    assert all(values == {EXPECTED[setting]} for values in asked.values()), asked
    # the keep-mask's energies: IEEE at every setting, not a launch option
    assert "_frequency_energy_kernel" in launched
    assert "DOT_PRECISION" not in filter_kernels._frequency_energy_kernel.arg_names
    assert filter_kernels.ENERGY_PRECISION.value == "ieee"


def _max_error(actual, exact):
    return (actual.double() - exact).abs().max().item()


def assert_tf32_close(actual, exact, reference_high=None, name=""):
    """Error against float64 within TF32 error: at most TF32_SLACK of the largest exact value,
    or twice the error of the reference run in float32 under the same setting (cuBLAS/cuDNN TF32)."""
    bound = TF32_SLACK * exact.abs().max().item()
    if reference_high is not None:
        bound += 2 * _max_error(reference_high, exact)
    ours = _max_error(actual, exact)
    assert ours <= bound, f"{name}: error {ours:.3g} against float64, allowed {bound:.3g}"


def _conv_inputs(batch, seq_len, hidden):
    x = torch.randn(batch, seq_len, hidden, device=DEVICE, dtype=torch.float64)
    weights = [torch.randn(seq_len, seq_len, k, device=DEVICE, dtype=torch.float64) / (seq_len * k) ** 0.5
               for k in (3, 5, 7)]
    biases = [torch.randn(seq_len, device=DEVICE, dtype=torch.float64) for _ in range(3)]
    return [t.requires_grad_() for t in (x, *weights, *biases)]


def _conv(backend, leaves, grads):
    with asrec.use_backend(backend):
        out = multiscale_conv(leaves[0], leaves[1:4], leaves[4:])
    return (*out, *torch.autograd.grad(out, leaves, grads))


def _check_conv(batch, seq_len, hidden):
    exact_leaves = _conv_inputs(batch, seq_len, hidden)
    grads = [torch.randn(batch, seq_len, hidden, device=DEVICE, dtype=torch.float64) for _ in range(3)]
    exact = _conv("reference", exact_leaves, grads)
    leaves = [t.detach().float().requires_grad_() for t in exact_leaves]
    ours = _conv("triton", leaves, [g.float() for g in grads])
    reference_high = _conv("reference", leaves, [g.float() for g in grads])
    for name, a, b, c in zip(("small", "middle", "large", "x", "w_s", "w_m", "w_l", "b_s", "b_m", "b_l"),
                             ours, exact, reference_high):
        assert a.dtype == torch.float32, name
        assert_tf32_close(a, b, c, name)


def _gate_inputs(batch, heads, seq_len, head_dim):
    def heads_view():
        x = torch.randn(batch, seq_len, heads * head_dim, device=DEVICE)
        return x.view(batch, seq_len, heads, head_dim).transpose(1, 2).detach().requires_grad_()
    q, k, v = heads_view(), heads_view(), heads_view()
    bound = (2 * head_dim) ** -0.5
    weight = torch.empty(2 * head_dim, 2 * head_dim, device=DEVICE).uniform_(-bound, bound).requires_grad_()
    bias = torch.empty(2 * head_dim, device=DEVICE).uniform_(-bound, bound).requires_grad_()
    lengths = torch.randint(1, seq_len + 1, (batch,), device=DEVICE)
    key_bias = torch.where(torch.arange(seq_len, device=DEVICE)[None, :] < lengths[:, None], 0.0, -1e4)
    return [q, k, v, weight, bias], key_bias[:, None, None, :]


def _gated(backend, leaves, key_bias, grad):
    with asrec.use_backend(backend):
        out = gated_attention(*leaves[:3], key_bias, *leaves[3:])
    return (out, *torch.autograd.grad(out, leaves, grad))


def _check_gated_attention(batch, heads, seq_len, head_dim):
    leaves, key_bias = _gate_inputs(batch, heads, seq_len, head_dim)
    grad = torch.randn(leaves[0].shape, device=DEVICE)
    ours = _gated("triton", leaves, key_bias, grad)
    reference_high = _gated("reference", leaves, key_bias, grad)
    exact_leaves = [t.detach().double().requires_grad_() for t in leaves]
    exact = _gated("reference", exact_leaves, key_bias.double(), grad.double())
    for name, a, b, c in zip(("out", "q", "k", "v", "gate_weight", "gate_bias"), ours, exact, reference_high):
        assert_tf32_close(a, b, c, name)


def _check_filter(batch, groups, seq_len, hidden):
    y = torch.randn(batch, groups, seq_len, hidden, device=DEVICE, requires_grad=True)
    weight = (1 + 0.1 * torch.randn(hidden, device=DEVICE)).requires_grad_()
    bias = (0.1 * torch.randn(hidden, device=DEVICE)).requires_grad_()
    grad = torch.randn_like(y)
    with asrec.use_backend("triton"):
        out = frequency_filter(y, torch.tensor(0.8, device=DEVICE), weight, bias, 1e-12)
    ours = (out, *torch.autograd.grad(out, (y, weight, bias), grad))
    # the mask is the kernels' own (IEEE energies at every setting), the rest float64
    exact = filter_f64_and_grads(y, kernel_keep(y.detach(), 0.8), weight, bias, grad, 1e-12)
    for name, a, b in zip(("out", "dy", "dweight", "dbias"), ours, exact):
        assert_tf32_close(a, b, name=name)


@pytest.mark.parametrize("setting", ["high", "medium"])
def test_tf32_settings_run_and_match_float64(setting, matmul_precision):
    matmul_precision(setting)
    _check_conv(3, 7, 10)
    _check_gated_attention(2, 2, 12, 16)
    _check_filter(2, 3, 12, 24)


def test_energy_mask_is_the_same_at_every_setting(matmul_precision):
    y = torch.randn(4, 3, 50, 64, device=DEVICE)
    matmul_precision("highest")
    highest = kernel_keep(y, 0.8)
    matmul_precision("high")
    assert torch.equal(kernel_keep(y, 0.8), highest)


@pytest.mark.gpu
@pytest.mark.parametrize("seq_len,hidden,heads", [(50, 256, 4), (200, 64, 1)])
def test_high_is_within_tf32_error_of_float64_on_gpu(seq_len, hidden, heads, matmul_precision):
    matmul_precision("high")
    _check_conv(256, seq_len, hidden)
    _check_gated_attention(256, heads, seq_len, hidden // heads)
    _check_filter(256, 3, seq_len, hidden)
