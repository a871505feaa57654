"""Packages asrec with its Triton kernels (``asrec/kernels``) and, where it can, builds the
CUDA extension ``asrec._C`` from csrc/ (the ``"cuda"`` backend).

The extension is built when torch is importable at build time (``pip install
--no-build-isolation .`` beside an installed torch), torch is a CUDA build and a CUDA
toolkit is found (``CUDA_HOME``, else beside ``nvcc``, else /usr/local/cuda). Otherwise the
package installs without it and says why in one line. Environment:

    ASREC_SKIP_CUDA_BUILD=1   never build the extension
    ASREC_FORCE_CUDA_BUILD=1  fail when it cannot be built
    ASREC_CUDA_ARCHS="80;90"  compute capabilities to compile for (PTX of the newest too)
    MAX_JOBS                  parallel compile jobs (default: cores, at most one per 3 GiB of memory)

(DESIGN.md maps a top-level kernels/ into the package; the Triton kernels live in the
package instead, so that a source checkout imports exactly what an install does.)
"""

import glob
import os
import re
import shutil
import sys

from setuptools import find_packages, setup

HERE = os.path.dirname(os.path.abspath(__file__))


def _flag(name: str) -> bool:
    return os.environ.get(name, "0") not in ("", "0")


def _cuda_home():
    """The first of CUDA_HOME, CUDA_PATH, nvcc's toolkit, /usr/local/cuda that holds a toolkit."""
    nvcc = shutil.which("nvcc")
    candidates = [os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"),
                  os.path.dirname(os.path.dirname(os.path.realpath(nvcc))) if nvcc else None, "/usr/local/cuda"]
    for home in filter(None, candidates):
        if os.path.isfile(os.path.join(home, "bin", "nvcc")) and os.path.isfile(
                os.path.join(home, "include", "cuda_runtime.h")):
            return home
    return None


def _gencode_flags(archs: str) -> list:
    """nvcc -gencode flags for "80;90"-style capabilities, with PTX of the newest for later GPUs."""
    values = [a.strip() for a in archs.replace(",", ";").split(";") if a.strip()]
    if not values or any(not re.fullmatch(r"\d{2,3}[af]?", a) for a in values):
        raise SystemExit(f"asrec: ASREC_CUDA_ARCHS must list compute capabilities like '80;90', got {archs!r}")
    flags = [f"-gencode=arch=compute_{a},code=sm_{a}" for a in values]
    newest = max(values, key=lambda a: int(re.match(r"\d+", a).group()))
    return flags + [f"-gencode=arch=compute_{newest},code=compute_{newest}"]


def _compile_jobs() -> int:
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return max(1, min(os.cpu_count() or 1, int(memory_gib // 3)))


def _cuda_extension() -> dict:
    """setup() arguments that build asrec._C, or {} after saying why not (an error when forced)."""
    def without(reason: str) -> dict:
        if _flag("ASREC_FORCE_CUDA_BUILD"):
            raise SystemExit(f"asrec: ASREC_FORCE_CUDA_BUILD=1 but the CUDA extension cannot be built: {reason}")
        print(f"asrec: building without the CUDA extension ('cuda' backend absent): {reason}", file=sys.stderr)
        return {}

    if _flag("ASREC_SKIP_CUDA_BUILD"):
        return without("ASREC_SKIP_CUDA_BUILD is set")
    home = _cuda_home()
    if home is not None:
        os.environ["CUDA_HOME"] = home  # before torch.utils.cpp_extension reads it
    try:
        import torch
        from torch.utils.cpp_extension import BuildExtension, CUDAExtension, is_ninja_available
    except ImportError as error:
        return without(f"torch is not importable at build time ({error}); install torch, then "
                       "pip install --no-build-isolation .")
    if torch.version.cuda is None:
        return without(f"torch {torch.__version__} is a CPU build")
    if home is None:
        return without("no CUDA toolkit found (set CUDA_HOME to a directory with bin/nvcc)")
    os.environ.setdefault("MAX_JOBS", str(_compile_jobs()))
    sources = sorted(os.path.relpath(p, HERE) for pattern in ("csrc/**/*.cpp", "csrc/**/*.cu")
                     for p in glob.glob(os.path.join(HERE, pattern), recursive=True))  # ** matches csrc/ too
    extension = CUDAExtension(
        name="asrec._C", sources=sources,
        extra_compile_args={"cxx": ["-O3", "-Wall"],
                            "nvcc": ["-O3", "-Xcompiler=-Wall", *_gencode_flags(os.environ.get("ASREC_CUDA_ARCHS",
                                                                                                 "80;90"))]})
    print(f"asrec: building the CUDA extension with {home} for torch {torch.__version__} (CUDA {torch.version.cuda}),"
          f" {os.environ['MAX_JOBS']} jobs", file=sys.stderr)
    return dict(ext_modules=[extension],
                cmdclass={"build_ext": BuildExtension.with_options(use_ninja=is_ninja_available())})


setup(packages=find_packages(include=["asrec", "asrec.*"]), **_cuda_extension())
