"""Warm-up: compile every Triton launch the later steps make, in parallel processes, before
they run; Triton's on-disk cache then serves them (a cache hit loads a compiled kernel in
milliseconds; a cold compile takes about 2.4 s on one core, 7.8 s the filter backward).

The work is cut into units of (shape, call group, precision, op) (``calls``: the model's
loss and eval forward and the standalone ops at both precisions for the exactness suite;
the dropout training step and the bench's op rows at "highest" for graphs, bench, device
time and launch counts), heaviest first, and handed to one worker per core as each
finishes. Units that share a kernel may both compile it (it is cached once); the summary
reports the distinct launches (each one compile on a fresh machine) and the launches made.
"""

import concurrent.futures
import multiprocessing
import os
import time

from .. import calls as call_groups
from .. import plan, stepio, warm

# rough compile weight of one op's calls, for the order of the queue (backward kernels dominate)
HEAVY = ("hybrid_attention", "frequency_filter_groups", "input_stage", "multiscale_conv", "contrast_gelu",
         "feed_forward", "gated_attention", "residual_norm", "frequency_filter", "fourier_smoothing", "attention")


# call groups with backward first, the forward-only eval last
GROUP_ORDER = ("loss", "dropout", "standalone", "bench-ops", "scores")


def units(dry_run: bool, ops: list) -> list:
    """(shape, group, precision, op) units: one group's ops together (a worker records a group's
    calls once and keeps its two latest), heaviest groups and ops first (the last units to
    finish are then the short ones)."""
    found = []
    for shape in plan.shapes(dry_run):
        for precision in plan.precisions(dry_run):
            found += [(shape.name, g, precision, op) for g in call_groups.EXACTNESS_GROUPS for op in ops]
        if shape.bench:
            found += [(shape.name, g, "highest", op) for g in call_groups.BENCH_GROUPS for op in ops]
    names = [s.name for s in plan.shapes(dry_run)]

    def weight(unit):
        shape, group, precision, op = unit
        return (GROUP_ORDER.index(group), names.index(shape), precision != "highest",
                HEAVY.index(op) if op in HEAVY else len(HEAVY))
    return sorted(found, key=weight)


def run(step: stepio.Step) -> dict:
    import asrec

    missing = asrec.backends.missing_reason("triton")
    if missing is not None:
        return step.skip(f"Triton is absent: {missing}")
    if plan.device(step.dry_run).type != "cuda" and not asrec.backends.interpreting():
        return step.skip("no CUDA device, and Triton's interpreter is off (the dry run turns it on)")
    ops = [op for op in asrec.backends.registered_ops() if "triton" in plan.fused_backends(op)]
    todo = units(step.dry_run, ops)
    workers = min(len(todo), 2 if step.dry_run else (os.cpu_count() or 1))
    result = step.result
    result.update(units=len(todo), workers=workers, units_done=0, units_failed=0, launches=0, distinct_launches=0)
    print(f"warm-up: {len(todo)} units on {workers} worker processes", flush=True)
    keys, started = set(), time.perf_counter()
    context = multiprocessing.get_context("spawn")  # CUDA cannot be forked
    pool = concurrent.futures.ProcessPoolExecutor(workers, mp_context=context, initializer=warm.start_worker)
    try:
        futures = {pool.submit(warm.warm, unit, step.dry_run): unit for unit in todo}
        for future in concurrent.futures.as_completed(futures):
            unit = futures[future]
            try:
                done = future.result()
            except Exception as error:
                result["units_failed"] += 1
                print(f"  {'/'.join(unit)}: failed: {type(error).__name__}: {error}", flush=True)
                continue
            result["units_done"] += 1
            result["launches"] += len(done["keys"])
            keys |= done["keys"]
            result["distinct_launches"] = len(keys)
            print(f"  {'/'.join(unit)}: {done['calls']} calls, {len(done['keys'])} launches, "
                  f"{done['seconds']:.1f} s (worker {done['pid']}, {time.perf_counter() - started:.0f} s)", flush=True)
    finally:  # on an interrupt too: do not wait for the workers (they got the same SIGINT)
        pool.shutdown(wait=False, cancel_futures=True)
        step.save_warmed(keys)
    by_kernel = {}
    for key in keys:
        by_kernel[key[0]] = by_kernel.get(key[0], 0) + 1
    result["distinct_by_kernel"] = dict(sorted(by_kernel.items()))
    if result["units_failed"]:
        return dict(status="failed", reason=f"{result['units_failed']} of {len(todo)} units failed (steps.log)")
    return {}


if __name__ == "__main__":
    stepio.main(run)
