"""Launches per step: Triton launches + aten kernels, host syncs and host-built tensors of one
training step and one eval forward (``benchmarks/count_launches.py``), per published setting
at the check's batch (so its kernels are the warm-up's), on each fused backend that runs
here. Lines go to launches.txt as they are counted. CPU (dry run): counted in the
interpreter with the kernels skipped, as count_launches does."""

from benchmarks import count_launches

from .. import plan, stepio

FILE = "launches.txt"


def run(step: stepio.Step) -> dict:
    import asrec

    dev = plan.device(step.dry_run)
    backends = [b for b in asrec.backends.FUSED_BACKENDS if asrec.backends.missing_reason(b) is None
                and (dev.type == "cuda" or b == "triton")]
    over, lines = [], 0
    with step.watching_launches():
        for backend in backends:
            for shape in plan.bench_shapes(step.dry_run):
                model, items, lengths, targets = count_launches.model_and_batch(shape.config, shape.batch, dev)
                for mode, run_mode in count_launches.MODES.items():
                    triton, audit = count_launches.count(run_mode, model, items, lengths, targets, backend,
                                                         execute=dev.type == "cuda")
                    total = count_launches.device_kernels(triton, audit)
                    syncs, host_data = sum(audit.syncs.values()), sum(audit.host_data.values())
                    step.append_text(FILE, f"{backend:7s} {shape.name:8s} {mode:12s} "
                                           f"triton={sum(triton.launches.values()):3d} "
                                           f"aten_kernels={sum(audit.kernels.values()):4d} total={total:4d} "
                                           f"syncs={syncs} host_data={host_data} (ceiling "
                                           f"{count_launches.CEILING[mode]} on triton)")
                    lines += 1
                    if backend == "triton" and (total > count_launches.CEILING[mode] or syncs or host_data):
                        over.append(f"{shape.name} {mode}")
    step.result.update(counted=lines, backends=backends)
    if over:
        return dict(status="failed", reason="over the launch ceiling or with host syncs: " + ", ".join(over))
    return {}


if __name__ == "__main__":
    stepio.main(run)
