"""Short end-to-end runs of ``asrec train`` on the synthetic dataset."""

import json
import math
import os
import subprocess
import sys

import pytest
import torch

from asrec import ASRecModel
from asrec.cli import main
from asrec.data import load_dataset
from asrec.train.checkpoints import load_model
from asrec.train.distributed import Runtime
from asrec.train.evaluate import evaluate, popularity_metrics

SMALL = ["--dataset", "synthetic", "--synthetic-users", "80", "--synthetic-items", "48", "--hidden-size", "16",
         "--inner-size", "16", "--n-heads", "2", "--max-seq-length", "10", "--batch-size", "64", "--quiet"]
CPU = Runtime(0, 1, torch.device("cpu"))


def _log(folder):
    return [json.loads(line) for line in open(os.path.join(folder, "log.jsonl"))]


def _data():
    return load_dataset("synthetic", None, 10, synthetic_options=dict(n_users=80, n_items=48))[0]


@pytest.fixture(scope="module")
def short_run(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("run"))
    assert main(["train", *SMALL, "--epochs", "3", "--output", folder]) == 0
    return folder


def test_short_run_lowers_the_loss_and_writes_everything(short_run):
    log = _log(short_run)
    assert [r["epoch"] for r in log] == [1, 2, 3]
    assert log[-1]["train_loss"] < log[0]["train_loss"]
    for name in ("best.pt", "best_original.pth", "best_original_config.json", "last.pt", "results.json",
                 "config.json"):
        assert os.path.isfile(os.path.join(short_run, name)), name
    results = json.load(open(os.path.join(short_run, "results.json")))
    assert set(results["test"]) == {f"{m}@{k}" for m in ("hit", "ndcg", "mrr") for k in (1, 5, 10, 20)}


def test_checkpoints_reload_to_the_same_scores(short_run):
    results = json.load(open(os.path.join(short_run, "results.json")))
    data = _data()
    model = load_model(os.path.join(short_run, "best.pt"))
    assert evaluate(model, data, "test", 256, CPU) == results["test"]
    config = json.load(open(os.path.join(short_run, "best_original_config.json")))
    original = torch.load(os.path.join(short_run, "best_original.pth"), weights_only=True)
    published = ASRecModel.from_original_state_dict(original, config)
    assert evaluate(published, data, "valid", 256, CPU) == results["valid"]


def test_resume_continues_exactly(short_run, tmp_path):
    straight = str(tmp_path / "straight")
    assert main(["train", *SMALL, "--epochs", "2", "--output", straight]) == 0
    resumed = str(tmp_path / "resumed")
    assert main(["train", *SMALL, "--epochs", "1", "--output", resumed]) == 0
    assert main(["train", "--resume", resumed, "--epochs", "2", "--quiet"]) == 0
    a, b = _log(straight), _log(resumed)
    assert [r["train_loss"] for r in a] == [r["train_loss"] for r in b]
    assert [r["valid"] for r in a] == [r["valid"] for r in b]


def test_asrec_beats_popularity_clearly(tmp_path):
    folder = str(tmp_path / "run")
    args = ["--dataset", "synthetic", "--synthetic-users", "300", "--epochs", "4", "--quiet", "--output", folder]
    assert main(["train", *args]) == 0
    data = load_dataset("synthetic", None, 20, synthetic_options=dict(n_users=300, n_items=300))[0]
    popular = popularity_metrics(data, "test")
    ours = json.load(open(os.path.join(folder, "results.json")))["test"]
    assert ours["hit@10"] > 2 * popular["hit@10"] and ours["ndcg@10"] > 2 * popular["ndcg@10"], (ours, popular)


def test_two_gloo_processes_give_the_single_process_metrics(tmp_path):
    folder = str(tmp_path / "ddp")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               "-m", "asrec", "train", *SMALL, "--epochs", "2", "--device", "cpu", "--output", folder,
               "--eval-batch-size", "16"]
    out = subprocess.run(command, capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    log = _log(folder)
    assert [r["epoch"] for r in log] == [1, 2]  # written once, by rank 0
    results = json.load(open(os.path.join(folder, "results.json")))
    assert results["world_size"] == 2
    model = load_model(os.path.join(folder, "best.pt"))
    data = _data()
    # eval batches of 16 alternate between the two ranks; one process must agree exactly
    assert evaluate(model, data, "valid", 16, CPU) == results["valid"]
    assert evaluate(model, data, "test", 16, CPU) == results["test"]


@pytest.mark.parametrize("argv,message", [
    ([], "give --dataset NAME or --data-path PATH"),
    (["--dataset", "netflix"], "--dataset: unknown 'netflix'"),
    (["--data-path", "/no/such/file.inter"], "--data-path: /no/such/file.inter does not exist"),
    (["--dataset", "synthetic", "--dtype", "fp8"], "--dtype: expected float32 or bf16, got 'fp8'"),
    (["--dataset", "synthetic", "--hidden-dropout-prob", "1.5"], "--hidden-dropout-prob: expected a probability"),
    (["--dataset", "synthetic", "--n-heads", "3"], "--n-heads: 3 does not divide hidden size 32"),
    (["--dataset", "synthetic", "--batch-size", "0"], "--batch-size: expected a positive int, got 0"),
    (["--dataset", "synthetic", "--preset", "ml-20m"], "argument --preset: invalid choice"),
    (["--dataset", "synthetic", "--synthetic-users", "2"], "--synthetic-users must be >= 10"),
])
def test_bad_options_are_named(argv, message, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["train", *argv])
    assert stop.value.code == 2
    assert message in capsys.readouterr().err


def test_custom_file_needs_a_preset(tmp_path, capsys):
    path = tmp_path / "mine.inter"
    path.write_text("user_id:token\titem_id:token\ttimestamp:float\n" +
                    "".join(f"{u}\t{i}\t{u + i}\n" for u in range(6) for i in range(6)))
    with pytest.raises(SystemExit):
        main(["train", "--data-path", str(path), "--output", str(tmp_path / "run")])
    assert "--preset: no preset for dataset None" in capsys.readouterr().err


def test_resume_refuses_changed_settings(short_run, capsys):
    with pytest.raises(SystemExit):
        main(["train", "--resume", short_run, "--hidden-size", "64"])
    assert "only --epochs and --patience may change (got --hidden-size)" in capsys.readouterr().err


def test_missing_resume_file_is_named(tmp_path, capsys):
    assert main(["train", "--resume", str(tmp_path)]) == 1
    assert "asrec train: error: --resume: no checkpoint at" in capsys.readouterr().err


def test_folder_without_an_inter_file_is_one_line_error(tmp_path, capsys):
    assert main(["train", "--data-path", str(tmp_path), "--preset", "ml-100k"]) == 1
    assert "expected one .inter file in" in capsys.readouterr().err


def test_bf16_autocast_trains_on_cpu(tmp_path):
    folder = str(tmp_path / "bf16")
    assert main(["train", *SMALL, "--epochs", "1", "--dtype", "bf16", "--output", folder]) == 0
    log = _log(folder)
    assert len(log) == 1 and math.isfinite(log[0]["train_loss"])
    results = json.load(open(os.path.join(folder, "results.json")))
    assert 0 <= results["test"]["hit@20"] <= 1
