import pytest
import torch

from asrec import ASRecModel
from asrec.baselines import PublishedASRec

from ..helpers import item_batch, perturb, published_config


def _model(**kw):
    model = ASRecModel(n_items=40, max_seq_length=7, hidden_size=8, n_heads=2, inner_size=16, **kw)
    perturb(model)
    return model


def test_keys_order_and_shapes_are_the_published_ones():
    model = _model(n_layers=3)
    original = model.to_original_state_dict()
    published = PublishedASRec(40, published_config(model)).state_dict()
    assert list(original) == list(published)
    for key, value in published.items():
        assert original[key].shape == value.shape, key


def test_round_trip_is_lossless():
    model = _model(fsm_mix=0.4)
    with torch.no_grad():  # the unused tensors must survive too
        model.encoder.fsm.unused_norm_weight.normal_()
        model.encoder.layers[1].seasonal.unused_head_weights.normal_()
    again = ASRecModel.from_original_state_dict(model.to_original_state_dict(), published_config(model))
    assert again.config == model.config
    for (name, a), (_, b) in zip(model.state_dict().items(), again.state_dict().items()):
        assert torch.equal(a, b), name
    items, lengths, _ = item_batch(4, 7, 40)
    model.eval(), again.eval()
    assert torch.equal(model.full_sort_scores(items, lengths), again.full_sort_scores(items, lengths))


def test_file_round_trip(tmp_path):
    model = _model()
    torch.save(model.to_original_state_dict(), tmp_path / "published.pth")
    state = torch.load(tmp_path / "published.pth", weights_only=True)
    again = ASRecModel.from_original_state_dict(state, published_config(model))
    assert torch.equal(again.item_embedding.weight, model.item_embedding.weight)


def test_missing_and_unexpected_keys_are_listed():
    model = _model()
    state = model.to_original_state_dict()
    del state["FSM.v0"]
    state["trm_encoder.layer.0.extra"] = torch.zeros(1)
    with pytest.raises(ValueError, match=r"missing keys \['FSM.v0'\].*unexpected keys \['trm_encoder.layer.0.extra'\]"):
        ASRecModel.from_original_state_dict(state, published_config(model))


def test_config_problems_are_named():
    model = _model()
    config = published_config(model)
    del config["A"]
    with pytest.raises(ValueError, match=r"missing published config keys \['A'\]"):
        ASRecModel.from_original_state_dict(model.to_original_state_dict(), config)
    config = published_config(model) | {"hidden_size": 16}
    with pytest.raises(ValueError, match="hidden size 8"):
        ASRecModel.from_original_state_dict(model.to_original_state_dict(), config)


def test_wrong_tensor_shape_is_reported():
    model = _model()
    config = published_config(model) | {"MAX_ITEM_LIST_LENGTH": 9}
    with pytest.raises(ValueError, match=r"position_embedding.weight: expected \(9, 8\), got \(7, 8\)"):
        ASRecModel.from_original_state_dict(model.to_original_state_dict(), config)
