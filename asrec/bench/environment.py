"""Where a benchmark ran: device, versions, commit."""

import os
import platform
import subprocess
import sys

import torch

import asrec


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    model = platform.processor() or "cpu"
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{model}, {torch.get_num_threads()} threads"


def versions() -> dict:
    found = {"python": platform.python_version(), "torch": torch.__version__, "asrec": asrec.__version__}
    if torch.version.cuda:
        found["cuda"] = torch.version.cuda
    try:
        import triton
        found["triton"] = triton.__version__
    except ImportError:
        pass
    found["asrec._C"] = "built" if asrec.backends.cuda_missing_reason() is None else "absent"
    return found


def commit() -> str:
    """The git commit of the source tree asrec was imported from, or 'unknown'."""
    source = os.path.dirname(os.path.dirname(os.path.abspath(asrec.__file__)))
    try:
        out = subprocess.run(["git", "-C", source, "rev-parse", "--short=12", "HEAD"], capture_output=True,
                             text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", source, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return out + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def describe(device: torch.device) -> dict:
    return {"device": device_name(device), "device_type": device.type, "versions": versions(), "commit": commit(),
            "argv": sys.argv[1:]}
