"""The catalog-scale rows of asrec bench (asrec.bench.scale) on a tiny catalog: every case runs
on both paths, in its own process, and the table pairs them."""

import torch

from asrec.bench import scale


def test_every_case_measures_on_both_paths():
    rows = [scale.measure(case, path, 500, 8, 16, 1, torch.device("cpu")) for case in scale.CASES
            for path in scale.PATHS]
    assert all(r["seconds"] > 0 and r["items"] == 500 for r in rows)
    table = scale.format_rows(rows)
    assert table.count("\n") == 1 + len(scale.CASES) and "| loss | 500 |" in table


def test_an_isolated_row_reports_its_own_peak():
    row = scale.run_isolated("loss", "materialised", 200_000, 64, 16, 1, "cpu")
    # the (64, 200000) float32 matrix is 51 MB; its softmax and gradient take as much again
    assert row["added_peak_mb"] > 51 and row["case"] == "loss"
