"""Bad input: a ValueError or TypeError naming the argument, expected and given."""

import pytest
import torch

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
    (dict(filter_scope="global"), r"scope: expected one of"),
])
def test_bad_construction(kwargs, pattern):
    args = dict(hidden_size=8, max_seq_length=6, n_heads=2, inner_size=8) | kwargs
    with pytest.raises(ValueError, match=pattern):
        ASRec(**args)


def test_bad_n_items():
    with pytest.raises(ValueError, match=r"n_items: expected an int >= 2"):
        ASRecModel(n_items=1, max_seq_length=6)
