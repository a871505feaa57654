"""asrec.recbole: without RecBole, a clear ImportError; with it (RecBole's venv), the class's
state_dict layout, scores, loss and a training step through RecBole's own data."""

import importlib.util
import subprocess
import sys

import pytest
import torch

HAVE_RECBOLE = importlib.util.find_spec("recbole") is not None
needs_recbole = pytest.mark.skipif(not HAVE_RECBOLE, reason='needs RecBole (pip install "asrec[recbole]")')


def test_import_asrec_does_not_import_recbole():
    code = "import sys, asrec, asrec.data, asrec.train.loop; assert 'recbole' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.skipif(HAVE_RECBOLE, reason="RecBole is installed")
def test_without_recbole_the_error_says_how_to_get_it():
    with pytest.raises(ImportError, match=r'pip install "asrec\[recbole\]"'):
        import asrec.recbole  # noqa: F401


@pytest.fixture(scope="module")
def recbole_data(tmp_path_factory):
    import logging

    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation

    from asrec.recbole import ASRec, published_config

    from .compare_splits import generate
    folder = str(tmp_path_factory.mktemp("amazon-beauty"))
    generate("amazon-beauty", folder, seed=0)
    logging.disable(logging.WARNING)
    small = {"hidden_size": 16, "inner_size": 16, "n_heads": 2, "MAX_ITEM_LIST_LENGTH": 10, "eval_batch_size": 32}
    config = Config(model=ASRec, dataset="amazon-beauty", config_dict=published_config("amazon-beauty", small))
    config["data_path"] = folder
    return config, data_preparation(config, create_dataset(config))


@needs_recbole
def test_state_dict_is_the_published_layout_both_ways(recbole_data):
    from asrec import ASRecModel, checkpoint
    from asrec.recbole import ASRec

    config, (train_data, _, _) = recbole_data
    model = ASRec(config, train_data._dataset)
    state = model.state_dict()
    assert list(state) == [name for name, _ in checkpoint.name_map(2)]
    assert state["item_embedding.weight"].shape == (model.n_items, 16)
    # a published state_dict (here: an ASRecModel's, converted) loads and round-trips
    source = ASRecModel(n_items=model.n_items, max_seq_length=10, hidden_size=16, n_heads=2, inner_size=16)
    model.load_state_dict(source.to_original_state_dict())
    for name, value in model.state_dict().items():
        assert torch.equal(value, source.to_original_state_dict()[name]), name
    wrapped = torch.nn.ModuleDict({"inner": model})  # nested under a prefix, the same names
    assert list(wrapped.state_dict()) == ["inner." + name for name in state]


@needs_recbole
def test_scores_and_loss_are_the_models(recbole_data):
    from asrec.recbole import ASRec

    config, (train_data, _, test_data) = recbole_data
    model = ASRec(config, train_data._dataset).eval()
    interaction = next(iter(test_data))[0]
    seq, length = interaction["item_id_list"], interaction["item_length"]
    scores = model.full_sort_predict(interaction)
    assert scores.shape == (len(interaction), model.n_items)
    assert torch.equal(scores, model.asrec.full_sort_scores(seq, length))
    picked = model.predict(interaction)
    assert torch.allclose(picked, scores.gather(1, interaction["item_id"].view(-1, 1)).squeeze(1), atol=1e-6)
    loss = model.calculate_loss(interaction)
    assert torch.allclose(loss, torch.nn.functional.cross_entropy(scores, interaction["item_id"]))


@needs_recbole
def test_recbole_trainer_fits_and_evaluates(recbole_data, tmp_path, monkeypatch):
    from recbole.trainer import Trainer

    from asrec.recbole import ASRec, load_best

    monkeypatch.chdir(tmp_path)  # RecBole's Trainer writes log_tensorboard/ in the working folder
    config, (train_data, valid_data, test_data) = recbole_data
    config["checkpoint_dir"], config["epochs"] = str(tmp_path), 2
    model = ASRec(config, train_data._dataset)
    before = model.state_dict()["item_embedding.weight"].clone()
    trainer = Trainer(config, model)
    trainer.fit(train_data, valid_data, saved=True, show_progress=False)
    load_best(trainer)  # Trainer.evaluate(load_best_model=True) fails on torch >= 2.6 (weights_only)
    result = trainer.evaluate(test_data, load_best_model=False, show_progress=False)
    assert set(result) == {f"{m}@{k}" for m in ("hit", "ndcg", "mrr") for k in (1, 5, 10, 20)}
    assert not torch.equal(before, model.state_dict()["item_embedding.weight"])


@needs_recbole
def test_negative_sampling_is_refused(recbole_data):
    from asrec.recbole import ASRec

    config, (train_data, _, _) = recbole_data
    saved = config["train_neg_sample_args"]
    config["train_neg_sample_args"] = {"distribution": "uniform", "sample_num": 1}
    try:
        with pytest.raises(ValueError, match="train_neg_sample_args"):
            ASRec(config, train_data._dataset)
    finally:
        config["train_neg_sample_args"] = saved


@needs_recbole
def test_run_keeps_recbole_folders_in_its_own_output(tmp_path, monkeypatch):
    import os
    import warnings

    from asrec.recbole import run
    from asrec.recbole.run import default_output

    from .compare_splits import generate
    data = tmp_path / "data"
    data.mkdir()
    generate("amazon-beauty", str(data), seed=1)
    working = tmp_path / "working"
    working.mkdir()
    monkeypatch.chdir(working)
    small = {"hidden_size": 16, "inner_size": 16, "n_heads": 2, "MAX_ITEM_LIST_LENGTH": 10, "eval_batch_size": 32,
             "train_batch_size": 64}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = run("amazon-beauty", data_path=str(data), config_dict=small, epochs=1, output="out")
    assert not [w for w in caught if w.category is FutureWarning], [str(w.message) for w in caught]
    assert set(result["test_result"]) == {f"{m}@{k}" for m in ("hit", "ndcg", "mrr") for k in (1, 5, 10, 20)}
    assert result["output"] == str(working / "out") and os.getcwd() == str(working)
    assert sorted(os.listdir(working)) == ["out"]  # no log/, log_tensorboard/ or saved/ in the working folder
    assert {"log", "log_tensorboard", "saved"} <= set(os.listdir(working / "out"))
    assert any(name.endswith(".pth") for name in os.listdir(working / "out" / "saved"))
    default = default_output("amazon-beauty")  # the run folder without output=: under runs/, numbered on
    assert default.startswith(os.path.join("runs", "recbole-amazon-beauty-"))
    os.makedirs(default)
    again = default_output("amazon-beauty")
    assert again != default and not os.path.exists(again)  # never an existing folder
    with pytest.raises(ValueError, match="epochs: expected a positive int, got 0"):
        run("amazon-beauty", data_path=str(data), epochs=0)
    with pytest.raises(ValueError, match=r"epochs: 2 contradicts config_dict\['epochs'\] = 3"):
        run("amazon-beauty", data_path=str(data), config_dict={"epochs": 3}, epochs=2)
