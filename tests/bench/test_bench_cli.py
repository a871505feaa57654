"""``asrec bench`` loses nothing: output paths, optional packages and devices are checked before
anything is measured; the table is printed before files are written; a failed write keeps
the results; a failing row or Ctrl-C keeps the other rows. Measuring is replaced by a fake
here (the real run is tests/bench/test_bench_command.py)."""

import json
import os
import sys

import pytest
import torch

from asrec.bench import cases as case_lib
from asrec.bench import runner
from asrec.cli import main

ROW = dict(setting="ml-100k", target="model", mode="eval", batch=4, status="ok", median_ms=2.0, q20_ms=1.9,
           q80_ms=2.1, sequences_per_s=2000.0)
FAKE = dict(device="cpu", device_type="cpu", versions={}, commit="abc", argv=[], dtype="float32", batch=4, repeats=1,
            settings={}, copy_bandwidth_gb_per_s=10.0,
            rows=[dict(ROW, implementation="published", speedup_vs_published=1.0),
                  dict(ROW, implementation="reference", median_ms=1.0, speedup_vs_published=2.0)])


@pytest.fixture
def measured(monkeypatch):
    """Replaces the measurement: records its calls, returns FAKE."""
    calls = []

    def run_benchmark(**options):
        calls.append(options)
        return json.loads(json.dumps(FAKE))
    monkeypatch.setattr(runner, "run_benchmark", run_benchmark)
    return calls


def _run(argv, capsys):
    try:
        code = main(["bench", *argv])
    except SystemExit as stop:
        code = stop.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("make_argv,message", [
    (lambda d: ["--json", str(d)], "is a folder; give a file path such as"),
    (lambda d: ["--plot", str(d)], "is a folder; give a file path such as"),
    (lambda d: ["--json", str(d / "no" / "x.json")], "--json: folder"),
    (lambda d: ["--json", "/proc/asrec-bench.json"], "--json: cannot write /proc/asrec-bench.json"),
    (lambda d: ["--plot", str(d / "file" / "x.png")], "--plot: folder"),
])
def test_unwritable_outputs_fail_before_measuring(make_argv, message, measured, tmp_path, capsys):
    (tmp_path / "file").write_text("")
    code, out, err = _run(make_argv(tmp_path), capsys)
    assert code == 1 and message in err and err.count("\n") == 1, err
    assert measured == [] and out == ""


def test_plot_without_matplotlib_fails_before_measuring(measured, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    code, _, err = _run(["--plot", str(tmp_path / "p.png")], capsys)
    assert code == 1 and "--plot needs matplotlib" in err and "pip install 'asrec[bench]'" in err
    assert measured == [] and not os.path.exists(tmp_path / "p.png")


def test_cuda_without_cuda_fails_before_measuring(measured, capsys):
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    code, _, err = _run(["--device", "cuda"], capsys)
    assert code == 1 and "--device cuda: no CUDA device" in err and measured == []


def test_same_file_for_json_and_plot_is_malformed(measured, tmp_path, capsys):
    code, _, err = _run(["--json", str(tmp_path / "x"), "--plot", str(tmp_path / "x")], capsys)
    assert code == 2 and "--json and --plot name the same file" in err and measured == []


def test_settings_are_deduplicated(measured, capsys):
    assert _run(["--settings", "ml-1m, ml-1m,ml-100k", "--quick"], capsys)[0] == 0
    assert measured[0]["settings"] == ["ml-1m", "ml-100k"]
    assert measured[0]["batch"] == 32 and measured[0]["repeats"] == 2 and not measured[0]["compile_reference"]


def test_files_are_written_after_the_table(measured, tmp_path, capsys):
    code, out, _ = _run(["--json", str(tmp_path / "r.json"), "--plot", str(tmp_path / "r.txt")], capsys)
    assert code == 0 and "vs published" in out
    assert json.loads((tmp_path / "r.json").read_text())["rows"] == FAKE["rows"]
    assert (tmp_path / "r.txt").read_bytes()[:4] == b"\x89PNG"  # a PNG, whatever the suffix


def test_a_failed_json_write_keeps_the_results(measured, tmp_path, monkeypatch, capsys):
    def disk_full(result, path):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(runner, "write_json", disk_full)
    import tempfile
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    code, out, err = _run(["--json", str(tmp_path / "r.json")], capsys)
    assert code == 1 and "vs published" in out  # the table came first
    assert "--json: could not write" in err and "No space left on device" in err
    kept = err.split("the results were written to ")[1].split(" instead")[0]
    assert os.path.dirname(kept) == str(tmp_path) and json.load(open(kept))["rows"] == FAKE["rows"]


def test_a_failed_plot_keeps_the_table_and_json(measured, tmp_path, monkeypatch, capsys):
    def broken(result, path):
        raise RuntimeError("renderer failed")
    monkeypatch.setattr(runner, "write_plot", broken)
    code, out, err = _run(["--json", str(tmp_path / "r.json"), "--plot", str(tmp_path / "r.png")], capsys)
    assert code == 1 and "vs published" in out
    assert "--plot: could not write" in err and "renderer failed" in err and f"and in {tmp_path / 'r.json'}" in err
    assert json.loads((tmp_path / "r.json").read_text())["rows"] == FAKE["rows"]


def _fake_cases(monkeypatch, runs):
    """build_cases returns one model case whose implementations run ``runs``."""
    monkeypatch.setattr(runner, "copy_bandwidth_gbs", lambda device: 10.0)
    monkeypatch.setattr(case_lib, "build_cases", lambda setting, *args: [
        case_lib.Case(setting, "model", "eval", 4, run=dict(runs))])


def test_a_failing_row_keeps_the_others(monkeypatch, capsys):
    def out_of_memory():
        raise RuntimeError("out of memory")
    _fake_cases(monkeypatch, {"published": lambda: None, "reference": out_of_memory})
    result = runner.run_benchmark(["ml-100k"], 4, torch.float32, torch.device("cpu"), 1, False, "off")
    status = {r["implementation"]: r["status"] for r in result["rows"]}
    assert status["published"] == "ok" and status["reference"] == "failed"
    assert "ml-100k model eval reference: failed: RuntimeError: out of memory" in runner.format_table(result)


def test_interrupt_keeps_the_rows_measured(monkeypatch, tmp_path, capsys):
    def interrupt():
        raise KeyboardInterrupt
    _fake_cases(monkeypatch, {"published": lambda: None, "reference": interrupt})
    code, out, err = _run(["--settings", "ml-100k", "--json", str(tmp_path / "r.json"), "--repeats", "1"], capsys)
    assert code == 130 and "interrupted after 1 rows" in out and "interrupted" in err
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["interrupted"] and [r["implementation"] for r in result["rows"]] == ["published"]


def test_a_setting_that_cannot_be_set_up_keeps_the_others(monkeypatch):
    def build_cases(setting, *args):
        if setting == "ml-1m":
            raise RuntimeError("out of memory")
        return [case_lib.Case(setting, "model", "eval", 4, run={"published": lambda: None})]
    monkeypatch.setattr(runner, "copy_bandwidth_gbs", lambda device: 10.0)
    monkeypatch.setattr(case_lib, "build_cases", build_cases)
    result = runner.run_benchmark(["ml-1m", "ml-100k"], 4, torch.float32, torch.device("cpu"), 1, False, "off")
    assert [(r["setting"], r["status"]) for r in result["rows"]][:2] == [("ml-1m", "failed"), ("ml-100k", "ok")]
    assert "ml-1m (setup)" in runner.format_table(result)
