import json
import subprocess
import sys

import pytest

from asrec.cli import main

ROW_FIELDS = {"setting", "target", "mode", "implementation", "batch", "status"}
MEMORY_BOUND_OPS = ("input_stage", "fourier_smoothing", "frequency_filter")  # the rows that report GB/s
MEASURED_FIELDS = {"median_ms", "q20_ms", "q80_ms", "sequences_per_s", "speedup_vs_published"}


@pytest.fixture(scope="module")
def quick_result(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bench")
    out = subprocess.run([sys.executable, "-m", "asrec", "bench", "--quick", "--json", str(folder / "r.json"),
                          "--plot", str(folder / "r.png")], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    return json.loads((folder / "r.json").read_text()), out, folder


def test_quick_run_reports_every_case_and_implementation(quick_result):
    result, out, folder = quick_result
    assert {"device", "versions", "commit", "dtype", "batch", "copy_bandwidth_gb_per_s", "rows"} <= set(result)
    assert result["batch"] == 32 and result["versions"]["torch"]
    cases = {(r["setting"], r["target"], r["mode"]) for r in result["rows"]}
    for setting in ("ml-100k", "ml-1m"):
        assert (setting, "model", "eval") in cases and (setting, "model", "train-step") in cases
        for op in ("input_stage", "fourier_smoothing", "frequency_filter", "hybrid_attention", "multiscale_conv",
                   "hybrid_layer"):
            assert (setting, op, "forward") in cases and (setting, op, "forward+backward") in cases
    for row in result["rows"]:
        assert ROW_FIELDS <= set(row)
        if row["status"] == "ok":
            assert MEASURED_FIELDS <= set(row) and row["median_ms"] > 0
    measured = {r["implementation"] for r in result["rows"] if r["status"] == "ok"}
    assert measured == {"published", "reference"}
    absent = {r["implementation"]: r["reason"] for r in result["rows"] if r["status"] != "ok"}
    assert "Triton" in absent["triton"] and "CUDA" in absent["cuda"] and "--quick" in absent["reference+compile"]
    assert (folder / "r.png").read_bytes()[:4] == b"\x89PNG"
    assert "vs published" in out.stdout and "triton: not measured" in out.stdout
    assert "[ml-1m" in out.stderr  # progress
    for setting in ("ml-100k", "ml-1m"):  # the counter counts the rows it measures: 1/n, 2/n, ... n/n
        counters = [line.split("]")[0].split()[-1] for line in out.stderr.splitlines()
                    if line.startswith(f"[{setting} ")]
        measured = sum(r["status"] == "ok" and r["setting"] == setting for r in result["rows"])
        assert counters == [f"{k}/{measured}" for k in range(1, measured + 1)]
        for mode in ("eval", "train-step"):
            assert f"  {setting} model {mode}: reference is " in out.stdout.split("headline: ")[1]
    assert "warn" not in out.stderr.lower() and result["warnings"] == []
    assert {h["mode"] for h in result["headlines"]} == {"eval", "train-step"}


def test_memory_bound_ops_report_bandwidth(quick_result):
    result, _, _ = quick_result
    for row in result["rows"]:
        if row["status"] == "ok" and row["mode"] == "forward" and row["target"] in MEMORY_BOUND_OPS:
            assert row["gb_per_s"] > 0 and 0 < row["copy_bandwidth_fraction"]


@pytest.mark.parametrize("argv,message", [
    (["--settings", "ml-20m"], "--settings: unknown ['ml-20m']"),
    (["--dtype", "int8"], "--dtype: expected one of float32, bfloat16, float16, got 'int8'"),
    (["--batch", "0"], "--batch: expected a positive number of sequences, got 0"),
    (["--repeats", "0"], "--repeats: expected at least 1"),
    (["--device", "tpu"], "--device: expected auto, cpu or cuda"),
    (["--settings", " , "], "--settings: unknown"),
    (["--repeats", "-3"], "--repeats: expected at least 1, got -3"),
    (["--dtype", "float64"], "--dtype: expected one of float32, bfloat16, float16, got 'float64'"),
    (["--quick", "--no-such-flag"], "unrecognized arguments: --no-such-flag"),
    (["--batch", "many"], "invalid int value: 'many'"),
])
def test_bad_options_are_named(argv, message, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["bench", *argv])
    assert stop.value.code == 2
    assert message in capsys.readouterr().err


def test_missing_output_folder_is_a_one_line_error(capsys):
    assert main(["bench", "--json", "/no/such/folder/x.json"]) == 1
    err = capsys.readouterr().err
    assert err == "asrec bench: error: --json: folder /no/such/folder does not exist\n"
