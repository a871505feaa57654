"""``asrec train`` under bad input: every flag's bad values, bad files and run folders, resume
and output-folder cases. Malformed command lines exit 2 with argparse's usage; bad files,
folders and devices exit 1 with one line on stderr; no case ends in a traceback."""

import json
import os
import shutil

import pytest
import torch

from asrec.cli import main
from asrec.train.checkpoints import recover_best
from asrec.train.command import OVERRIDES

TINY = ["--dataset", "synthetic", "--synthetic-users", "40", "--synthetic-items", "24", "--hidden-size", "8",
        "--inner-size", "8", "--n-heads", "2", "--max-seq-length", "6", "--batch-size", "256", "--quiet"]


def _fails(argv, capsys, status):
    """Runs ``asrec train argv``; returns stderr after checking the exit status (and, for 1, one line)."""
    try:
        code = main(["train", *argv])
    except SystemExit as stop:
        code = stop.code
    err = capsys.readouterr().err
    assert code == status, err
    if status == 1:
        assert err.count("\n") == 1 and err.startswith("asrec train: error: "), err
    return err


def _bad_values(name, kind):
    """A value of the wrong kind (argparse rejects it) and values out of range (our checks)."""
    if kind is str:
        return [("bogus", "expected one of gelu")]
    wrong_kind = [("x", f"invalid {kind.__name__} value: 'x'")]
    if kind is int:
        return wrong_kind + [("-1", "expected a"), ("1.5", "invalid int value")]
    return wrong_kind + [("nan", "expected a"), ("inf", "expected a"), ("-1", "expected a")]


OVERRIDE_CASES = [(name, value, message) for name, (kind, _, _) in OVERRIDES.items()
                  for value, message in _bad_values(name, kind)]


@pytest.mark.parametrize("name,value,message", OVERRIDE_CASES)
def test_every_override_rejects_bad_values(name, value, message, capsys):
    flag = "--" + name.replace("_", "-")
    err = _fails(["--dataset", "synthetic", f"{flag}={value}"], capsys, 2)
    assert flag in err and message in err


@pytest.mark.parametrize("argv,message", [
    ([], "give --dataset NAME or --data-path PATH"),
    (["--dataset", "netflix"], "--dataset: unknown 'netflix'"),
    (["--dataset", "synthetic", "--dtype", "fp8"], "argument --dtype: invalid choice: 'fp8'"),
    (["--dataset", "synthetic", "--device", "tpu"], "argument --device: invalid choice: 'tpu'"),
    (["--dataset", "synthetic", "--filter-scope", "user"], "argument --filter-scope: invalid choice: 'user'"),
    (["--dataset", "synthetic", "--preset", "ml-20m"], "argument --preset: invalid choice"),
    (["--dataset", "synthetic", "--n-heads", "3"], "--n-heads: 3 does not divide hidden size 32"),
    (["--dataset", "synthetic", "--epochs", "0"], "--epochs: expected a positive int up to 1,000,000, got 0"),
    (["--dataset", "synthetic", "--epochs", "1e21"], "argument --epochs: invalid int value: '1e21'"),
    (["--dataset", "synthetic", "--epochs", "10" + "0" * 22], "--epochs: expected a positive int up to 1,000,000"),
    (["--dataset", "synthetic", "--patience", "10" + "0" * 22], "--patience: expected a non-negative int up to"),
    (["--dataset", "synthetic", "--device", "cuda:x"], "argument --device: invalid choice: 'cuda:x'"),
    (["--dataset", "synthetic", "--min-interactions", "0"], "--min-interactions: expected a positive int"),
    (["--dataset", "synthetic", "--synthetic-users", "2"], "--synthetic-users must be >= 10, got 2"),
    (["--dataset", "synthetic", "--synthetic-items", "5"], "--synthetic-items must be >= 12, got 5"),
    (["--dataset", "synthetic", "--synthetic-users", "many"], "argument --synthetic-users: invalid int value"),
    (["--dataset", "ml-100k", "--synthetic-users", "100"], "--synthetic-users applies only to --dataset synthetic"),
    (["--dataset", "synthetic", "--data-path", "x.inter"], "--dataset synthetic is generated, it reads no file"),
    (["--dataset", "synthetic", "--cache-dir", "/tmp"], "--cache-dir applies only to a downloaded --dataset NAME"),
    (["--resume", "RUN", "--hidden-size", "64"], "only --epochs and --patience may change (got --hidden-size)"),
    (["--resume", "RUN", "--dtype", "bf16", "--filter-scope", "batch"], "(got --filter-scope, --dtype)"),
    (["--resume", "RUN", "--dataset", "synthetic"], "(got --dataset)"),
    (["--dataset", "synthetic", "--no-such-flag"], "unrecognized arguments: --no-such-flag"),
    (["--dataset", "synthetic", "--output", ""], "--output: empty"),
    (["--resume", " "], "--resume: empty"),
])
def test_malformed_command_lines_exit_2(argv, message, capsys):
    assert message in _fails(argv, capsys, 2)


def test_custom_file_needs_a_preset(tmp_path, capsys):
    path = tmp_path / "mine.inter"
    path.write_text("user_id:token\titem_id:token\ttimestamp:float\n" +
                    "".join(f"{u}\t{i}\t{u + i}\n" for u in range(6) for i in range(6)))
    err = _fails(["--data-path", str(path), "--output", str(tmp_path / "run")], capsys, 2)
    assert f"--preset: no preset for data {path}; pass --preset with one of" in err


def test_bad_data_files_are_one_line(tmp_path, capsys):
    assert "--data-path: /no/such/file.inter does not exist" in _fails(["--data-path", "/no/such/file.inter"],
                                                                       capsys, 1)
    assert "expected one .inter file in" in _fails(["--data-path", str(tmp_path), "--preset", "ml-100k"], capsys, 1)
    garbage = tmp_path / "garbage.inter"
    garbage.write_bytes(b"\x00\xff\xfe not an atomic file \x80\n")
    _fails(["--data-path", str(garbage), "--preset", "ml-100k", "--output", str(tmp_path / "g")], capsys, 1)


def test_failed_data_leaves_no_run_folder(tmp_path, capsys):
    (tmp_path / "empty.inter").write_text("")
    folder = tmp_path / "run"
    err = _fails(["--data-path", str(tmp_path / "empty.inter"), "--preset", "ml-100k", "--output", str(folder)],
                 capsys, 1)
    assert "empty file" in err and not folder.exists()


def test_unusable_cache_dir_is_one_line(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    err = _fails(["--dataset", "ml-1m", "--cache-dir", str(tmp_path / "file" / "cache")], capsys, 1)
    assert "--cache-dir: cannot create" in err


def test_cuda_without_cuda_is_one_line(tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    err = _fails([*TINY, "--device", "cuda", "--output", str(tmp_path / "run")], capsys, 1)
    assert "--device cuda: no CUDA device" in err


def test_output_that_is_a_file_or_unwritable(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    assert "exists and is not a folder" in _fails([*TINY, "--output", str(tmp_path / "file")], capsys, 1)
    assert "--output: cannot write run folder" in _fails([*TINY, "--output", str(tmp_path / "file" / "run")],
                                                         capsys, 1)


def test_diverging_training_stops_with_one_line(tmp_path, capsys):
    err = _fails([*TINY, "--epochs", "1", "--learning-rate", "1e30", "--output", str(tmp_path / "run")], capsys, 1)
    assert "epoch 1: the training loss is nan (training diverged); no epoch was saved" in err
    assert "start again with a lower --learning-rate" in err


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A finished two-epoch run (never modified by the tests: they copy it)."""
    folder = str(tmp_path_factory.mktemp("cli") / "run")
    assert main(["train", *TINY, "--epochs", "2", "--min-interactions", "30", "--output", folder]) == 0
    return folder


def test_min_interactions_filters_the_data(run):
    results = json.load(open(os.path.join(run, "results.json")))
    assert results["config"]["min_interactions"] == 30
    assert results["dataset"]["users"] < 40 and results["dataset"]["items"] < 24  # 5 keeps all 40 and 24


def _copy(run, tmp_path, name="copy"):
    target = str(tmp_path / name)
    shutil.copytree(run, target)
    return target


def _log(folder):
    return [json.loads(line) for line in open(os.path.join(folder, "log.jsonl"))]


def test_output_holding_a_run_is_refused(run, capsys):
    err = _fails([*TINY, "--output", run], capsys, 1)
    assert f"--output: {run} already holds a run; continue it with --resume {run}" in err


def test_bad_resume_targets_are_named(run, tmp_path, capsys):
    assert "--resume: /no/such/run does not exist" in _fails(["--resume", "/no/such/run"], capsys, 1)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "holds no finished epoch" in _fails(["--resume", str(empty)], capsys, 1)
    corrupt = _copy(run, tmp_path, "corrupt")
    with open(os.path.join(corrupt, "last.pt"), "wb") as f:
        f.write(b"garbage")
    err = _fails(["--resume", corrupt], capsys, 1)
    assert f"checkpoint file {corrupt}/last.pt is unreadable or corrupt" in err and "arbage" not in err
    truncated = _copy(run, tmp_path, "truncated")
    data = open(os.path.join(truncated, "last.pt"), "rb").read()
    with open(os.path.join(truncated, "last.pt"), "wb") as f:
        f.write(data[:len(data) // 2])
    assert "is unreadable or corrupt" in _fails(["--resume", truncated], capsys, 1)
    best = os.path.join(run, "best.pt")
    assert "is not a training checkpoint (a run's last.pt)" in _fails(["--resume", best], capsys, 1)
    no_best = _copy(run, tmp_path, "no_best")
    os.remove(os.path.join(no_best, "best.pt"))
    assert f"--resume: {no_best} has no best.pt" in _fails(["--resume", no_best], capsys, 1)


def test_resume_a_finished_run_into_a_new_output(run, tmp_path, capsys):
    before = open(os.path.join(run, "last.pt"), "rb").read()
    new = str(tmp_path / "new")
    assert main(["train", "--resume", run, "--output", new, "--quiet"]) == 0  # nothing left to train
    assert main(["train", "--resume", run, "--output", str(tmp_path / "more"), "--epochs", "3", "--quiet"]) == 0
    assert open(os.path.join(run, "last.pt"), "rb").read() == before and len(_log(run)) == 2  # left as it was
    assert _log(new) == _log(run)
    more = _log(str(tmp_path / "more"))
    assert more[:2] == _log(run) and [r["epoch"] for r in more] == [1, 2, 3]
    for name in ("best.pt", "last.pt", "results.json", "config.json"):
        assert os.path.isfile(os.path.join(new, name)), name
    assert main(["train", "--resume", str(tmp_path / "more"), "--epochs", "3", "--quiet"]) == 0  # resumable
    assert "already holds a run" in _fails(["--resume", run, "--output", new], capsys, 1)


def test_interrupted_best_save_is_finished_or_undone(run, tmp_path):
    """A run stopped between staging a new best epoch and writing last.pt (undo), or between
    writing last.pt and renaming the staged files (finish)."""
    folder = _copy(run, tmp_path)
    best_epoch = torch.load(os.path.join(folder, "last.pt"), weights_only=True)["loop"]["best_epoch"]
    best = open(os.path.join(folder, "best.pt"), "rb").read()
    for name in ("best.pt", "best_original.pth", "best_original_config.json"):
        os.replace(os.path.join(folder, name), os.path.join(folder, name + ".staged"))
    recover_best(folder, best_epoch)  # last.pt names the staged epoch: put in place
    assert open(os.path.join(folder, "best.pt"), "rb").read() == best
    assert not [n for n in os.listdir(folder) if n.endswith(".staged")]
    payload = torch.load(os.path.join(folder, "best.pt"), weights_only=True)
    torch.save(dict(payload, epoch=best_epoch + 1), os.path.join(folder, "best.pt.staged"))
    recover_best(folder, best_epoch)  # a later epoch that last.pt never recorded: dropped
    assert open(os.path.join(folder, "best.pt"), "rb").read() == best
    assert not os.path.exists(os.path.join(folder, "best.pt.staged"))
    assert main(["train", "--resume", folder, "--quiet"]) == 0


def test_help_states_what_several_processes_compute(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["train", "--help"])
    assert stop.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "is taken over each process's share, not over the whole batch" in text
    assert "With --filter-scope sequence (a threshold per sequence) K processes compute one process's function" in text
    assert "exit status: 0 done; 2 a malformed command line" in text


def test_no_cuda_graphs_runs_the_same_eager_steps_on_the_cpu(tmp_path, capsys):
    """On the CPU no graph is captured either way: the flag leaves the results unchanged."""
    runs = []
    for extra in ([], ["--no-cuda-graphs"]):
        output = tmp_path / f"run{len(runs)}"
        assert main(["train", *TINY, "--epochs", "1", "--device", "cpu", "--output", str(output), *extra]) == 0
        runs.append(json.loads((output / "results.json").read_text())["test"])
    capsys.readouterr()
    assert runs[0] == runs[1]


def test_a_named_dataset_needs_its_own_file_in_a_data_folder(tmp_path, capsys):
    """The split's settings follow the dataset's name: a folder without ml-100k.inter is not
    silently read as ml-100k."""
    (tmp_path / "other.inter").write_text("user_id:token\titem_id:token\ttimestamp:float\n1\t1\t1\n")
    err = _fails(["--dataset", "ml-100k", "--data-path", str(tmp_path)], capsys, 1)
    assert "has no ml-100k.inter for --dataset ml-100k (found other.inter)" in err


def test_steps_per_epoch_trains_a_sampled_epoch(run, tmp_path):
    """--steps-per-epoch N: each epoch trains the first N batches of its shuffle, then evaluates
    as a whole epoch does; the run's own (unlimited) epochs are the control."""
    whole = _log(run)[0]["train_steps"]
    assert whole > 1
    folder = str(tmp_path / "sampled")
    assert main(["train", *TINY, "--epochs", "2", "--min-interactions", "30", "--steps-per-epoch", "1",
                 "--output", folder]) == 0
    log = _log(folder)
    assert [record["train_steps"] for record in log] == [1, 1]
    assert json.load(open(os.path.join(folder, "config.json")))["steps_per_epoch"] == 1
    assert all("hit@20" in record["valid"] for record in log)
