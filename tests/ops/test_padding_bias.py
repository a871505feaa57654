"""The model's attention bias and read-out positions (ops.padding_bias): the Triton kernel gives
the reference's bits (negative zero at real items included), with and without lengths."""

import pytest
import torch

import asrec
from asrec.ops import padding_bias
from asrec.reference import key_padding_bias

from ..triton_support import DEVICE


@pytest.mark.parametrize("batch,seq_len", [(1, 1), (3, 7), (5, 50), (2, 200)])
@pytest.mark.parametrize("dtype", [torch.int64, torch.int32])
def test_triton_gives_the_reference_bits(batch, seq_len, dtype):
    item_seq = torch.randint(0, 4, (batch, seq_len), device=DEVICE).to(dtype)
    lengths = torch.randint(1, seq_len + 1, (batch,), device=DEVICE).to(dtype)
    for given in (lengths, None):
        with asrec.use_backend("triton"):
            bias, last = padding_bias(item_seq, given)
        with asrec.use_backend("reference"):
            expected_bias, expected_last = padding_bias(item_seq, given)
        assert bias.shape == (batch, 1, 1, seq_len) and bias.dtype == torch.float32
        assert torch.equal(bias.view(torch.int32), expected_bias.view(torch.int32))  # the zeros' signs too
        if given is None:
            assert last is None and expected_last is None
        else:
            assert last.dtype == torch.int64 and torch.equal(last, expected_last)
            assert torch.equal(last, given.long() - 1)


def test_the_bias_is_the_published_key_padding_bias():
    item_seq = torch.tensor([[0, 0, 3, 4], [1, 2, 3, 4]], device=DEVICE)
    bias, _ = padding_bias(item_seq)
    assert torch.equal(bias, key_padding_bias(item_seq > 0, torch.float32))


def test_an_empty_batch_gives_empty_results():
    with asrec.use_backend("triton"):
        bias, last = padding_bias(torch.zeros(0, 5, dtype=torch.int64, device=DEVICE),
                                  torch.zeros(0, dtype=torch.int64, device=DEVICE))
    assert bias.shape == (0, 1, 1, 5) and last.shape == (0,)


@pytest.mark.parametrize("args,match", [
    ((torch.zeros(2, 3),), r"padding_bias: item_seq must be a \(batch, seq_len\) integer tensor, got shape \(2, 3\) "
                           r"of torch.float32"),
    ((torch.zeros(2, 3, dtype=torch.int64), torch.ones(3, dtype=torch.int64)),
     r"padding_bias: item_seq_len must be a \(2,\) integer tensor, got shape \(3,\)"),
    ((torch.zeros(2, 3, dtype=torch.int64), torch.ones(2)), r"item_seq_len must be a \(2,\) integer tensor"),
])
def test_bad_arguments_are_named(args, match):
    with pytest.raises(ValueError, match=match):
        padding_bias(*args)


def test_a_list_is_a_type_error_naming_the_argument():
    with pytest.raises(TypeError, match="padding_bias: item_seq must be a torch.Tensor, got list"):
        padding_bias([[1, 2]])
