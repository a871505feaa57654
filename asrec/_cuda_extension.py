"""Loading the CUDA extension ``asrec._C`` (csrc/), once.

Importing ``asrec._C`` runs its C++ registrations of ``torch.ops.asrec_cuda.*``. The ops
modules register their fake (shape-only) implementations of those ops with ``after_load``:
a fake can only be registered once its op exists.
"""

import functools
import importlib

import torch

# The C++ ops' namespace, resolved at call time (tests swap in the host-emulated kernels of
# tests/cuda_emulation, which take the same arguments).
kernel_ops = torch.ops.asrec_cuda

_after_load: list = []
_loaded = False


def after_load(register) -> None:
    """Run ``register()`` once the extension has loaded (now, if it already has)."""
    _after_load.append(register)
    if _loaded:
        register()


@functools.lru_cache(maxsize=1)
def load():
    """None once ``asrec._C`` is imported and the fakes registered, else why it cannot be."""
    global _loaded
    try:
        importlib.import_module("asrec._C")
    except ModuleNotFoundError as error:
        if error.name != "asrec._C":
            return f"the CUDA extension asrec._C does not load ({error})"
        return ("the CUDA extension asrec._C is not built: it builds at install time with a CUDA build of torch "
                "and a CUDA toolkit (ASREC_FORCE_CUDA_BUILD=1 pip install --no-build-isolation .; see README)")
    except ImportError as error:  # e.g. built against another torch: undefined symbols
        return f"the CUDA extension asrec._C does not load ({error}); rebuild it against this torch"
    if not _loaded:
        _loaded = True
        for register in _after_load:
            register()
    return None
