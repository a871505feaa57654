"""Bad input: a ValueError or TypeError naming the argument, expected and given."""

import pytest
import torch

import asrec
from asrec import ASRec, ASRecModel


@pytest.fixture(scope="module")
def model():
    return ASRecModel(n_items=20, max_seq_length=6, hidden_size=8, n_heads=2, inner_size=8).eval()


def _ok():
    return torch.tensor([[1, 2, 0, 0, 0, 0], [3, 4, 5, 6, 7, 8]]), torch.tensor([2, 6])


@pytest.mark.parametrize("items,lengths,error,pattern", [
    (torch.ones(2, 5, dtype=torch.long), torch.tensor([1, 1]), ValueError, r"item_seq: expected shape .*\(\*, 6\), got \(2, 5\)"),
    (torch.ones(2, 6, 1, dtype=torch.long), torch.tensor([1, 1]), ValueError, r"item_seq: expected shape"),
    (torch.ones(2, 6), torch.tensor([1, 1]), TypeError, r"item_seq: expected an integer tensor .* got torch.float32"),
    (torch.full((2, 6), 20), torch.tensor([1, 1]), ValueError, r"item_seq: values must lie in \[0, 19\], got min 20, max 20"),
    (torch.full((2, 6), -1), torch.tensor([1, 1]), ValueError, r"item_seq: values must lie in \[0, 19\], got min -1"),
    (torch.ones(2, 6, dtype=torch.long), torch.tensor([0, 1]), ValueError, r"item_seq_len: values must lie in \[1, 6\], got min 0"),
    (torch.ones(2, 6, dtype=torch.long), torch.tensor([1, 7]), ValueError, r"item_seq_len: values must lie in \[1, 6\], got min 1, max 7"),
    (torch.ones(2, 6, dtype=torch.long), torch.tensor([1, 1, 1]), ValueError, r"item_seq_len: expected shape \(batch,\) = \(2\), got \(3\)"),
    (torch.ones(2, 6, dtype=torch.long), torch.tensor([1.0, 1.0]), TypeError, r"item_seq_len: expected an integer"),
    ([[1, 2, 3, 4, 5, 6]], torch.tensor([1]), TypeError, r"item_seq: expected a torch.Tensor, got list"),
])
def test_bad_sequences(model, items, lengths, error, pattern):
    with pytest.raises(error, match=pattern):
        model(items, lengths)
    with pytest.raises(error, match=pattern):
        model.full_sort_scores(items, lengths)


@pytest.mark.parametrize("targets,error,pattern", [
    (torch.tensor([1, 20]), ValueError, r"pos_items: values must lie in \[0, 19\]"),
    (torch.tensor([1]), ValueError, r"pos_items: expected shape \(batch,\) = \(2\), got \(1\)"),
    (torch.tensor([1.0, 2.0]), TypeError, r"pos_items: expected an integer"),
])
def test_bad_targets(model, targets, error, pattern):
    with pytest.raises(error, match=pattern):
        model.loss(*_ok(), targets)


def test_sequence_output_checks_its_input(model):
    with pytest.raises(ValueError, match=r"item_seq: values must lie in \[0, 19\]"):
        model.sequence_output(torch.full((2, 6), 25))
    with pytest.raises(ValueError, match=r"item_seq: expected shape"):
        model.sequence_output(torch.ones(2, 4, dtype=torch.long))


def test_mixed_devices_are_named(model):
    items, lengths = _ok()
    with pytest.raises(ValueError, match=r"item_seq on cpu, item_seq_len on meta"):
        model(items, lengths.to("meta"))


def test_value_checks_can_be_turned_off_for_trusted_data():
    model = ASRecModel(n_items=20, max_seq_length=6, hidden_size=8, n_heads=2, inner_size=8).eval()
    model.check_values = False
    model(*_ok())  # no host synchronisation for the range checks


@pytest.mark.parametrize("x,valid,error,pattern", [
    (torch.randn(2, 5, 8), torch.ones(2, 5, dtype=torch.bool), ValueError,
     r"x: expected shape \(batch, max_seq_length, hidden_size\) = \(\*, 6, 8\), got \(2, 5, 8\)"),
    (torch.randn(2, 6, 9), torch.ones(2, 6, dtype=torch.bool), ValueError, r"x: expected shape .* got \(2, 6, 9\)"),
    (torch.randn(6, 8), torch.ones(6, dtype=torch.bool), ValueError, r"x: expected shape"),
    (torch.ones(2, 6, 8, dtype=torch.long), torch.ones(2, 6, dtype=torch.bool), TypeError, r"x: expected float16"),
    (torch.randn(2, 6, 8), torch.ones(2, 6), TypeError, r"valid: expected a bool mask"),
    (torch.randn(2, 6, 8), torch.ones(3, 6, dtype=torch.bool), ValueError, r"valid: expected shape .* got \(3, 6\)"),
])
def test_bad_encoder_input(x, valid, error, pattern):
    encoder = ASRec(hidden_size=8, max_seq_length=6, n_heads=2, inner_size=8)
    with pytest.raises(error, match=pattern):
        encoder(x, valid)


@pytest.mark.parametrize("kwargs,pattern", [
    (dict(n_heads=3), r"n_heads: must divide hidden_size=8, got 3"),
    (dict(hidden_act="mish"), r"hidden_act: expected one of .* got 'mish'"),
    (dict(hidden_dropout_prob=1.5), r"hidden_dropout_prob: expected a probability"),
    (dict(max_seq_length=0), r"max_seq_length: expected a positive int, got 0"),
    (dict(filter_scope="global"), r"filter_scope: expected one of"),
])
def test_bad_construction(kwargs, pattern):
    args = dict(hidden_size=8, max_seq_length=6, n_heads=2, inner_size=8) | kwargs
    with pytest.raises(ValueError, match=pattern):
        ASRec(**args)


def test_bad_n_items():
    with pytest.raises(ValueError, match=r"n_items: expected an int >= 2"):
        ASRecModel(n_items=1, max_seq_length=6)


@pytest.mark.parametrize("kwargs,pattern", [
    (dict(n_heads=2.7), r"n_heads: expected a positive int, got 2.7"),
    (dict(layer_norm_eps=float("nan")), r"layer_norm_eps: expected a finite number >= 0, got nan"),
    (dict(initializer_range=-1.0), r"initializer_range: expected a finite standard deviation >= 0, got -1.0"),
    (dict(fsm_mix="1"), r"fsm_mix: expected a finite number"),
    (dict(attn_dropout_prob=True), r"attn_dropout_prob: expected a probability"),
])
def test_bad_numbers_in_construction(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        ASRecModel(n_items=5, max_seq_length=6, **kwargs)


def test_input_in_another_dtype_than_the_encoder_says_so():
    encoder = ASRec(hidden_size=8, max_seq_length=6, n_heads=2, inner_size=8)
    valid = torch.ones(2, 6, dtype=torch.bool)
    with pytest.raises(TypeError, match=r"x: expected torch.float32, the dtype of the encoder's parameters .* "
                                        r"got torch.float64"):
        encoder(torch.randn(2, 6, 8, dtype=torch.float64), valid)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # autocast casts at each product: any float input
        assert encoder(torch.randn(2, 6, 8, dtype=torch.bfloat16), valid).shape == (2, 6, 8)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float64])
def test_every_dtype_runs_the_reference_end_to_end(dtype):
    model = ASRecModel(n_items=20, max_seq_length=6, hidden_size=8, n_heads=2, inner_size=8).to(dtype)
    items, lengths = _ok()
    with asrec.use_backend("reference"):
        loss = model.loss(items, lengths, torch.tensor([3, 4]))
        loss.backward()
        scores = model.eval().full_sort_scores(items, lengths)
    assert scores.dtype == dtype and scores.shape == (2, 20)
    # the loss (linear_cross_entropy) accumulates low precision in float32 and returns it so
    assert loss.dtype == (torch.float64 if dtype == torch.float64 else torch.float32)
    assert all(p.grad.dtype == dtype for p in model.parameters() if p.grad is not None)


def test_an_empty_batch_gives_empty_results():
    model = ASRecModel(n_items=20, max_seq_length=6, hidden_size=8, n_heads=2, inner_size=8).eval()
    items, lengths = torch.zeros(0, 6, dtype=torch.long), torch.zeros(0, dtype=torch.long)
    assert model(items, lengths).shape == (0, 8)
    assert model.full_sort_scores(items, lengths).shape == (0, 20)
    assert model.sequence_output(items).shape == (0, 6, 8)
    encoder = ASRec(hidden_size=8, max_seq_length=6, n_heads=2, inner_size=8)
    assert encoder(torch.zeros(0, 6, 8), torch.zeros(0, 6, dtype=torch.bool)).shape == (0, 6, 8)


@pytest.mark.parametrize("state,config,error,pattern", [
    (None, {}, TypeError, r"state_dict: expected a dict, got NoneType"),
    ("weights.pth", {}, TypeError, r"state_dict: expected a dict, got str"),
    ({"item_embedding.weight": [[0.0]]}, {}, TypeError, r"state_dict\['item_embedding.weight'\]: expected a torch.Tensor, got list"),
    ({}, None, TypeError, r"config: expected a dict, got NoneType"),
    ({}, {"n_heads": 2.7}, ValueError, r"config\['n_heads'\]: expected a positive int, got 2.7"),
    ({}, {"hidden_dropout_prob": "0.5"}, ValueError, r"config\['hidden_dropout_prob'\]: expected a finite number, got '0.5'"),
])
def test_bad_published_checkpoints(state, config, error, pattern):
    model = ASRecModel(n_items=20, max_seq_length=6, hidden_size=8, n_heads=2, inner_size=8)
    full_state, full_config = model.to_original_state_dict(), model.to_original_config()
    if isinstance(state, dict):
        state = {**full_state, **state}
    if isinstance(config, dict):
        config = {**full_config, **config}
    with pytest.raises(error, match=pattern):
        ASRecModel.from_original_state_dict(state, config)
