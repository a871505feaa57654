"""The GPU check's driver: runs the steps in order of value, each in its own subprocess with a
slice of the budget, and keeps summary.json current.

    bash benchmarks/gpu_check.sh OUT [--budget 420] [--only a,b] [--step-seconds NAME=S]
    bash benchmarks/gpu_check.sh --dry-run OUT     # the same steps on the CPU (CI)

Planned time on a fresh H100/H200 machine (16 cores, torch 2.11 + CUDA 13, Triton 3.6),
budget 420 s. No GPU was lent to the session that wrote this: these are estimates, and
BENCHMARKS.md ("The GPU check") has the same table with how each figure was reached; the
first GPU run's summary.json (seconds, slice and estimate per step) replaces them.

    step          estimate  how
    environment      10 s   torch import + nvidia-smi + nvcc --version
    build            90 s   4 .cu + 3 .cpp units for one architecture, all at once
                            (MAX_JOBS = 16 > 7 units): the slowest unit plus the link
    warmup          120 s   beside the build: 195 distinct launches (counted on the CPU with
                            the warm-up's own key at the real shapes, kernels skipped; 522
                            over its 308 units) x 2.4 s per compile on one core (the issue's
                            figure) = 470 core-s (1,250 if every unit compiled its own copy)
                            plus ~420 core-s of nvcc, on 16 cores: 56-105 s, + ~10 s start-up
    exactness        45 s   cache hits only; the float64 oracle and the replays on the GPU
    graphs           25 s   4 checks x 2 settings x 2 backends, each a capture
    bench            45 s   24 rows x do_bench (25 + 100 ms) plus captures and set-up
    device_time      45 s   ~120 rows x 7 profiled calls
    launches         20 s   8 counts of 2 calls under a dispatch mode

Build and warm-up run side by side, so the plan is 10 + 120 + 45 + 25 + 45 + 45 + 20 = 310 s,
110 s under the budget. Each step's slice is what is left of the budget minus half the
estimate of every later stage (a slow step eats into the margin before the later steps'
time) minus the grace period; a step with less than MIN_SLICE left is skipped.
"""

import argparse
import os
import shutil
import tempfile
import time

from . import running
from .summary import Summary

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# (real, dry run) seconds per step; stages run one after another, the steps of a stage side by side
ESTIMATES = {"environment": (10, 10), "build": (90, 5), "warmup": (120, 40), "exactness": (45, 70),
             "graphs": (25, 5), "bench": (45, 15), "device_time": (45, 5), "launches": (20, 20)}
STAGES = [["environment"], ["build", "warmup"], ["exactness"], ["graphs"], ["bench"], ["device_time"], ["launches"]]
STEPS = [name for stage in STAGES for name in stage]
FILES = ("summary.json", "steps.log", "build.log", "exactness.jsonl", "graphs.jsonl", "bench.jsonl",
         "device-time.jsonl", "launches.txt")  # everything the check writes under OUT (at most 8)
GRACE = 10.0  # seconds between SIGINT and SIGKILL
MIN_SLICE = 5.0


def _arguments(argv):
    parser = argparse.ArgumentParser(prog="benchmarks/gpu_check.sh", description=__doc__.splitlines()[0])
    parser.add_argument("out", help="folder for the results (at most 8 files)")
    parser.add_argument("--budget", type=float, default=420.0, help="seconds for the whole check (default 420)")
    parser.add_argument("--dry-run", action="store_true", help="the same steps on the CPU, tiny shapes")
    parser.add_argument("--only", help=f"comma-separated steps to run (of {', '.join(STEPS)})")
    parser.add_argument("--step-seconds", action="append", default=[], metavar="NAME=SECONDS",
                        help="cap one step's slice (repeatable)")
    args = parser.parse_args(argv)
    args.only = set(args.only.split(",")) if args.only else set(STEPS)
    caps = {}
    for item in args.step_seconds:
        name, _, seconds = item.partition("=")
        try:
            caps[name] = float(seconds)
        except ValueError:
            caps[name] = -1.0
        if name not in STEPS or caps[name] <= 0:
            parser.error(f"--step-seconds: expected NAME=SECONDS (SECONDS > 0) with NAME one of {', '.join(STEPS)}, "
                         f"got {item!r}")
    args.caps = caps
    unknown = args.only - set(STEPS)
    if unknown:
        parser.error(f"--only: unknown steps {sorted(unknown)}; the steps are {', '.join(STEPS)}")
    return args


def _environment(dry_run: bool) -> dict:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "") if env.get("PYTHONPATH") else ROOT
    if dry_run:
        env.update(TRITON_INTERPRET="1", CUDA_VISIBLE_DEVICES="")  # the CPU even on a GPU machine
    else:
        env.pop("TRITON_INTERPRET", None)
    return env


def main(argv=None) -> int:
    args = _arguments(argv)
    os.makedirs(args.out, exist_ok=True)
    out = os.path.abspath(args.out)
    for name in FILES:  # a fresh run: the steps append to these
        if os.path.exists(os.path.join(out, name)):
            os.remove(os.path.join(out, name))
    estimate = {name: ESTIMATES[name][1 if args.dry_run else 0] for name in STEPS}
    summary = Summary(out, STEPS, args.budget, args.dry_run, ROOT)
    summary.write()
    scratch = tempfile.mkdtemp(prefix="asrec-gpu-check-")
    env = _environment(args.dry_run)
    started = time.monotonic()
    try:
        for index, stage in enumerate(STAGES):
            chosen = [name for name in stage if name in args.only]
            for name in stage:
                if name not in args.only:
                    summary.record(name, dict(status="skipped", reason="not selected (--only)"))
            later = sum(max((estimate[n] for n in s if n in args.only), default=0) for s in STAGES[index + 1:])
            left = args.budget - (time.monotonic() - started)
            runs = []
            for name in chosen:
                seconds = min(left - later / 2 - GRACE, args.caps.get(name, float("inf")))
                if seconds < MIN_SLICE:
                    summary.record(name, dict(status="skipped", estimate_s=estimate[name],
                                              reason=f"budget spent: {left:.0f} s left, {later / 2:.0f} s kept for "
                                                     "the later steps"))
                    continue
                print(f"[{time.monotonic() - started:5.0f} s] {name}: slice {seconds:.0f} s "
                      f"(estimate {estimate[name]} s)", flush=True)
                runs.append(running.start(name, out, scratch, args.dry_run, env, ROOT, seconds))
                summary.record(name, dict(status="skipped", reason="running", estimate_s=estimate[name],
                                          slice_s=round(seconds, 1)))
            summary.write()

            def done(run, status, fields):
                running.append_log(out, run, status)
                summary.record(run.name, dict(fields, status=status))
                if run.name == "environment":
                    summary.environment(fields)
                if run.name == "exactness":
                    summary.exactness(os.path.join(out, "exactness.jsonl"))
                summary.write()
                print(f"[{time.monotonic() - started:5.0f} s] {run.name}: {status} in {fields['seconds']} s"
                      + (f" ({fields['reason']})" if fields.get("reason") else ""), flush=True)
            running.wait_all(runs, GRACE, done)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        summary.write()
    statuses = [s["status"] for s in summary.data["steps"]]
    print(f"summary: {os.path.join(out, 'summary.json')}; exact pairs: {len(summary.data['exact_pairs'])}, "
          f"GPU-verified: {len(summary.data['gpu_verified'])}", flush=True)
    return 1 if any(s in ("failed", "timed out") for s in statuses) else 0
