import pytest
import torch

import asrec
from asrec import backends
from asrec.ops.registry import OPS, implementation


def test_default_is_auto_and_auto_runs_the_reference(monkeypatch):
    monkeypatch.delenv(backends.ENV_VAR, raising=False)
    assert backends.selected_backend() == "auto"
    assert implementation("frequency_filter", "cpu") is asrec.reference.frequency_filter_ref
    assert implementation("hybrid_layer", "cuda") is asrec.reference.hybrid_layer_ref


def test_context_manager_nests_and_restores(monkeypatch):
    monkeypatch.delenv(backends.ENV_VAR, raising=False)
    with asrec.use_backend("reference"):
        assert backends.selected_backend() == "reference"
        with asrec.use_backend("auto"):
            assert backends.selected_backend() == "auto"
        assert backends.selected_backend() == "reference"
    assert backends.selected_backend() == "auto"


def test_environment_variable(monkeypatch):
    monkeypatch.setenv(backends.ENV_VAR, "reference")
    assert backends.selected_backend() == "reference"
    monkeypatch.setenv(backends.ENV_VAR, "triton")
    with pytest.raises(ValueError, match=r"ASREC_BACKEND: unknown asrec backend 'triton'; this build has reference, auto"):
        backends.selected_backend()


@pytest.mark.parametrize("name", ["triton", "cuda", "fast", 3])
def test_absent_backends_say_which_exist(name):
    with pytest.raises(ValueError, match="this build has reference, auto"):
        with asrec.use_backend(name):
            pass


def test_describe_lists_every_op():
    text = backends.describe()
    for op in OPS:
        assert f"{op}" in text
    assert "not in this build" in text


def test_model_runs_under_explicit_reference():
    model = asrec.ASRecModel(n_items=10, max_seq_length=4, hidden_size=8, n_heads=2, inner_size=8).eval()
    items, lengths = torch.tensor([[1, 2, 0, 0]]), torch.tensor([2])
    with asrec.use_backend("reference"):
        a = model(items, lengths)
    torch.testing.assert_close(a, model(items, lengths))
