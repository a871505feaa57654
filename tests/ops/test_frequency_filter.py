"""The adaptive frequency filter on every backend: the reference against the published
formula (float64 oracle), its transforms and quantile, gradcheck; then the Triton kernels against
float64 math on the kernels' own keep-mask, and the mask itself against the reference
(DESIGN.md: hard thresholds). (The keep-mask kernel's own tests: test_triton_keep_mask.py;
the CUDA backend: test_cuda_ops.py on a GPU, test_cuda_kernels_emulated.py on the host.)"""

import pytest
import torch

import asrec
from asrec.ops import frequency_filter
from asrec.reference import frequency_filter_ref, frequency_keep_mask
from asrec.reference.frequency_filter import half_spectrum, real_dft_matrices, spectrum_energy

from ..oracle import filter_f64_and_grads, filter_oracle
from ..triton_support import DEVICE, assert_low_precision_close, kernel_keep

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
    """The private _frequency_filter_groups(..., with_input=True) on the reference: (filtered, the input as it
    came, the same object), the filtered part as without the option."""
    from asrec.ops import frequency_filter_groups
    from asrec.ops.frequency_filter_groups import _frequency_filter_groups

    y = torch.randn(3, 4, 12, 8, dtype=torch.float64, requires_grad=True)
    groups = y if stacked else list(y.unbind(0))
    weight, bias = _norm(8)
    threshold = torch.tensor(0.7, dtype=torch.float64)
    with asrec.use_backend("reference"):
        filtered, passthrough = _frequency_filter_groups(groups, threshold, weight, bias, 1e-12, 0.5, False, "batch",
                                                         with_input=True)
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


# ---- the Triton backend against float64 math on its own keep-mask ----


EPS = 1e-12


def _triton_norm(hidden):
    weight = (1 + 0.1 * torch.randn(hidden, device=DEVICE)).requires_grad_()
    return weight, (0.1 * torch.randn(hidden, device=DEVICE)).requires_grad_()


def _triton(y, q, weight, bias, grad, scope="batch", dropout_p=0.5, training=False):
    with asrec.use_backend("triton"):
        out = frequency_filter(y, torch.tensor(q, device=DEVICE), weight, bias, EPS, dropout_p, training, scope)
    return (out, *torch.autograd.grad(out, (y, weight, bias), grad))


def _oracle(y, keep, weight, bias, grad, factors=None):
    return filter_f64_and_grads(y, keep, weight, bias, grad, EPS, factors)


def _assert_matches(ours, expected, names=("out", "dy", "dweight", "dbias")):
    for name, a, b in zip(names, ours, expected):
        torch.testing.assert_close(a.double(), b, rtol=2e-5, atol=2e-5, msg=name)


@pytest.mark.parametrize("seq_len", [1, 7, 12, 50])
@pytest.mark.parametrize("hidden", [8, 24, 64])
def test_three_groups_forward_and_gradients(seq_len, hidden):
    y = torch.randn(3, 3, seq_len, hidden, device=DEVICE, requires_grad=True)
    weight, bias = _triton_norm(hidden)
    grad = torch.randn_like(y)
    keep = kernel_keep(y.detach(), 0.8)
    _assert_matches(_triton(y, 0.8, weight, bias, grad), _oracle(y, keep, weight, bias, grad))


@pytest.mark.parametrize("scope", ["batch", "sequence"])
@pytest.mark.parametrize("q", [0.0, 0.5, 0.8, 1.0])
def test_single_group_and_quantile_levels(scope, q):
    y = torch.randn(4, 12, 24, device=DEVICE, requires_grad=True)
    weight, bias = _triton_norm(24)
    grad = torch.randn_like(y)
    keep = kernel_keep(y.detach()[:, None], q, scope)[:, 0]
    ours = _triton(y, q, weight, bias, grad, scope)
    _assert_matches(ours, _oracle(y, keep, weight, bias, grad))


@pytest.mark.parametrize("seq_len,hidden", [(7, 8), (12, 24), (50, 64)])
def test_kernel_mask_equals_reference_mask_away_from_the_threshold(seq_len, hidden):
    """Energies from the kernel and from a float64 rfft give the same mask except for bins
    whose normalised energy lies within float32 rounding of the batch threshold."""
    y = torch.randn(8, 3, seq_len, hidden, device=DEVICE)
    ours = kernel_keep(y, 0.8).bool()
    energy64 = torch.fft.rfft(y.double(), dim=-2).abs().square().sum(-1)
    exact = frequency_keep_mask(energy64, seq_len, torch.tensor(0.8, dtype=torch.float64, device=DEVICE))
    to_full = torch.minimum(torch.arange(seq_len), seq_len - torch.arange(seq_len)).to(DEVICE)
    normalised = energy64 / (energy64[..., to_full].sort(-1).values[..., (seq_len - 1) // 2][..., None] + 1e-6)
    cutoff = torch.quantile(normalised[..., to_full].transpose(0, 1).flatten(1), 0.8, dim=1)[None, :, None]
    near = (normalised - cutoff).abs() <= 1e-5 * cutoff.abs()
    assert bool(((ours == exact) | near).all())
    assert bool((ours == exact).float().mean() > 0.99)


def test_dropout_forward_and_backward_use_one_mask(monkeypatch):
    """With p > 0 the output and every gradient equal the float64 math with the kernels' mask."""
    from ..triton_support import fix_dropout_rng, kernel_dropout_factors

    fix_dropout_rng(monkeypatch, 1234)
    y = torch.randn(3, 3, 12, 24, device=DEVICE, requires_grad=True)
    weight, bias = _triton_norm(24)
    grad = torch.randn_like(y)
    factors = kernel_dropout_factors(y.numel(), 1234, 0.5, DEVICE).view(y.shape)
    keep = kernel_keep(y.detach(), 0.8)
    ours = _triton(y, 0.8, weight, bias, grad, training=True)
    _assert_matches(ours, _oracle(y, keep, weight, bias, grad, factors))


def test_dropout_zero_in_training_is_exact():
    y = torch.randn(2, 3, 12, 8, device=DEVICE, requires_grad=True)
    weight, bias = _triton_norm(8)
    grad = torch.randn_like(y)
    keep = kernel_keep(y.detach(), 0.8)
    _assert_matches(_triton(y, 0.8, weight, bias, grad, dropout_p=0.0, training=True),
                    _oracle(y, keep, weight, bias, grad))


def test_threshold_gets_no_gradient():
    y = torch.randn(2, 7, 8, device=DEVICE, requires_grad=True)
    threshold = torch.tensor(0.8, device=DEVICE, requires_grad=True)
    weight, bias = _triton_norm(8)
    with asrec.use_backend("triton"):
        out = frequency_filter(y, threshold, weight, bias, EPS)
    out.sum().backward()
    assert threshold.grad is None


def test_shapes_beyond_the_register_tile_are_refused_on_triton_and_run_on_auto():
    y = torch.randn(1, 200, 256, device=DEVICE)
    weight, bias = _triton_norm(256)
    with asrec.use_backend("triton"), pytest.raises(ValueError, match="seq_len=200, hidden=256"):
        frequency_filter(y, torch.tensor(0.8, device=DEVICE), weight, bias, EPS)


@pytest.mark.gpu
@pytest.mark.parametrize("seq_len,hidden", [(50, 256), (200, 64)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_published_shapes_and_low_precision_on_gpu(seq_len, hidden, dtype):
    y = torch.randn(256, 3, seq_len, hidden, device=DEVICE).to(dtype).requires_grad_()
    weight, bias = _triton_norm(hidden)
    grad = torch.randn(y.shape, device=DEVICE).to(dtype)
    keep = kernel_keep(y.detach().float(), 0.8)
    ours = _triton(y, 0.8, weight, bias, grad)
    exact = _oracle(y, keep, weight, bias, grad)
    low = [t for t in exact]
    low[0] = exact[0].to(dtype)  # the answer rounded once to the dtype: the error a dtype output must carry
    low[1] = exact[1].to(dtype)
    low[2], low[3] = exact[2].float(), exact[3].float()
    if dtype == torch.float32:
        _assert_matches(ours, exact)
    else:
        for a, b, c in zip(ours, exact, low):
            assert_low_precision_close(a, b, c)


@pytest.mark.parametrize("scope", ["batch", "sequence"])
def test_a_stacked_groups_tensor_equals_the_list_of_groups(scope):
    """frequency_filter_groups on one (G, B, N, H) tensor (the convolutions' output, no copy) gives
    the list form's outputs and gradients, on the Triton and reference backends."""
    from asrec.ops import frequency_filter_groups

    stacked = torch.randn(3, 5, 12, 24, device=DEVICE, requires_grad=True)
    weight, bias = _triton_norm(24)
    grad = torch.randn_like(stacked)
    threshold = torch.tensor(0.7, device=DEVICE)
    for backend in ("triton", "reference"):
        with asrec.use_backend(backend):
            out = frequency_filter_groups(stacked, threshold, weight, bias, EPS, 0.0, True, scope)
            listed = torch.stack(frequency_filter_groups(list(stacked.unbind(0)), threshold, weight, bias, EPS, 0.0,
                                                         True, scope))
        assert torch.is_tensor(out) and out.shape == stacked.shape
        torch.testing.assert_close(out, listed, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(torch.autograd.grad(out, (stacked, weight, bias), grad),
                                   torch.autograd.grad(listed, (stacked, weight, bias), grad), rtol=1e-5, atol=1e-5)


def _with_input(stacked, q, weight, bias, dropout_p=0.5, training=False, with_input=True):
    """The private _frequency_filter_groups (the seasonal branch's path) on "triton"."""
    from asrec.ops.frequency_filter_groups import _frequency_filter_groups

    with asrec.use_backend("triton"):
        return _frequency_filter_groups(stacked, torch.tensor(q, device=DEVICE), weight, bias, EPS, dropout_p,
                                        training, "batch", with_input=with_input)


@pytest.mark.parametrize("training", [False, True])
def test_with_input_adds_the_passthrough_gradient_in_the_kernel(monkeypatch, training):
    """_frequency_filter_groups(..., with_input=True) on a (G, B, N, H) tensor: the passthrough is
    the input itself (an alias made by the filter's Function), and y's gradient is the filter's
    plus the passthrough's, as float64 math on the kernels' own keep-mask (and dropout mask)."""
    from ..triton_support import fix_dropout_rng, kernel_dropout_factors

    fix_dropout_rng(monkeypatch, 4321)
    stacked = torch.randn(3, 4, 12, 24, device=DEVICE, requires_grad=True)
    weight, bias = _triton_norm(24)
    grad, grad_input = torch.randn_like(stacked), torch.randn_like(stacked)
    out, passthrough = _with_input(stacked, 0.8, weight, bias, training=training)
    assert passthrough.data_ptr() == stacked.data_ptr() and passthrough.shape == stacked.shape
    assert type(passthrough.grad_fn) is type(out.grad_fn)  # an output of the filter's Function: no copy
    ours = (out, *torch.autograd.grad((out, passthrough), (stacked, weight, bias), (grad, grad_input)))
    # the oracle takes (B, G, N, H); the kernels' dropout counters follow the stacked memory order
    by_batch = stacked.detach().transpose(0, 1)
    factors = (kernel_dropout_factors(stacked.numel(), 4321, 0.5, DEVICE).view(stacked.shape).transpose(0, 1)
               if training else None)
    out64, dy64, dweight64, dbias64 = _oracle(by_batch, kernel_keep(by_batch, 0.8), weight, bias,
                                              grad.transpose(0, 1), factors)
    expected = (out64.transpose(0, 1), dy64.transpose(0, 1) + grad_input.double(), dweight64, dbias64)
    _assert_matches(ours, expected)


def test_with_input_equals_the_autograd_add_and_either_output_alone(monkeypatch):
    """The kernel's add is the one autograd makes without the option (bit for bit: one float32 add
    of the same two values); with one output unused, y's gradient is the other's alone."""
    from ..triton_support import fix_dropout_rng

    fix_dropout_rng(monkeypatch, 99)
    stacked = torch.randn(3, 2, 7, 8, device=DEVICE, requires_grad=True)
    weight, bias = _triton_norm(8)
    grad, grad_input = torch.randn_like(stacked), torch.randn_like(stacked)
    out, passthrough = _with_input(stacked, 0.7, weight, bias, training=True)
    fused = torch.autograd.grad((out, passthrough.square()), (stacked, weight, bias), (grad, grad_input))
    plain_out = _with_input(stacked, 0.7, weight, bias, training=True, with_input=False)
    plain = torch.autograd.grad((plain_out, stacked.square()), (stacked, weight, bias), (grad, grad_input))
    for name, a, b in zip(("dy", "dweight", "dbias"), fused, plain):
        assert torch.equal(a, b), name
    out, passthrough = _with_input(stacked, 0.7, weight, bias, training=True)
    alone = torch.autograd.grad(passthrough, (stacked, weight, bias), grad_input, allow_unused=True)
    assert torch.equal(alone[0], grad_input) and alone[1] is None and alone[2] is None
    out, passthrough = _with_input(stacked, 0.7, weight, bias, training=True)
    only_filter = torch.autograd.grad(out, (stacked, weight, bias), grad)
    plain_out = _with_input(stacked, 0.7, weight, bias, training=True, with_input=False)
    for a, b in zip(only_filter, torch.autograd.grad(plain_out, (stacked, weight, bias), grad)):
        assert torch.equal(a, b)
