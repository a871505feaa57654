"""Checkpoints in range: converted (published) and loaded (asrec train) checkpoints refuse a
frequency filter level outside [0, 1] or not finite and any non-finite parameter, naming the
entry; a missing entry is named, never a bare KeyError."""

import math
import os

import pytest
import torch

from asrec.model import ASRecModel
from asrec.train.checkpoints import FORMAT, CheckpointError, load_best, load_last, load_model

THRESHOLD = "trm_encoder.layer.1.multi_head_attention.AHFF.threshold_param"


@pytest.fixture
def model():
    torch.manual_seed(0)
    return ASRecModel(n_items=12, max_seq_length=5, hidden_size=8, n_layers=2, n_heads=2, inner_size=8)


@pytest.mark.parametrize("level", [math.nan, math.inf, 1.5, -0.1])
def test_published_filter_level_out_of_range_is_named(model, level):
    state = model.to_original_state_dict()
    state[THRESHOLD] = torch.tensor(level)
    with pytest.raises(ValueError, match=rf"state_dict\['{THRESHOLD}'\]: the frequency filter's quantile level must "
                                         r"be one finite number in \[0, 1\]"):
        ASRecModel.from_original_state_dict(state, model.to_original_config())


@pytest.mark.parametrize("level", [0.0, 1.0, 0.5])
def test_published_filter_levels_in_range_load(model, level):
    state = model.to_original_state_dict()
    state[THRESHOLD] = torch.tensor(level)
    loaded = ASRecModel.from_original_state_dict(state, model.to_original_config())
    assert float(loaded.encoder.layers[1].seasonal.frequency_filter.threshold) == level


@pytest.mark.parametrize("key", ["item_embedding.weight", "trm_encoder.layer.0.feed_forward.dense_1.bias", "FSM.v0"])
def test_non_finite_published_parameter_is_named(model, key):
    state = model.to_original_state_dict()
    state[key] = state[key].clone()
    state[key].view(-1)[0] = math.nan
    with pytest.raises(ValueError, match=rf"state_dict\['{key}'\]: 1 of \d+ values are not finite \(first: nan\)"):
        ASRecModel.from_original_state_dict(state, model.to_original_config())


def _best(model, folder, **changes):
    payload = dict(format=FORMAT, model_config=model.config, state_dict=model.state_dict(), epoch=1, valid={},
                   dataset={})
    payload.update(changes)
    payload = {k: v for k, v in payload.items() if v is not None}
    path = os.path.join(folder, "best.pt")
    torch.save(payload, path)
    return path


def test_loaded_checkpoint_values_are_checked(model, tmp_path):
    assert torch.equal(load_model(_best(model, tmp_path)).item_embedding.weight, model.item_embedding.weight)
    state = model.state_dict()
    state["encoder.layers.0.seasonal.frequency_filter.threshold"] = torch.tensor(2.0)
    with pytest.raises(CheckpointError, match=r"load_model: .*\['encoder.layers.0.seasonal.frequency_filter.threshold'"
                                              r"\]: the frequency filter's quantile level"):
        load_model(_best(model, tmp_path, state_dict=state))
    state = model.state_dict()
    state["input_norm.weight"] = torch.full_like(state["input_norm.weight"], math.inf)
    with pytest.raises(CheckpointError, match=r"best.pt: .*\['input_norm.weight'\]: 8 of 8 values are not finite"):
        load_best(_best(model, tmp_path, state_dict=state))


@pytest.mark.parametrize("missing", ["model_config", "state_dict"])
def test_missing_model_entry_is_named(model, tmp_path, missing):
    with pytest.raises(CheckpointError, match=rf"load_model: .*best.pt is not a model checkpoint: it lacks '{missing}'"):
        load_model(_best(model, tmp_path, **{missing: None}))


def test_missing_best_and_resume_entries_are_named(model, tmp_path):
    with pytest.raises(CheckpointError, match=r"best.pt is not a run's best.pt: it lacks 'epoch'"):
        load_best(_best(model, tmp_path, epoch=None))
    last = dict(format=FORMAT, state_dict=model.state_dict(), optimizer={}, rng={}, config={},
                loop=dict(epoch=1, best=0.0, best_epoch=1, bad_epochs=0))
    torch.save(last, tmp_path / "last.pt")
    with pytest.raises(CheckpointError, match=r"--resume: .*last.pt is not a complete training checkpoint: its 'loop'"
                                              r": it lacks 'history'"):
        load_last(str(tmp_path))
    last["loop"]["history"] = []
    torch.save(last, tmp_path / "last.pt")
    with pytest.raises(CheckpointError, match=r"its 'config': it lacks 'dataset'"):
        load_last(str(tmp_path))
