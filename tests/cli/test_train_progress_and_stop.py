"""``asrec train`` as a person sees it: a progress line with no stale characters, ``--resume``
saying when nothing is left to train and what ``--epochs`` means, SIGTERM stopping a run as
Ctrl-C does with the resume command printed."""

import io
import os
import signal
import subprocess
import sys
import time

import pytest

from asrec.cli import main
from asrec.train.progress import Progress

TINY = ["--dataset", "synthetic", "--synthetic-users", "40", "--synthetic-items", "24", "--hidden-size", "8",
        "--inner-size", "8", "--n-heads", "2", "--max-seq-length", "6", "--batch-size", "256", "--quiet"]
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Terminal(io.StringIO):
    def isatty(self):
        return True


def _screen(text: str) -> str:
    """What a terminal shows of ``text``: ``\\r`` returns to the line's start and overwrites."""
    lines = []
    for raw in text.split("\n"):
        line = []
        for part in raw.split("\r"):
            line[:len(part)] = part
        lines.append("".join(line))
    return "\n".join(lines)


def test_the_progress_line_leaves_no_stale_characters():
    stream = Terminal()
    bar = Progress(3, "epoch 1", stream=stream)
    bar.update(1, loss="12.345678", extra="a long field")
    bar.update(3, loss="1.2")  # a shorter line over a longer one
    bar.close()
    shown = _screen(stream.getvalue()).rstrip("\n").rstrip()
    assert shown.startswith("epoch 1 3/3 [") and shown.endswith("0s left"), repr(shown)
    assert "long field" not in shown and "leftt" not in shown
    assert stream.getvalue().endswith("\n")


def test_a_log_file_gets_whole_lines_every_tenth():
    stream = io.StringIO()
    bar = Progress(20, "epoch 1", stream=stream)
    for step in range(1, 21):
        bar.update(step, loss="1.0")
    bar.close()
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue() and 1 < len(lines) <= 11 and lines[-1].startswith("epoch 1 20/20")


@pytest.fixture(scope="module")
def one_epoch(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("resume") / "run")
    assert main(["train", *TINY, "--epochs", "1", "--output", folder]) == 0
    return folder


def test_resume_says_when_nothing_is_left_and_what_epochs_means(one_epoch, tmp_path, capsys):
    capsys.readouterr()
    assert main(["train", "--resume", one_epoch, "--epochs", "1", "--output", str(tmp_path / "same"),
                 "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "--resume: nothing left to train: it has trained 1 of its 1 epochs; --epochs is the run's total, not " \
           "how many more: --epochs 2 or more trains further; evaluating its best epoch (1) again" in out
    assert "epoch 2:" not in out
    assert main(["train", "--resume", one_epoch, "--epochs", "2", "--output", str(tmp_path / "more"),
                 "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "nothing left to train" not in out and "epoch 2:" in out


def test_epochs_help_says_it_is_the_total(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "the run's total number of epochs; with --resume too, the total, not how many more" in help_text
    assert "143 terminated (SIGTERM)" in help_text


def test_sigterm_stops_a_run_as_ctrl_c_does_and_prints_the_resume_command(tmp_path):
    folder = str(tmp_path / "run")
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("ASREC_DEBUG", None)
    process = subprocess.Popen([sys.executable, "-m", "asrec", "train", *TINY, "--epochs", "10000", "--patience",
                                "10000", "--output", folder], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=env)
    try:
        deadline = time.monotonic() + 300
        while not os.path.exists(os.path.join(folder, "last.pt")):  # an epoch has finished
            assert process.poll() is None and time.monotonic() < deadline, process.communicate()
            time.sleep(0.2)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 143, err
    assert f"asrec train: terminated (SIGTERM); continue with: asrec train --resume {folder}" in err
    assert "Traceback" not in err
    assert main(["train", "--resume", folder, "--epochs", "1", "--quiet"]) == 0  # the folder resumes
