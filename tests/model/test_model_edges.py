"""The edges the docs promise: ``torch.compile(model, fullgraph=True)`` on a default model
(check_values=True) compiles, keeps the id and length checks as runtime assertions and
computes the eager values; inputs on another device than the parameters are named."""

import pytest
import torch

import asrec

SIZES = dict(n_items=20, max_seq_length=6, hidden_size=8, n_heads=2, inner_size=8)


def _batch():
    generator = torch.Generator().manual_seed(0)
    return torch.randint(1, 20, (3, 6), generator=generator), torch.tensor([6, 3, 1])


def test_fullgraph_compile_of_a_default_model_checks_ids_at_run_time():
    torch.manual_seed(0)
    model = asrec.ASRecModel(**SIZES).eval()
    assert model.check_values
    seq, length = _batch()
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    with asrec.use_backend("reference"), torch.no_grad():
        torch.testing.assert_close(compiled(seq, length), model(seq, length))
        bad = seq.clone()
        bad[0, 0] = 25
        with pytest.raises(RuntimeError, match="Runtime assertion failed"):
            compiled(bad, length)
        with pytest.raises(RuntimeError, match="Runtime assertion failed"):
            compiled(seq, torch.tensor([7, 3, 1]))
        with pytest.raises(ValueError, match=r"item_seq: values must lie in \[0, 19\], got min 1, max 25"):
            model(bad, length)  # eager: the named check


def test_inputs_on_another_device_than_the_parameters_are_named():
    model = asrec.ASRecModel(**SIZES, device="meta")
    seq, length = _batch()
    with pytest.raises(ValueError, match=r"item_seq: expected device meta, where the model's parameters are, got "
                                         r"cpu \(move the inputs with .to\('meta'\) or the model with .to\('cpu'\)\)"):
        model(seq, length)
    with pytest.raises(ValueError, match="item_seq: expected device meta"):
        model.sequence_output(seq)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int8, torch.int16, torch.int32])
@pytest.mark.parametrize("backend", ["reference", "triton"])
def test_narrow_integer_ids_give_the_int64_result(dtype, backend):
    """The model's check and the input stage agree: every integer dtype the model takes is taken
    by the ops too (uint8 ids passed the model's check, then input_stage refused them)."""
    pytest.importorskip("triton")
    torch.manual_seed(0)
    model = asrec.ASRecModel(**SIZES).eval()
    seq, length = _batch()
    with asrec.use_backend(backend), torch.no_grad():
        torch.testing.assert_close(model(seq.to(dtype), length.to(dtype)), model(seq, length))


@pytest.mark.parametrize("value", ["no", 0, 1, None])
def test_check_values_must_be_a_bool(value):
    with pytest.raises(TypeError, match=rf"check_values: expected True or False, got {value!r}"):
        asrec.ASRecModel(**SIZES, check_values=value)
    model = asrec.ASRecModel(**SIZES)
    with pytest.raises(TypeError, match="check_values: expected True or False"):
        model.check_values = value
    assert model.check_values is True
