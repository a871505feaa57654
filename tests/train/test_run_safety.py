"""Runs cannot be corrupted: ``--resume`` refuses other data (naming what changed), one run at
a time per run folder (a lock the OS releases when its process dies), and every refusal comes
before anything is written."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from asrec.cli import main
from asrec.data.preprocess import build_sequences
from asrec.train.fingerprint import data_fingerprint, fingerprint_changes
from asrec.train.run_lock import LOCK_FILE, RunLock

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SIZES = ["--hidden-size", "8", "--inner-size", "8", "--n-heads", "2", "--max-seq-length", "6", "--batch-size", "256",
         "--quiet"]
TINY = ["--dataset", "synthetic", "--synthetic-users", "40", "--synthetic-items", "24", *SIZES]


def _status(argv, capsys):
    try:
        code = main(["train", *argv])
    except SystemExit as stop:
        code = stop.code
    return code, capsys.readouterr().err


def _snapshot(folder):
    """Every file's name, size and modification time: what 'nothing was written' compares."""
    return {name: (os.stat(os.path.join(folder, name)).st_size, os.stat(os.path.join(folder, name)).st_mtime_ns)
            for name in sorted(os.listdir(folder))}


def _write_inter(path, reverse=False):
    """30 users x 8 interactions over 20 items; ``reverse``: every history in reverse time order
    (the same counts, the same statistics)."""
    rng = np.random.default_rng(0)
    lines = ["user_id:token\titem_id:token\ttimestamp:float"]
    for user in range(30):
        items = rng.permutation(20)[:8]
        times = np.arange(8)[::-1] if reverse else np.arange(8)
        lines += [f"u{user}\ti{item}\t{1000 * user + t}" for item, t in zip(items, times)]
    path.write_text("\n".join(lines) + "\n")


def test_fingerprint_names_each_changed_part():
    users = np.repeat(np.array([f"u{u}" for u in range(6)]), 5)
    items = np.array([f"i{(u * 3 + k) % 7}" for u in range(6) for k in range(5)])
    times = np.tile(np.arange(5.0), 6)
    base = data_fingerprint(build_sequences(users, items, times, 4, min_interactions=1))
    assert fingerprint_changes(base, data_fingerprint(build_sequences(users, items, times, 4, 1))) == []
    reversed_times = data_fingerprint(build_sequences(users, items, times[::-1].copy(), 4, 1))
    assert any("interactions changed" in c for c in fingerprint_changes(base, reversed_times))
    renamed = data_fingerprint(build_sequences(users, np.char.add(items, "x"), times, 4, 1))  # same ids, new tokens
    changed = fingerprint_changes(base, renamed)
    assert len(changed) == 1 and "item id map changed" in changed[0]


def test_resume_refuses_reversed_histories_before_writing(tmp_path, capsys):
    data = tmp_path / "data.inter"
    _write_inter(data)
    run = str(tmp_path / "run")
    argv = ["--data-path", str(data), "--preset", "ml-100k", *SIZES, "--min-interactions", "1"]
    assert main(["train", *argv, "--epochs", "1", "--output", run]) == 0
    _write_inter(data, reverse=True)  # same users, items, counts and statistics
    before = _snapshot(run)
    code, err = _status(["--resume", run, "--epochs", "2"], capsys)
    assert code == 1, err
    assert "has changed since the run began, with the same statistics" in err
    assert "interactions changed" in err and str(data) in err
    assert _snapshot(run) == before  # nothing written, not even the lock file's holder line
    _write_inter(data)  # the run's own data again: it continues
    assert main(["train", "--resume", run, "--epochs", "2", "--quiet"]) == 0


def _hold_lock(folder):
    """A separate process that takes the run folder's lock and sleeps."""
    code = (f"import sys, time; sys.path.insert(0, {ROOT!r}); from asrec.train.run_lock import RunLock; "
            f"lock = RunLock({str(folder)!r}); print('locked', flush=True); time.sleep(120)")
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    return holder


@pytest.mark.skipif(not RunLock.supported, reason="no fcntl on this platform")
def test_a_folder_in_use_is_refused_and_a_dead_holder_leaves_no_lock(tmp_path, capsys):
    folder = tmp_path / "run"
    folder.mkdir()
    holder = _hold_lock(folder)
    try:
        code, err = _status([*TINY, "--epochs", "1", "--output", str(folder)], capsys)
        assert code == 1, err
        assert f"--output: {folder} is in use by a running asrec train (process {holder.pid} on" in err
        assert sorted(os.listdir(folder)) == [LOCK_FILE]  # nothing of the refused run
    finally:
        holder.send_signal(signal.SIGKILL)  # a crash: the OS releases the lock
        holder.wait(timeout=60)
    assert main(["train", *TINY, "--epochs", "1", "--output", str(folder)]) == 0
    assert os.path.isfile(folder / "results.json")


@pytest.mark.skipif(not RunLock.supported, reason="no fcntl on this platform")
def test_resume_into_a_new_folder_refuses_a_run_still_writing_its_source(tmp_path, capsys):
    run = str(tmp_path / "run")
    assert main(["train", *TINY, "--epochs", "1", "--output", run]) == 0
    holder = _hold_lock(run)
    try:
        code, err = _status(["--resume", run, "--output", str(tmp_path / "new"), "--epochs", "2"], capsys)
        assert code == 1 and f"--resume: {run} is in use by a running asrec train" in err, err
        assert not os.path.exists(tmp_path / "new")
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=60)


@pytest.mark.skipif(not RunLock.supported, reason="no fcntl on this platform")
def test_two_runs_started_into_one_folder(tmp_path):
    """Two processes a moment apart: one trains, the other is refused (in use, or already
    holding a run if it came late) and the folder holds one run's files."""
    folder = str(tmp_path / "run")
    command = [sys.executable, "-m", "asrec", "train", *TINY, "--epochs", "2", "--output", folder]
    env = dict(os.environ, PYTHONPATH=ROOT)
    first = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.5)
    second = subprocess.Popen([*command[:-4], "--seed", "7", *command[-4:]], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    outcomes = []
    for process in (first, second):
        try:
            _, err = process.communicate(timeout=400)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
        outcomes.append((process.returncode, err))
    codes = sorted(code for code, _ in outcomes)
    assert codes == [0, 1], outcomes
    refused = next(err for code, err in outcomes if code == 1)
    assert "is in use by a running asrec train" in refused or "already holds a run" in refused, refused
    import json
    config = json.load(open(os.path.join(folder, "config.json")))
    results = json.load(open(os.path.join(folder, "results.json")))
    assert results["config"]["seed"] == config["seed"]  # one run's files, not a mix


@pytest.mark.parametrize("flag,value", [("--max-seq-length", "100000"), ("--inner-size", str(10**9)),
                                        ("--n-layers", "100000000"), ("--batch-size", str(10**12))])
def test_absurd_sizes_are_refused_at_once(flag, value, tmp_path, capsys):
    argv = [*TINY, flag, value, "--output", str(tmp_path / "run")]
    started = time.perf_counter()
    code, err = _status(argv, capsys)
    assert code == 1, err
    assert f"{flag} {value}" in err and "needs about" in err and "GiB" in err and "available" in err
    assert time.perf_counter() - started < 30
    assert not os.path.exists(tmp_path / "run")


def test_out_of_range_seed_names_the_flag(tmp_path, capsys):
    code, err = _status([*TINY, "--seed", str(2**70), "--output", str(tmp_path / "run")], capsys)
    assert code == 2 and "--seed: expected a non-negative int below 2**63" in err
    assert not os.path.exists(tmp_path / "run")


@pytest.mark.parametrize("flag", ["--synthetic-users", "--synthetic-items"])
def test_synthetic_sizes_beyond_the_generator_are_refused(flag, tmp_path, capsys):
    code, err = _status([*TINY, flag, str(10**9), "--output", str(tmp_path / "run")], capsys)
    assert code == 2 and f"{flag} must be <= 1,000,000" in err and "use --data-path" in err
    assert not os.path.exists(tmp_path / "run")


def test_non_utf8_data_file_is_named(tmp_path, capsys):
    data = tmp_path / "latin.inter"
    data.write_bytes("user_id:token\titem_id:token\ttimestamp:float\nu\xe9\ti1\t1\n".encode("latin-1"))
    code, err = _status(["--data-path", str(data), "--preset", "ml-100k", *SIZES, "--output", str(tmp_path / "run")],
                        capsys)
    assert code == 1 and str(data) in err and "UTF-8" in err, err
    assert not os.path.exists(tmp_path / "run")
