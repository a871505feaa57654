"""``asrec bench --batch`` beyond the device's memory is refused before anything is measured."""

import time

from asrec.cli import main


def test_a_batch_that_cannot_fit_is_refused_at_once(capsys):
    started = time.perf_counter()
    assert main(["bench", "--quick", "--settings", "ml-100k", "--device", "cpu", "--batch", str(10**9)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("asrec bench: error: --batch 1000000000 at setting ml-100k: needs about") and "GiB" in err
    assert err.count("\n") == 1 and time.perf_counter() - started < 30
