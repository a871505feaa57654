"""Timers: ``triton.testing.do_bench`` on the GPU, a warm-up + repeats wall-clock timer on the CPU.

Both return ``Timing`` with the median and the 20th/80th percentiles in milliseconds.
"""

import statistics
import time
from dataclasses import dataclass

import torch


@dataclass
class Timing:
    median_ms: float
    q20_ms: float
    q80_ms: float
    repeats: int


def _quantile(sorted_values, q):
    position = q * (len(sorted_values) - 1)
    low = int(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def time_cpu(fn, warmup: int = 1, repeats: int = 5) -> Timing:
    """Run ``fn`` ``warmup`` times untimed, then ``repeats`` times timed one by one."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1e3)
    samples.sort()
    return Timing(statistics.median(samples), _quantile(samples, 0.2), _quantile(samples, 0.8), repeats)


def time_cuda(fn, warmup_ms: float = 25, rep_ms: float = 100) -> Timing:
    """``triton.testing.do_bench`` when Triton is installed, CUDA events otherwise."""
    try:
        from triton.testing import do_bench
    except ImportError:
        do_bench = None
    if do_bench is not None:
        median, q20, q80 = do_bench(fn, warmup=warmup_ms, rep=rep_ms, quantiles=[0.5, 0.2, 0.8])
        return Timing(median, q20, q80, 0)
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    samples = []
    for _ in range(20):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        samples.append(start.elapsed_time(end))
    samples.sort()
    return Timing(statistics.median(samples), _quantile(samples, 0.2), _quantile(samples, 0.8), len(samples))


def time_fn(fn, device: torch.device, repeats: int) -> Timing:
    if device.type == "cuda":
        return time_cuda(fn)
    return time_cpu(fn, warmup=1, repeats=repeats)


def copy_bandwidth_gbs(device: torch.device, megabytes: int = 256, repeats: int = 5) -> float:
    """Measured device-to-device copy bandwidth in GB/s (bytes read + bytes written)."""
    n = megabytes * 2**20 // 4
    src = torch.empty(n, device=device).uniform_()
    dst = torch.empty_like(src)
    timing = time_fn(lambda: dst.copy_(src), device, repeats)
    return 2 * src.numel() * 4 / (timing.median_ms * 1e-3) / 1e9
