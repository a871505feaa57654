import pytest
import torch

from asrec import ASRec
from asrec.modules import AdaptiveFrequencyFilter, FourierSmoothing, HybridLayer
from asrec.reference import key_padding_bias

from ..helpers import perturb, twin_models


def _valid(batch, seq_len):
    lengths = torch.randint(1, seq_len + 1, (batch,))
    lengths[0], lengths[-1] = 1, seq_len
    return torch.arange(seq_len)[None, :] < lengths[:, None]


@pytest.mark.usefixtures("symmetric_published_filter")
@pytest.mark.parametrize("heads", [1, 2, 4])
def test_branches_and_layer_match_the_published_blocks(heads):
    model, published = twin_models(torch.float64, n_items=20, max_seq_length=7, hidden_size=16, n_heads=heads,
                                   inner_size=12, n_layers=1)
    layer, published_layer = model.encoder.layers[0], published.trm_encoder.layer[0]
    x = torch.randn(5, 7, 16, dtype=torch.float64)
    valid = _valid(5, 7)
    bias = key_padding_bias(valid, torch.float64)
    torch.testing.assert_close(layer.seasonal(x, bias), published_layer.multi_head_attention(x, bias))
    torch.testing.assert_close(layer.dynamic(x, bias), published_layer.multi_head_attention1(x, bias))
    torch.testing.assert_close(layer(x, bias), published_layer(x, bias))


@pytest.mark.parametrize("part", ["seasonal", "dynamic", "feed_forward", "filter", "layer"])
def test_standalone_entries_agree_on_the_triton_and_reference_backends(part):
    """The standalone path (the branch modules' forward, ops.seasonal_branch / dynamic_branch /
    feed_forward / frequency_filter, HybridLayer.forward without the second handles): values and
    every gradient on "triton" as on "reference"."""
    import asrec

    from ..triton_support import DEVICE

    torch.manual_seed(0)
    layer = HybridLayer(hidden_size=16, n_heads=2, max_seq_length=7, inner_size=12).eval()
    perturb(layer)
    layer = layer.to(DEVICE)
    x = torch.randn(4, 7, 16, device=DEVICE, requires_grad=True)
    bias = key_padding_bias(_valid(4, 7).to(DEVICE), torch.float32)
    run = {"seasonal": lambda: layer.seasonal(x, bias), "dynamic": lambda: layer.dynamic(x, bias),
           "feed_forward": lambda: layer.feed_forward(x), "layer": lambda: layer(x, bias),
           "filter": lambda: layer.seasonal.frequency_filter(x)}[part]
    leaves = [x, *(p for p in layer.parameters())]
    grad = torch.randn(4, 7, 16, device=DEVICE)
    results = []
    for backend in ("triton", "reference"):
        with asrec.use_backend(backend):
            out = run()
        results.append((out, *torch.autograd.grad(out, leaves, grad, allow_unused=True)))
    for index, (a, b) in enumerate(zip(*results)):
        if b is None:
            assert a is None or not a.any(), index
        else:
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=f"output {index}")


def test_hybrid_layer_gradcheck():
    layer = HybridLayer(hidden_size=4, n_heads=2, max_seq_length=5, inner_size=6).double().eval()
    perturb(layer)
    x = torch.randn(3, 5, 4, dtype=torch.float64, requires_grad=True)
    bias = key_padding_bias(_valid(3, 5), torch.float64)
    names, params = zip(*layer.named_parameters())

    def run(x, *p):
        return torch.func.functional_call(layer, dict(zip(names, p)), (x, bias))

    assert torch.autograd.gradcheck(run, (x, *params), nondet_tol=1e-12)


def test_encoder_is_fsm_then_layers_and_padding_changes_only_through_the_mask():
    encoder = ASRec(hidden_size=8, max_seq_length=6, n_layers=2, n_heads=2, inner_size=8).double().eval()
    perturb(encoder)
    x = torch.randn(3, 6, 8, dtype=torch.float64)
    valid = _valid(3, 6)
    hidden = encoder.fsm(x)
    bias = key_padding_bias(valid, torch.float64)
    for layer in encoder.layers:
        hidden = layer(hidden, bias)
    torch.testing.assert_close(encoder(x, valid), hidden)
    assert not torch.allclose(encoder(x, valid), encoder(x, torch.ones_like(valid)))


def test_modules_in_train_mode_use_dropout():
    encoder = ASRec(hidden_size=8, max_seq_length=6, n_heads=2, inner_size=8, hidden_dropout_prob=0.3)
    x, valid = torch.randn(2, 6, 8), torch.ones(2, 6, dtype=torch.bool)
    torch.manual_seed(1)
    a = encoder(x, valid)
    torch.manual_seed(1)
    torch.testing.assert_close(a, encoder(x, valid))
    assert not torch.allclose(a, encoder.eval()(x, valid))


def test_standalone_small_modules():
    fsm = FourierSmoothing(8, mix=0.5)
    assert fsm(torch.randn(2, 5, 8)).shape == (2, 5, 8)
    filt = AdaptiveFrequencyFilter(8).eval()
    y = torch.randn(2, 3, 5, 8)
    assert filt(y).shape == y.shape and filt(y[:, 0]).shape == (2, 5, 8)


@pytest.mark.parametrize("heads,seq_len", [(1, 1), (2, 7), (4, 12)])
def test_last_layer_rows_only_equals_the_full_layer_gathered(heads, seq_len):
    encoder = ASRec(hidden_size=16, max_seq_length=seq_len, n_layers=2, n_heads=heads, inner_size=8).double().eval()
    perturb(encoder)
    x = torch.randn(5, seq_len, 16, dtype=torch.float64)
    valid = _valid(5, seq_len)
    rows = valid.sum(1) - 1
    full = encoder.encode(x, valid)
    torch.testing.assert_close(encoder.encode(x, valid, rows), full[torch.arange(5), rows])
    grad = torch.randn(5, 16, dtype=torch.float64)
    params = list(encoder.parameters())
    rows_grads = torch.autograd.grad(encoder.encode(x, valid, rows), params, grad, allow_unused=True)
    full_grads = torch.autograd.grad(full[torch.arange(5), rows], params, grad, allow_unused=True)
    for a, b in zip(rows_grads, full_grads):
        if b is None:
            assert a is None or not a.any()
        else:
            torch.testing.assert_close(a, b)
