"""What every step module shares: its command line, its output files and its result.

A step runs as ``python -m benchmarks.gpu_check.steps.<name> --out OUT --result FILE
[--dry-run]``. It appends its records to its file under OUT as it goes (one JSON line or
text line at a time, flushed), so a step stopped midway leaves what it measured. Its
result (status, reason, figures for summary.json) goes to FILE, outside OUT. The driver
stops a step that runs out of time with SIGINT: Python raises KeyboardInterrupt, the step
writes its partial result and exits 130.
"""

import argparse
import contextlib
import json
import math
import os
import sys
import traceback


class Step:
    """One step's context: ``out`` folder, ``dry_run``, and ``result`` (a dict the step fills as
    it goes; written on success, failure and interruption)."""

    def __init__(self, out: str, dry_run: bool, result_path: str):
        self.out, self.dry_run, self.result_path = out, dry_run, result_path
        self.result = {}
        self._made = set()  # launch keys seen by watching_launches

    def path(self, name: str) -> str:
        return os.path.join(self.out, name)

    def append_json(self, name: str, record: dict) -> None:
        with open(self.path(name), "a") as f:
            f.write(json.dumps(_finite(record)) + "\n")

    def append_text(self, name: str, text: str) -> None:
        with open(self.path(name), "a") as f:
            f.write(text.rstrip("\n") + "\n")
        print(text, flush=True)

    # ---- the launches the warm-up compiled, and those a later step makes beyond them ----

    def _warmed_path(self) -> str:
        return os.path.join(os.path.dirname(self.result_path), "warmed-launches.json")

    def save_warmed(self, keys: set) -> None:
        with open(self._warmed_path(), "w") as f:
            json.dump(sorted(json.loads(json.dumps(k)) for k in keys), f)

    @contextlib.contextmanager
    def watching_launches(self, accumulate: bool = False):
        """Within the block, count the Triton launches that the warm-up did not make (each a
        compile the warm-up should have done): ``result["launches_not_warmed"]``, with examples;
        ``accumulate``: add to what earlier blocks of this step found."""
        from .launch_keys import recording_keys

        try:
            with open(self._warmed_path()) as f:
                warmed = {json.dumps(k) for k in json.load(f)}
        except OSError:
            warmed = None
        with recording_keys() as keys:
            try:
                yield
            finally:
                made = {json.dumps(k) for k in keys}
                if accumulate:
                    made |= self._made
                self._made = made
                self.result["launches_made"] = len(made)
                if warmed is None:
                    self.result["launches_not_warmed"] = "no warm-up ran"
                else:
                    cold = sorted(made - warmed)
                    self.result["launches_not_warmed"] = len(cold)
                    self.result["not_warmed_examples"] = sorted({json.loads(k)[0] for k in cold})[:5]

    def skip(self, reason: str) -> dict:
        """The result of a step that does not apply here (e.g. CUDA-only parts on the CPU)."""
        return dict(self.result, status="skipped", reason=reason)

    def write_result(self) -> None:
        with open(self.result_path, "w") as f:
            json.dump(_finite(self.result), f)


def error_text(error: BaseException, limit: int = 300) -> str:
    """One line naming an exception, for a record."""
    return " ".join(f"{type(error).__name__}: {error}".split())[:limit]


def _finite(value):
    """``value`` with infinite floats written as the string "inf" (strict JSON has no Infinity)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def main(run) -> None:
    """Parse the step's command line and run ``run(step) -> result dict`` (status "passed",
    "failed" or "skipped"; default "passed")."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--result", required=True)
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args()
    step = Step(args.out, args.dry_run, args.result)
    code = 0
    try:
        result = run(step) or {}
        step.result = dict(step.result, **result)
        step.result.setdefault("status", "passed")
        code = 0 if step.result["status"] in ("passed", "skipped") else 1
    except KeyboardInterrupt:
        step.result.update(status="interrupted")
        code = 130
    except Exception as error:  # the driver records the failure; the traceback goes to steps.log
        traceback.print_exc()
        step.result.update(status="failed", reason=error_text(error, 500))
        code = 1
    step.write_result()
    sys.stdout.flush()
    sys.exit(code)
