"""CUDA graphs (``asrec.graphs``) at the published settings, on each fused backend built:
a replayed training step equals the eager step for the same RNG state (loss and every
parameter after the optimizer step); replays draw fresh dropout masks (three replays at
lr 0, three different losses); graphed eval scores equal eager ones; an eager step makes no
host synchronisation (``torch.cuda.set_sync_debug_mode("error")``). One graphs.jsonl line per
check (``graph_checks``). CPU: skipped (graphs capture CUDA work only)."""

from .. import stepio

FILE = "graphs.jsonl"


def run(step: stepio.Step) -> dict:
    if step.dry_run:  # decided before importing torch: a skipped step costs no start-up
        return step.skip("CUDA graphs capture CUDA work: the dry run has no CUDA device")
    import asrec

    from .. import plan
    from ..graph_checks import CHECKS

    dev = plan.device(step.dry_run)
    if dev.type != "cuda":
        return step.skip("CUDA graphs capture CUDA work: no CUDA device")
    backends = [b for b in asrec.backends.FUSED_BACKENDS if asrec.backends.missing_reason(b) is None]
    step.result.update(checks=0, failed=0, backends=backends)
    with step.watching_launches():
        for backend in backends:
            for shape in plan.bench_shapes(step.dry_run):
                for name, check in CHECKS.items():
                    with asrec.use_backend(backend):
                        try:
                            record = check(shape, dev)
                        except Exception as error:  # one failing check keeps the others
                            record = dict(passed=False, reason=stepio.error_text(error))
                    record = dict(check=name, backend=backend, shape=shape.name, **record)
                    step.append_json(FILE, record)
                    print(f"{backend} {shape.name} {name}: {'passed' if record['passed'] else 'FAILED'}", flush=True)
                    step.result["checks"] += 1
                    step.result["failed"] += not record["passed"]
    if step.result["failed"]:
        return dict(status="failed", reason=f"{step.result['failed']} of {step.result['checks']} checks failed")
    return {}


if __name__ == "__main__":
    stepio.main(run)
