"""summary.json: the run's steps with their status, and which (op, backend) pairs it showed
exact. Rewritten (atomically) after every step, so a run stopped anywhere leaves a valid one."""

import json
import os
import subprocess
import time

STATUSES = ("passed", "failed", "skipped", "timed out")


def commit(root: str) -> str:
    try:
        head = subprocess.run(["git", "-C", root, "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", root, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return head + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def verified_pairs(lines: list) -> tuple:
    """From exactness.jsonl's records: (pairs shown exact, {"op/backend": why not} for the others).

    A pair is exact when its op passed at every planned (shape, precision) and so did the model
    (training step and eval forward) on that backend at each of them: a model failure cannot be
    put on one op, so it withholds all of its backend's ops."""
    plans = [r for r in lines if r.get("kind") == "plan"]
    if not plans:
        return [], {}
    planned = plans[0]
    combos = [(s, p) for s in planned["shapes"] for p in planned["precisions"]]
    op_records = {(r["op"], r["backend"], r["shape"], r["precision"]): r for r in lines if r.get("kind") == "op"}
    model_records = {(r["backend"], r["what"], r["shape"], r["precision"]): r for r in lines
                     if r.get("kind") == "model"}
    passed, why_not = [], {}
    for op, backend in planned["pairs"]:
        key = f"{op}/{backend}"
        if planned["missing"].get(backend):
            why_not[key] = f"not run: {planned['missing'][backend]}"
            continue
        problems = []
        for shape, precision in combos:
            record = op_records.get((op, backend, shape, precision))
            if record is None:
                problems.append(f"not checked at {shape}/{precision}")
            elif not record["passed"]:
                problems.append(f"failed at {shape}/{precision}: {record.get('worst')}")
            for what in ("train step", "eval forward"):
                model = model_records.get((backend, what, shape, precision))
                if model is None or not model["passed"]:
                    problems.append(f"the model's {what} on {backend} at {shape}/{precision} "
                                    f"{'was not checked' if model is None else 'failed'}")
        if problems:
            why_not[key] = "; ".join(problems[:3])
        else:
            passed.append([op, backend])
    return passed, why_not


class Summary:
    def __init__(self, out: str, steps: list, budget: float, dry_run: bool, root: str):
        self.path = os.path.join(out, "summary.json")
        self.started = time.time()
        self.data = dict(check="benchmarks/gpu_check.sh", mode="dry run (CPU)" if dry_run else "GPU", budget_s=budget,
                         elapsed_s=0.0, commit=commit(root), device="unknown", torch="unknown", triton="unknown",
                         started=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started)),
                         steps=[dict(name=s, status="skipped", reason="not reached", seconds=0.0) for s in steps],
                         exact_pairs=[], gpu_verified=[], not_verified={})
        self.dry_run = dry_run

    def step(self, name: str) -> dict:
        return next(s for s in self.data["steps"] if s["name"] == name)

    def record(self, name: str, fields: dict) -> None:
        entry = self.step(name)
        entry.pop("reason", None)
        entry.update(fields)
        assert entry["status"] in STATUSES, entry

    def environment(self, fields: dict) -> None:
        for key in ("device", "capability", "torch", "torch_cuda", "triton", "python", "cores", "ninja"):
            if key in fields:
                self.data[key] = fields[key]

    def exactness(self, jsonl_path: str) -> None:
        try:
            with open(jsonl_path) as f:
                lines = [json.loads(line) for line in f if line.strip()]
        except (OSError, ValueError):
            return
        passed, why_not = verified_pairs(lines)
        on_gpu = bool(lines) and str(lines[0].get("device", "")).startswith("cuda") and not self.dry_run
        self.data.update(exact_pairs=passed, gpu_verified=passed if on_gpu else [], not_verified=why_not)
        if not on_gpu:
            self.data["gpu_verified_note"] = "nothing is GPU-verified by a run off the GPU (exact_pairs: interpreter)"

    def write(self) -> None:
        self.data["elapsed_s"] = round(time.time() - self.started, 1)
        self.data["files"] = sorted(os.listdir(os.path.dirname(self.path)))
        temporary = self.path + ".tmp"
        with open(temporary, "w") as f:
            json.dump(self.data, f, indent=1)
        os.replace(temporary, self.path)
