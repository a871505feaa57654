"""Device time per op: every case of ``asrec bench`` (model rows and op rows) under each
implementation, the sum of its GPU kernel times per call (``benchmarks/profile_gpu_ops.py``'s
``device_ms``: torch.profiler, host time excluded). One device-time.jsonl line per row as it
is measured. CPU: skipped (the profiler's device times are CUDA kernels')."""

from .. import stepio

FILE = "device-time.jsonl"


def run(step: stepio.Step) -> dict:
    if step.dry_run:  # decided before importing torch: a skipped step costs no start-up
        return step.skip("device time is the CUDA kernels' time: the dry run has no CUDA device")
    import torch

    from asrec.bench.cases import build_cases
    from benchmarks.profile_gpu_ops import device_ms

    from .. import plan

    dev = plan.device(step.dry_run)
    if dev.type != "cuda":
        return step.skip("device time is the CUDA kernels' time: no CUDA device")
    step.result.update(rows=0, failed=0)
    with step.watching_launches():
        for shape in plan.bench_shapes(step.dry_run):
            for case in build_cases(shape.name, shape.config, shape.batch, dev, torch.float32, False):
                for name, run_case in case.run.items():
                    row = dict(setting=shape.name, target=case.target, mode=case.mode, implementation=name)
                    try:
                        row["device_ms"] = device_ms(run_case)
                        if case.bytes_moved:
                            row["gb_per_s"] = case.bytes_moved / (row["device_ms"] * 1e-3) / 1e9
                    except Exception as error:  # one failing row keeps the others
                        row.update(status="failed", reason=stepio.error_text(error))
                        step.result["failed"] += 1
                    step.append_json(FILE, row)
                    step.result["rows"] += 1
                    print(f"{shape.name:8s} {case.target:18s} {case.mode:17s} {name:14s} "
                          f"{row.get('device_ms', float('nan')):8.3f} ms", flush=True)
    if step.result["failed"]:
        return dict(status="failed", reason=f"{step.result['failed']} of {step.result['rows']} rows failed")
    return {}


if __name__ == "__main__":
    stepio.main(run)
