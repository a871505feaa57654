"""Exactness: every fused op of ``asrec.backends.registered_ops()`` on each fused backend that
has it, and the model's loss with every parameter gradient and its eval forward, against the
reference, at every shape of the plan and both float32 matmul precisions.

Per (shape, precision): the model on each available fused backend against the reference in
float32 and in float64 (``tolerance``); then every top-level leaf-op call of the model's loss
(eval mode, with backward: forward and every input gradient under one random cotangent), of
its eval forward, and one standalone call of each op the model leaves out, replayed on each
fused backend that has the op. Writes exactness.jsonl: one "plan" line first, then one line
per model check and per (op, backend, shape, precision). CPU (dry run): Triton's interpreter.
"""

import copy
import os
import time

import torch

import asrec

from .. import calls as call_groups
from .. import plan, stepio
from ..precision import matmul_precision
from ..recording import replay
from ..tolerance import compare, worst

FILE = "exactness.jsonl"


def _model_results(model, model64, batch, backend: str, precision: str) -> dict:
    """{"train step": [...], "eval forward": [...]} comparisons of ``backend`` against the reference."""
    items, lengths, targets = batch

    def loss_and_grads(m, name):
        m.zero_grad(set_to_none=True)
        with asrec.use_backend(name):
            loss = m.loss(items, lengths, targets)
        loss.backward()
        grads = {n: (p.grad.detach().clone() if p.grad is not None else None) for n, p in m.named_parameters()}
        return loss.detach(), grads

    def scores(m, name):
        with torch.no_grad(), asrec.use_backend(name):
            return m.full_sort_scores(items, lengths)

    results = {}
    fused, reference, exact = (loss_and_grads(m, b) for m, b in ((model, backend), (model, "reference"),
                                                                  (model64, "reference")))
    checks = [compare("loss", fused[0], reference[0], exact[0], precision)]
    checks += [compare(f"grad {name}", fused[1][name], reference[1][name], exact[1][name], precision)
               for name in exact[1]]
    results["train step"] = checks
    results["eval forward"] = [compare("scores", scores(model, backend), scores(model, "reference"),
                                       scores(model64, "reference"), precision)]
    return results


def _op_results(call, backends: list, precision: str) -> dict:
    """backend -> comparisons of one replayed call (outputs, then input gradients)."""
    ref_out, ref_grads, cotangents = replay(call, "reference")
    exact_out, exact_grads, _ = replay(call, "reference", cotangents, torch.float64)
    results = {}
    for backend in backends:
        try:
            out, grads, _ = replay(call, backend, cotangents)
        except ValueError as error:  # the kernels refuse this call (a shape they do not take)
            results[backend] = [dict(name="call", passed=False, error=float("inf"), bound=0.0,
                                     reason=" ".join(str(error).split())[:300])]
            continue
        checks = [compare(f"out{i}", a, b, c, precision) for i, (a, b, c) in enumerate(zip(out, ref_out, exact_out))]
        checks += [compare(f"grad{i}", a, b, c, precision)
                   for i, (a, b, c) in enumerate(zip(grads, ref_grads, exact_grads))]
        if len(out) != len(exact_out) or len(grads) != len(exact_grads):
            checks.append(dict(name="arity", passed=False, error=float("inf"), bound=0.0,
                               reason=f"{len(out)} outputs / {len(grads)} gradients, expected "
                                      f"{len(exact_out)} / {len(exact_grads)}"))
        results[backend] = checks
    return results


def _summary(checks: list) -> dict:
    top = worst(checks)
    return dict(passed=all(c["passed"] for c in checks), checks=len(checks),
                worst={k: top[k] for k in ("name", "error", "bound", "reason") if k in top})


def run(step: stepio.Step) -> dict:
    dev = plan.device(step.dry_run)
    ops = asrec.backends.registered_ops()
    pairs = [(op, b) for op in ops for b in plan.fused_backends(op)]
    missing = {b: asrec.backends.missing_reason(b) for b in asrec.backends.FUSED_BACKENDS}
    if dev.type != "cuda" and missing["cuda"] is None:
        missing["cuda"] = "the CUDA kernels run on CUDA devices"
    if dev.type != "cuda" and not asrec.backends.interpreting() and missing["triton"] is None:
        missing["triton"] = "no CUDA device, and Triton's interpreter is off (the dry run turns it on)"
    available = [b for b, reason in missing.items() if reason is None]
    shapes = plan.shapes(step.dry_run)
    step.append_json(FILE, dict(kind="plan", device=str(dev), shapes=[s.name for s in shapes],
                                precisions=list(plan.precisions(step.dry_run)), pairs=pairs, missing=missing,
                                interpreter=asrec.backends.interpreting()))
    counts = step.result
    counts.update(records=0, failed=0, backends=available, missing={b: r for b, r in missing.items() if r})
    if os.environ.get("ASREC_GPU_CHECK_HOLD") == "exactness":
        # tests/test_gpu_check_dry_run.py holds the step here, its plan line written, until its
        # slice runs out: the budget's SIGINT path tested without depending on the machine's speed
        while True:
            time.sleep(1)
    if not available:
        return step.skip("no fused backend runs here: " + "; ".join(f"{b}: {r}" for b, r in missing.items()))
    with step.watching_launches():
        _check_all(step, shapes, ops, available, counts)
    status = "failed" if counts["failed"] else "passed"
    return dict(status=status, reason=f"{counts['failed']} of {counts['records']} records failed" if
                counts["failed"] else None)


def _check_all(step, shapes, ops, available, counts) -> None:
    dev = plan.device(step.dry_run)
    for shape in shapes:
        model, items, lengths, targets = plan.model_and_batch(shape, dev)
        model.eval()
        model64 = copy.deepcopy(model).double()
        groups = {g: call_groups.record(g, shape, dev) for g in call_groups.EXACTNESS_GROUPS}
        for precision in plan.precisions(step.dry_run):
            with matmul_precision(precision):
                for backend in available:
                    try:
                        model_results = _model_results(model, model64, (items, lengths, targets), backend, precision)
                    except Exception as error:  # e.g. a kernel that refuses the shape: recorded, the rest go on
                        failure = dict(name="run", passed=False, error=float("inf"), bound=0.0,
                                       reason=stepio.error_text(error))
                        model_results = {"train step": [failure], "eval forward": [failure]}
                    for what, checks in model_results.items():
                        record = dict(kind="model", what=what, backend=backend, shape=shape.name,
                                      precision=precision, **_summary(checks))
                        step.append_json(FILE, record)
                        counts["records"] += 1
                        counts["failed"] += not record["passed"]
                for op in ops:
                    backends = [b for b in plan.fused_backends(op) if b in available]
                    per_backend = {b: [] for b in backends}
                    op_calls = [c for g in call_groups.EXACTNESS_GROUPS for c in groups[g] if c.op == op]
                    for call in op_calls:
                        for backend, checks in _op_results(call, backends, precision).items():
                            per_backend[backend] += checks
                    for backend, checks in per_backend.items():
                        if not op_calls:
                            checks = [dict(name="calls", passed=False, error=float("inf"), bound=0.0,
                                           reason="no call of this op at this shape: add one to "
                                                  "benchmarks/gpu_check/calls.py (standalone)")]
                        record = dict(kind="op", op=op, backend=backend, shape=shape.name, precision=precision,
                                      calls=len(op_calls), **_summary(checks))
                        step.append_json(FILE, record)
                        counts["records"] += 1
                        counts["failed"] += not record["passed"]


if __name__ == "__main__":
    stepio.main(run)
