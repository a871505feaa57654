"""The evaluation of ``asrec train`` ranks over item tiles (asrec.ops.target_ranks): its metrics
equal those of the materialised (batch, n_items) matrix, and a NaN score still stops it."""

import numpy as np
import pytest
import torch

from asrec import ASRecModel
from asrec.data import build_sequences
from asrec.data.synthetic import generate
from asrec.train.distributed import Runtime
from asrec.train.evaluate import ModelDiverged, evaluate

CPU = Runtime(device=torch.device("cpu"), rank=0, world_size=1)


def _setup():
    raw = generate(n_users=60, n_items=90, seed=4)
    data = build_sequences(raw["user"], raw["item"], raw["time"], 12, min_interactions=1)
    torch.manual_seed(1)
    model = ASRecModel(n_items=data.n_items + 1, max_seq_length=12, hidden_size=16, n_layers=1, n_heads=2,
                       inner_size=32)
    return data, model


def test_tiled_metrics_equal_the_materialised_metrics():
    data, model = _setup()
    materialised = lambda seq, length: model.full_sort_scores(seq, length)  # noqa: E731
    for split in ("valid", "test"):
        tiled = evaluate(model, data, split, 16, CPU)
        assert tiled == evaluate(model, data, split, 16, CPU, scorer=materialised)
        assert 0 < tiled["hit@20"] <= 1


def test_nan_scores_still_stop_the_evaluation():
    data, model = _setup()
    with torch.no_grad():
        model.item_embedding.weight[3, 0] = float("nan")
    with pytest.raises(ModelDiverged, match="NaN"):
        evaluate(model, data, "valid", 16, CPU)
    assert np.isfinite(list(evaluate(model, data, "valid", 16, CPU,
                                     scorer=lambda s, n: torch.nan_to_num(model.full_sort_scores(s, n))).values())).all()
