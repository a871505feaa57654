"""Which implementation of each op runs: the backend switch.

Backends: ``"reference"`` (the PyTorch math of ``asrec.reference``, every device and
dtype) and ``"triton"`` (fused Triton kernels: CUDA tensors, or CPU tensors under the
Triton interpreter ``TRITON_INTERPRET=1``; float32, bfloat16 and float16 inputs).

- ``"auto"`` (the default) runs an op on Triton when the tensors are on a CUDA device,
  Triton is installed, the op has a Triton implementation that has been verified on a GPU
  (tests and benchmark run compiled on a card) and that takes the call (dtype, shape);
  otherwise the reference. ``describe()`` says what runs where.
- ``"triton"`` asks for the Triton implementation of every op that has one and raises a
  ``ValueError`` saying why when a call cannot run on it (Triton missing, a CPU tensor
  outside the interpreter, float64, a shape the kernels do not take). Ops with no Triton
  implementation yet run the reference, and ``describe()`` lists them.
- ``"reference"`` runs the reference everywhere.

Selection, innermost first: ``with asrec.use_backend(name):``, then the ``ASREC_BACKEND``
environment variable, then ``"auto"``. No CUDA extension is part of this build: the
``"cuda"`` backend is absent and naming it says so.
"""

import contextlib
import contextvars
import functools
import os

import torch

ENV_VAR = "ASREC_BACKEND"
BACKENDS = ("reference", "triton")
CHOICES = BACKENDS + ("auto",)
ABSENT = {"cuda": "the CUDA extension (csrc/) is not part of this build"}

_selected: contextvars.ContextVar = contextvars.ContextVar("asrec_backend", default=None)


def _check(name: str, source: str) -> str:
    if isinstance(name, str) and name in ABSENT:
        raise ValueError(f"{source}: asrec backend {name!r} is absent: {ABSENT[name]}; this build has "
                         f"{', '.join(CHOICES)}")
    if not isinstance(name, str) or name not in CHOICES:
        raise ValueError(f"{source}: unknown asrec backend {name!r}; this build has {', '.join(CHOICES)}")
    return name


@torch.compiler.assume_constant_result
def selected_backend() -> str:
    """The backend name in force here (may be ``"auto"``).

    Under ``torch.compile`` the selection is read once, when the function is traced, and
    becomes part of the compiled graph: select the backend before compiling.
    """
    name = _selected.get()
    if name is not None:
        return name
    env = os.environ.get(ENV_VAR)
    return _check(env, f"environment variable {ENV_VAR}") if env else "auto"


@contextlib.contextmanager
def use_backend(name: str):
    """Run the ops in this block on backend ``name`` (one of ``asrec.backends.CHOICES``)."""
    token = _selected.set(_check(name, "use_backend"))
    try:
        yield name
    finally:
        _selected.reset(token)


@torch.compiler.assume_constant_result
def triton_missing_reason():
    """None when the Triton kernels import, else why not (with how to get them)."""
    return _triton_missing_reason()


@functools.lru_cache(maxsize=1)
def _triton_missing_reason():
    try:
        import triton  # noqa: F401

        from . import kernels  # noqa: F401
    except ImportError as error:
        return f"Triton is not importable ({error}); install it with `pip install triton`"
    return None


@torch.compiler.assume_constant_result
def interpreting() -> bool:
    """Whether Triton runs kernels in its CPU interpreter (``TRITON_INTERPRET=1``)."""
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def describe() -> str:
    """A table of what runs where under the current selection."""
    from .ops import COMPOSITES, OPS

    selection = selected_backend()
    missing = triton_missing_reason()
    lines = [f"asrec backend selection: {selection}  (set with asrec.use_backend or {ENV_VAR})",
             f"triton: {'available' if missing is None else 'absent: ' + missing}"
             + ("  [interpreter: TRITON_INTERPRET=1]" if interpreting() else "")]
    for op, implementations in OPS.items():
        fused = "triton" in implementations
        for device_type in ("cpu", "cuda"):
            if selection == "reference" or not fused:
                runs = "reference" + ("" if fused else "  (no triton kernel for this op yet)")
            elif device_type == "cpu" and not (selection == "triton" and interpreting()):
                runs = "reference" if selection == "auto" else "error: triton needs CUDA tensors or TRITON_INTERPRET=1"
            elif missing is not None:
                runs = "reference" if selection == "auto" else "error: triton absent"
            elif selection == "auto" and not implementations["triton"].gpu_verified:
                runs = "reference  (its triton kernel has not run on a GPU yet: ask for 'triton' by name)"
            else:
                runs = "triton" + ("  (reference for calls the kernels do not take)" if selection == "auto" else "")
            lines.append(f"  {op:<24} {device_type:<5} -> {runs}")
    for op in COMPOSITES:
        lines.append(f"  {op:<24} all   -> the reference composition; each leaf op above runs on its own backend")
    for name, reason in ABSENT.items():
        lines.append(f"  {name}: absent ({reason})")
    return "\n".join(lines)
