"""Running steps as subprocesses with a deadline each: at the deadline a step's process group
gets SIGINT (Python raises KeyboardInterrupt: the step writes its partial result), and
SIGKILL after a grace period if it is still there."""

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field


@dataclass
class Running:
    name: str
    process: subprocess.Popen
    log_path: str
    result_path: str
    started: float
    deadline: float
    interrupted_at: float = 0.0
    fields: dict = field(default_factory=dict)


def start(name: str, out: str, scratch: str, dry_run: bool, env: dict, root: str, seconds: float) -> Running:
    log_path = os.path.join(scratch, f"{name}.log")
    result_path = os.path.join(scratch, f"{name}.json")
    argv = [sys.executable, "-m", f"benchmarks.gpu_check.steps.{name}", "--out", out, "--result", result_path]
    if dry_run:
        argv.append("--dry-run")
    log = open(log_path, "w")
    process = subprocess.Popen(argv, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    now = time.monotonic()
    return Running(name, process, log_path, result_path, now, now + seconds)


def _signal(running: Running, number: int) -> None:
    try:
        os.killpg(running.process.pid, number)
    except ProcessLookupError:
        pass


def wait_all(runs: list, grace: float, on_done) -> None:
    """Wait for every run; interrupt at its deadline, kill ``grace`` seconds later; call
    ``on_done(run, status, fields)`` as each ends (status: passed | failed | skipped | timed out)."""
    pending = list(runs)
    while pending:
        time.sleep(0.2)
        now = time.monotonic()
        for run in list(pending):
            if run.process.poll() is None:
                if not run.interrupted_at and now >= run.deadline:
                    run.interrupted_at = now
                    _signal(run, signal.SIGINT)
                elif run.interrupted_at and now >= run.interrupted_at + grace:
                    _signal(run, signal.SIGKILL)
                continue
            _signal(run, signal.SIGKILL)  # anything the step left behind in its group
            pending.remove(run)
            on_done(run, *_outcome(run, now))


def _outcome(run: Running, now: float) -> tuple:
    try:
        with open(run.result_path) as f:
            fields = json.load(f)
    except (OSError, ValueError):
        fields = {}
    status = fields.pop("status", None)
    fields["seconds"] = round(now - run.started, 1)
    if run.interrupted_at:
        fields["reason"] = (f"ran out of its {run.deadline - run.started:.0f} s slice: stopped with SIGINT"
                            + ("" if status == "interrupted" else ", then SIGKILL" if status is None else ""))
        return "timed out", fields
    if status in ("passed", "failed", "skipped"):
        return status, fields
    fields.setdefault("reason", f"exited {run.process.returncode} without a result (steps.log)")
    return "failed", fields


def append_log(out: str, run: Running, status: str) -> None:
    """The step's output into OUT/steps.log, under a header."""
    with open(os.path.join(out, "steps.log"), "a") as log:
        log.write(f"===== {run.name}: {status} =====\n")
        try:
            with open(run.log_path) as f:
                log.write(f.read())
        except OSError:
            log.write("(no output)\n")
