"""Device time of each op and of the model steps, per implementation: the sum of the GPU
kernel times of one call (torch.profiler), so host-side launch overhead is excluded. Set
beside ``asrec bench`` (wall time per call) it separates kernel speed from Python overhead.

    python benchmarks/profile_gpu_ops.py [--json PATH]     (CUDA only)
"""

import argparse
import json

import torch
from torch.profiler import ProfilerActivity, profile

from asrec.bench.cases import build_cases
from asrec.bench.settings import SETTINGS
from asrec.bench.timing import copy_bandwidth_gbs

CALLS = 5


def device_ms(run) -> float:
    for _ in range(2):
        run()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(CALLS):
            run()
        torch.cuda.synchronize()
    return sum(event.self_device_time_total for event in prof.key_averages()) / 1e3 / CALLS


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="write the rows here")
    args = parser.parse_args()
    bandwidth = copy_bandwidth_gbs(torch.device("cuda"))
    print(f"device {torch.cuda.get_device_name()} | copy bandwidth {bandwidth:.0f} GB/s | device ms per call")
    rows = []
    for setting, config in SETTINGS.items():
        for case in build_cases(setting, config, 256, torch.device("cuda"), torch.float32, False):
            for name, run in case.run.items():
                ms = device_ms(run)
                row = dict(setting=setting, target=case.target, mode=case.mode, implementation=name, device_ms=ms)
                if case.bytes_moved:
                    row["gb_per_s"] = case.bytes_moved / (ms * 1e-3) / 1e9
                    row["copy_bandwidth_fraction"] = row["gb_per_s"] / bandwidth
                rows.append(row)
                extra = f"  {row['gb_per_s']:7.0f} GB/s ({100 * row['copy_bandwidth_fraction']:.0f}% of copy)" \
                    if "gb_per_s" in row else ""
                print(f"{setting:<8} {case.target:<18} {case.mode:<17} {name:<10} {ms:8.3f} ms{extra}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(device=torch.cuda.get_device_name(), copy_bandwidth_gb_per_s=bandwidth, rows=rows), f,
                      indent=2)


if __name__ == "__main__":
    main()
