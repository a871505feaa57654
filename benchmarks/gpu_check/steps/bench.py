"""Headline bench rows: the model's eval forward and training step at both published settings,
batch 256, float32, for each implementation of ``asrec bench`` but torch.compile (published
code, reference, triton, triton+graphs, cuda, cuda+graphs), built and timed by
``asrec.bench`` (its cases and timers). One bench.jsonl line per row as it is measured;
rows that cannot run here are written with the reason. CPU (dry run): the rows that run on
a CPU, timed once each at the tiny shapes."""

import time

import torch

from asrec.bench import cases as case_lib
from asrec.bench.timing import time_fn

from .. import plan, stepio

FILE = "bench.jsonl"


def run(step: stepio.Step) -> dict:
    dev = plan.device(step.dry_run)
    repeats = 1 if step.dry_run else 5  # CPU only; CUDA rows use do_bench's own repeats
    result = step.result
    result.update(rows=0, measured=0, failed=0)
    for shape in plan.bench_shapes(step.dry_run):
        built = case_lib.build_cases(shape.name, shape.config, shape.batch, dev, torch.float32,
                                     compile_reference=False)
        for case in [c for c in built if c.target == "model"]:
            published_ms = None
            for name in case_lib.IMPLEMENTATIONS:
                if name == "reference+compile":
                    continue  # minutes of compiling per row: not in a short GPU run
                row = dict(setting=shape.name, target=case.target, mode=case.mode, implementation=name,
                           batch=shape.batch, device=str(dev))
                if name not in case.run:
                    absent = case_lib.absent_reason(name, dev)
                    row.update(status="absent" if absent else "skipped",
                               reason=absent or case_lib.skip_reason(name, ""))
                else:
                    started = time.perf_counter()
                    try:
                        # one untimed call with the launches watched (the watch costs host time per launch)
                        with step.watching_launches(accumulate=True):
                            case.run[name]()
                        timing = time_fn(case.run[name], dev, repeats)
                        published_ms = timing.median_ms if name == "published" else published_ms
                        row.update(status="ok", median_ms=timing.median_ms, q20_ms=timing.q20_ms,
                                   q80_ms=timing.q80_ms, sequences_per_s=shape.batch / (timing.median_ms * 1e-3),
                                   speedup_vs_published=published_ms / timing.median_ms if published_ms else None)
                        result["measured"] += 1
                    except Exception as error:  # one failing row keeps the others
                        row.update(status="failed", reason=stepio.error_text(error))
                        result["failed"] += 1
                    row["seconds"] = round(time.perf_counter() - started, 2)
                step.append_json(FILE, row)
                result["rows"] += 1
                figure = (f"{row['median_ms']:.2f} ms" if row["status"] == "ok"
                          else f"{row['status']}: {row['reason']}")
                print(f"{shape.name:8s} {case.mode:11s} {name:14s} {figure}", flush=True)
    if result["failed"]:
        return dict(status="failed", reason=f"{result['failed']} of {result['rows']} rows failed")
    return {}


if __name__ == "__main__":
    stepio.main(run)
