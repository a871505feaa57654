"""Environment: the card, its compute capability, the versions, the cores and the toolkit;
printed to steps.log and returned for summary.json."""

import os
import platform
import shutil
import subprocess

from .. import plan, stepio


def _command(*argv) -> str:
    if shutil.which(argv[0]) is None:
        return f"{argv[0]}: not found"
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        return (done.stdout or done.stderr).strip()
    except (OSError, subprocess.SubprocessError) as error:
        return f"{argv[0]}: {error}"


def run(step: stepio.Step) -> dict:
    import torch

    import asrec

    dev = plan.device(step.dry_run)
    found = dict(python=platform.python_version(), torch=torch.__version__, torch_cuda=torch.version.cuda,
                 cores=os.cpu_count(), device_type=dev.type)
    try:
        import triton
        found["triton"] = triton.__version__
    except ImportError as error:
        found["triton"] = f"absent ({error})"
    from torch.utils.cpp_extension import is_ninja_available

    found["ninja"] = is_ninja_available()  # without it, the build compiles its 7 units one at a time
    if dev.type == "cuda":
        found["device"] = torch.cuda.get_device_name(dev)
        found["capability"] = "{}.{}".format(*torch.cuda.get_device_capability(dev))
        found["device_memory_gib"] = round(torch.cuda.get_device_properties(dev).total_memory / 2**30, 1)
    else:
        found["device"] = f"CPU ({'dry run, ' if step.dry_run else ''}Triton interpreter: "\
                          f"{asrec.backends.interpreting()})"
    print("\n".join(f"{k}: {v}" for k, v in found.items()))
    print(_command("nvidia-smi", "--query-gpu=name,driver_version,memory.total,clocks.max.sm",
                   "--format=csv,noheader"))
    print(_command("nvcc", "--version").splitlines()[-1] if shutil.which("nvcc") else "nvcc: not on PATH")
    print(asrec.backends.describe(), flush=True)
    return found


if __name__ == "__main__":
    stepio.main(run)
