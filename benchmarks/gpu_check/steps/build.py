"""CUDA extension: ``asrec._C`` built in place (``python setup.py build_ext --inplace``: nothing
installed, the checkout imports it) for the device's own compute capability only (read from
torch; one architecture compiles in about half the time of setup.py's default two), with
MAX_JOBS = the cores. nvcc's output goes to build.log. CPU or a CPU build of torch: skipped,
with the command the GPU run would use written to build.log."""

import os
import subprocess
import sys

from .. import stepio

LOG = "build.log"


def build_command(capability: tuple, cores: int) -> tuple:
    """(argv, environment additions) of the in-place build for compute capability (major, minor)."""
    env = dict(ASREC_FORCE_CUDA_BUILD="1", ASREC_CUDA_ARCHS=f"{capability[0]}{capability[1]}", MAX_JOBS=str(cores))
    return [sys.executable, "setup.py", "build_ext", "--inplace"], env


def _not_built(step: stepio.Step, why: str, cores: int) -> dict:
    argv, env = build_command((9, 0), cores)
    step.append_text(LOG, f"not built ({why}); on a GPU this step runs, for its capability (e.g. 9.0):\n  "
                          + " ".join(f"{k}={v}" for k, v in env.items()) + " " + " ".join(argv[1:]))
    return step.skip(f"{why}: the CUDA extension is built only for a CUDA device")


def run(step: stepio.Step) -> dict:
    cores = os.cpu_count() or 1
    if step.dry_run:  # decided before importing torch: a skipped step costs no start-up
        return _not_built(step, "dry run on the CPU", cores)
    import torch

    from .. import plan

    dev = plan.device(step.dry_run)
    if dev.type != "cuda" or torch.version.cuda is None:
        why = f"torch {torch.__version__} is a CPU build" if torch.version.cuda is None else "no CUDA device"
        return _not_built(step, why, cores)
    capability = torch.cuda.get_device_capability(dev)
    argv, env = build_command(capability, cores)
    step.result.update(archs=env["ASREC_CUDA_ARCHS"], jobs=cores)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    with open(step.path(LOG), "a") as log:
        log.write(" ".join(f"{k}={v}" for k, v in env.items()) + " " + " ".join(argv) + "\n")
        log.flush()
        done = subprocess.run(argv, cwd=root, env=dict(os.environ, **env), stdout=log, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        return dict(status="failed", reason=f"setup.py build_ext exited {done.returncode} (build.log)")
    check = subprocess.run([sys.executable, "-c", "import asrec; print(asrec.backends.cuda_missing_reason())"],
                           cwd=root, capture_output=True, text=True)
    loaded = check.stdout.strip()
    if check.returncode != 0 or loaded != "None":
        return dict(status="failed", reason=f"built, but asrec._C does not load: {loaded or check.stderr[-300:]}")
    print(f"asrec._C built for sm_{env['ASREC_CUDA_ARCHS']} with {cores} jobs and loads", flush=True)
    return {}


if __name__ == "__main__":
    stepio.main(run)
