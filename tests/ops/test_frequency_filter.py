import pytest
import torch

import asrec
from asrec.ops import frequency_filter
from asrec.reference import frequency_filter_ref, frequency_keep_mask
from asrec.reference.frequency_filter import half_spectrum, real_dft_matrices, spectrum_energy

from ..oracle import filter_oracle

SHAPES = [(4, 1, 8), (4, 2, 8), (3, 7, 12), (5, 12, 8), (6, 50, 64), (2, 51, 12), (3, 100, 8), (2, 201, 12)]
# (seq_len >= FFT_FROM_SEQ_LEN transforms by FFT, shorter by DFT GEMMs: both are covered)


def _norm(hidden, dtype=torch.float64):
    return 1 + 0.1 * torch.randn(hidden, dtype=dtype), 0.1 * torch.randn(hidden, dtype=dtype)


def _our_keep(y, q):
    energy = torch.fft.rfft(y[:, None], dim=-2).abs().square().sum(-1)
    half = frequency_keep_mask(energy, y.shape[1], torch.tensor(q, dtype=y.dtype))[:, 0]
    n = y.shape[1]
    return half[:, torch.minimum(torch.arange(n), n - torch.arange(n))]  # full-spectrum view


def assert_filter_matches(y, q, weight, bias, out):
    """Same keep-mask up to bins within rounding of the threshold, then equal outputs."""
    _, oracle_keep, normalised, threshold = filter_oracle(y, q, weight, bias, 1e-12)
    ours = _our_keep(y, q)
    disagree = ours != oracle_keep
    close = (normalised - threshold).abs() <= 1e-9 * threshold.abs().clamp_min(1.0)
    assert bool((~disagree | close).all()), "keep-mask differs away from the threshold"
    expected, *_ = filter_oracle(y, q, weight, bias, 1e-12, keep=ours)
    torch.testing.assert_close(out, expected)


@pytest.mark.parametrize("batch,seq_len,hidden", SHAPES)
@pytest.mark.parametrize("q", [0.8, 0.5, 0.0, 1.0])
def test_matches_published_formula(batch, seq_len, hidden, q):
    y = torch.randn(batch, seq_len, hidden, dtype=torch.float64)
    weight, bias = _norm(hidden)
    out = frequency_filter(y, torch.tensor(q, dtype=torch.float64), weight, bias, 1e-12)
    assert_filter_matches(y, q, weight, bias, out)


def test_mirrored_bins_share_one_energy_so_a_pair_is_kept_or_dropped_whole():
    y = torch.randn(8, 10, 6, dtype=torch.float64)
    keep = _our_keep(y, 0.8)
    n = y.shape[1]
    assert torch.equal(keep, keep[:, (-torch.arange(n)) % n])


def test_float32_agrees_with_float64_oracle():
    y = torch.randn(6, 50, 64)
    weight, bias = _norm(64, torch.float32)
    out = frequency_filter(y, torch.tensor(0.8), weight, bias, 1e-12)
    assert out.dtype == torch.float32
    expected, *_ = filter_oracle(y.double(), 0.8, weight.double(), bias.double(), 1e-12,
                                 keep=_our_keep(y.double(), 0.8))
    torch.testing.assert_close(out.double(), expected, rtol=1e-5, atol=1e-5)


def test_groups_take_separate_quantiles():
    y = torch.randn(4, 3, 12, 8, dtype=torch.float64)
    y[:, 1] *= 10.0  # a louder group must not move the others' thresholds
    weight, bias = _norm(8)
    q = torch.tensor(0.8, dtype=torch.float64)
    grouped = frequency_filter_ref(y, q, weight, bias, 1e-12)
    for g in range(3):
        torch.testing.assert_close(grouped[:, g], frequency_filter_ref(y[:, g], q, weight, bias, 1e-12))


def test_batch_threshold_couples_sequences_and_sequence_scope_does_not():
    y = torch.randn(6, 12, 8, dtype=torch.float64)
    weight, bias = _norm(8)
    q = torch.tensor(0.8, dtype=torch.float64)
    alone = frequency_filter_ref(y[:1], q, weight, bias, 1e-12, scope="sequence")
    together = frequency_filter_ref(y, q, weight, bias, 1e-12, scope="sequence")
    torch.testing.assert_close(alone, together[:1])
    energy = torch.fft.rfft(y[:, None], dim=-2).abs().square().sum(-1)
    per_sequence = frequency_keep_mask(energy, 12, q, "sequence")
    assert bool((per_sequence.sum(-1) > 0).all())  # every sequence keeps its own top bins


def test_unknown_scope_is_an_error():
    y = torch.randn(2, 4, 8)
    with pytest.raises(ValueError, match="scope"):
        frequency_filter_ref(y, torch.tensor(0.8), torch.ones(8), torch.zeros(8), 1e-12, scope="global")


def test_training_dropout_scales_kept_elements():
    y = torch.randn(4, 12, 8)
    weight, bias = torch.ones(8), torch.zeros(8)
    q = torch.tensor(0.8)
    torch.manual_seed(3)
    a = frequency_filter_ref(y, q, weight, bias, 1e-12, 0.5, True)
    torch.manual_seed(3)
    b = frequency_filter_ref(y, q, weight, bias, 1e-12, 0.5, True)
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, frequency_filter_ref(y, q, weight, bias, 1e-12, 0.5, False))


@pytest.mark.parametrize("batch,seq_len,hidden,groups", [(3, 7, 4, 1), (2, 6, 3, 3), (4, 1, 3, 1), (2, 97, 2, 2)])
def test_gradcheck(batch, seq_len, hidden, groups):
    y = torch.randn(batch, groups, seq_len, hidden, dtype=torch.float64, requires_grad=True)
    weight, bias = (t.requires_grad_() for t in _norm(hidden))
    q = torch.tensor(0.8, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda a, w, b: frequency_filter_ref(a, q, w, b, 1e-12), (y, weight, bias))


@pytest.mark.parametrize("training", [False, True])
def test_fft_and_dft_transforms_give_one_filter(monkeypatch, training):
    from asrec.reference import frequency_filter as module

    y = torch.randn(4, 3, 120, 16, dtype=torch.float64, requires_grad=True)
    weight, bias = _norm(16)
    q = torch.tensor(0.8, dtype=torch.float64)
    results = []
    for threshold in (10**9, 1):  # DFT GEMMs, then FFT
        monkeypatch.setattr(module, "FFT_FROM_SEQ_LEN", threshold)
        torch.manual_seed(5)
        out = frequency_filter_ref(y, q, weight, bias, 1e-12, 0.5, training)
        results.append((out, torch.autograd.grad(out.square().sum(), y)[0]))
    torch.testing.assert_close(results[0], results[1])


def test_gradient_is_the_fixed_mask_linear_map():
    y = torch.randn(3, 10, 6, dtype=torch.float64, requires_grad=True)
    weight, bias = _norm(6)
    q = 0.8
    keep = _our_keep(y.detach(), q)
    out = frequency_filter_ref(y, torch.tensor(q, dtype=torch.float64), weight, bias, 1e-12)
    expected, *_ = filter_oracle(y, q, weight, bias, 1e-12, keep=keep)
    g = torch.randn_like(out)
    torch.testing.assert_close(torch.autograd.grad(out, y, g)[0], torch.autograd.grad(expected, y, g)[0])


@pytest.mark.parametrize("seq_len", [1, 2, 7, 12, 50, 200])
def test_real_dft_matrices_are_rfft_and_irfft(seq_len):
    y = torch.randn(3, seq_len, 5, dtype=torch.float64)
    spectrum = half_spectrum(y)
    expected = torch.fft.rfft(y, dim=1)
    bins = seq_len // 2 + 1
    torch.testing.assert_close(spectrum[:, :bins], expected.real)
    torch.testing.assert_close(spectrum[:, bins:], expected.imag)
    torch.testing.assert_close(spectrum_energy(spectrum), expected.abs().square().sum(-1))
    _, inverse = real_dft_matrices(seq_len, torch.float64, y.device)
    torch.testing.assert_close(inverse @ spectrum, y)


def test_float32_transform_error_is_at_rounding_level():
    y = torch.randn(4, 200, 64)
    spectrum = half_spectrum(y).double()
    expected = torch.fft.rfft(y.double(), dim=1)
    scale = expected.abs().max()
    assert (spectrum[:, :101] - expected.real).abs().max() / scale < 1e-6
    assert (spectrum[:, 101:] - expected.imag).abs().max() / scale < 1e-6


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("q", [0.0, 0.25, 0.8, 0.999, 1.0])
def test_quantile_by_selection_equals_the_sorted_quantile_and_torch(dtype, q):
    from asrec.reference.frequency_filter import linear_quantile, quantile

    values = torch.randint(0, 50, (3, 1001)).to(dtype) / 7  # with ties
    level = torch.tensor(q, dtype=dtype)
    ours = quantile(values, level)
    assert torch.equal(ours, linear_quantile(values.sort(dim=-1).values, level))
    torch.testing.assert_close(ours, torch.quantile(values, q, dim=-1))


@pytest.mark.parametrize("stacked", [True, False])
def test_with_input_returns_the_input_itself_on_the_reference(stacked):
    """frequency_filter_groups(..., with_input=True) on the reference: (filtered, the input as it
    came, the same object), the filtered part as without the option."""
    from asrec.ops import frequency_filter_groups

    y = torch.randn(3, 4, 12, 8, dtype=torch.float64, requires_grad=True)
    groups = y if stacked else list(y.unbind(0))
    weight, bias = _norm(8)
    threshold = torch.tensor(0.7, dtype=torch.float64)
    with asrec.use_backend("reference"):
        filtered, passthrough = frequency_filter_groups(groups, threshold, weight, bias, 1e-12, with_input=True)
        plain = frequency_filter_groups(groups, threshold, weight, bias, 1e-12)
    assert passthrough is groups
    for a, b in zip(filtered, plain):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_with_input_on_the_cuda_backend_returns_the_input(monkeypatch):
    """The CUDA backend's with_input (its backward adds no input gradient): (filtered, y), y's
    gradient summed by autograd; run over the host emulation of the CUDA kernels."""
    import subprocess

    from asrec import _cuda_extension, backends

    from ..cuda_emulation import emulated

    if emulated.compiler() is None:
        pytest.skip("needs a C++ compiler (c++ or g++)")
    try:
        emulated.library()
    except subprocess.CalledProcessError as error:
        pytest.skip(f"the host emulation does not compile here ({error})")
    monkeypatch.setattr(_cuda_extension, "kernel_ops", emulated.kernel_ops())
    run = backends._OPS["frequency_filter_groups"]["cuda"].run
    y = torch.randn(3, 2, 12, 8, requires_grad=True)
    weight, bias = (t.float().requires_grad_() for t in _norm(8))
    args = (torch.tensor(0.7), weight, bias, 1e-12, 0.5, False, "batch")
    grad, grad_input = torch.randn_like(y), torch.randn_like(y)
    filtered, passthrough = run(y, *args, with_input=True)
    assert passthrough is y
    plain = run(y, *args)
    torch.testing.assert_close(filtered, plain, rtol=0, atol=0)
    ours = torch.autograd.grad((filtered, passthrough), (y, weight, bias), (grad, grad_input))
    expected = torch.autograd.grad(plain, (y, weight, bias), grad)
    torch.testing.assert_close(ours[0], expected[0] + grad_input, rtol=0, atol=0)
    for a, b in zip(ours[1:], expected[1:]):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


class _Filter(torch.nn.Module):
    def __init__(self, hidden):
        super().__init__()
        self.weight, self.bias = (torch.nn.Parameter(t.float()) for t in _norm(hidden))

    def forward(self, y):
        return frequency_filter_ref(y, torch.tensor(0.5), self.weight, self.bias, 1e-12)


def test_export_first_then_eager_computes_with_real_tensors():
    """torch.export as the first call at a sequence length must leave nothing of its trace in
    the DFT matrices' cache: the eager calls after it compute with real tensors."""
    from torch._subclasses.fake_tensor import FakeTensor

    from asrec.reference.frequency_filter import _DFT_MATRICES

    seq_len = 13  # a length no other test builds matrices for
    _DFT_MATRICES.clear()
    module, y = _Filter(6), torch.randn(2, seq_len, 6)
    torch.export.export(module, (y,))
    assert all(type(t) is torch.Tensor for entry in _DFT_MATRICES.entries.values() for t in entry)
    out = module(y)
    assert type(out) is torch.Tensor and not isinstance(out, FakeTensor)
    assert all(type(t) is torch.Tensor for t in real_dft_matrices(seq_len, torch.float32, y.device))
    torch.testing.assert_close(out, torch.export.export(module, (y,)).module()(y))


def test_compile_gives_no_cache_warning(recwarn, caplog):
    """Dynamo warns at every call of an lru_cache-wrapped function it traces; the matrices'
    cache is not one, and under compilation it is not read at all."""
    import torch._dynamo

    torch._dynamo.reset()
    module, y = _Filter(6), torch.randn(2, 14, 6)
    out = torch.compile(module, backend="eager", fullgraph=True)(y)
    torch.testing.assert_close(out, module(y))
    messages = [str(w.message) for w in recwarn] + [record.getMessage() for record in caplog.records]
    assert not [m for m in messages if "lru_cache" in m]
