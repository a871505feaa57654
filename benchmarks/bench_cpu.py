"""Per-op and whole-model CPU timings, published-equivalent eager against the reference."""

import pytest

CASES = [("model", "eval"), ("model", "train-step"), ("fourier_smoothing", "forward"),
         ("fourier_smoothing", "forward+backward"), ("frequency_filter", "forward"),
         ("frequency_filter", "forward+backward"), ("hybrid_layer", "forward"), ("hybrid_layer", "forward+backward")]


@pytest.mark.parametrize("implementation", ["published", "reference"])
@pytest.mark.parametrize("target,mode", CASES)
def bench_case(benchmark, cases, target, mode, implementation):
    benchmark.group = f"{target} {mode}"
    benchmark.pedantic(cases[(target, mode)].run[implementation], rounds=3, warmup_rounds=1)
