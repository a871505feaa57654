"""Which implementation of each op runs: the backend switch.

Backends: ``"reference"`` (the PyTorch math of ``asrec.reference``, every device and
dtype), ``"triton"`` (fused Triton kernels: CUDA tensors, or CPU tensors under the Triton
interpreter ``TRITON_INTERPRET=1``) and ``"cuda"`` (the CUDA C++ extension ``asrec._C``
built from csrc/ at install time: CUDA tensors). Both fused backends take float32,
bfloat16 and float16 inputs.

- ``"auto"`` (the default) runs an op on a fused backend when the tensors are on a CUDA
  device, the backend is installed, its implementation of the op has been verified on a
  GPU (tests and benchmark run compiled on a card) and takes the call (dtype, shape);
  otherwise the reference. Where both fused backends qualify, the one measured faster on
  that op goes first (``asrec.ops.registry.AUTO_ORDER``). ``describe()`` says what runs where.
- ``"triton"`` / ``"cuda"`` ask for that backend's implementation of every op that has one
  and raise a ``ValueError`` saying why when a call cannot run on it (backend missing, a
  CPU tensor, float64, a shape the kernels do not take). Ops with no implementation on it
  run the reference, and ``describe()`` lists them.
- ``"reference"`` runs the reference everywhere.

Selection, innermost first: ``with asrec.use_backend(name):``, then the ``ASREC_BACKEND``
environment variable, then ``"auto"``.
"""

import contextlib
import contextvars
import functools
import os

import torch

ENV_VAR = "ASREC_BACKEND"
BACKENDS = ("reference", "triton", "cuda")
CHOICES = BACKENDS + ("auto",)

_selected: contextvars.ContextVar = contextvars.ContextVar("asrec_backend", default=None)


def _check(name: str, source: str) -> str:
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
def cuda_missing_reason():
    """None when the CUDA extension ``asrec._C`` loads, else why not (with how to build it)."""
    from .ops import _cuda_library

    return _cuda_library.load()


def missing_reason(backend: str):
    """None when the fused ``backend`` ("triton" or "cuda") is installed, else why not."""
    return triton_missing_reason() if backend == "triton" else cuda_missing_reason()


@torch.compiler.assume_constant_result
def interpreting() -> bool:
    """Whether Triton runs kernels in its CPU interpreter (``TRITON_INTERPRET=1``)."""
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def _runs_on(op: str, implementations: dict, device_type: str, selection: str) -> str:
    """What runs ``op`` for tensors on ``device_type`` under ``selection``, in words."""
    from .ops.registry import AUTO_ORDER, AUTO_ORDER_BY_OP, FUSED_BACKENDS

    if selection == "reference":
        return "reference"
    if selection != "auto":
        if selection not in implementations:
            return f"reference  (no {selection} kernel for this op)"
        reason = missing_reason(selection)
        if reason is None and device_type == "cpu" and not (selection == "triton" and interpreting()):
            reason = f"{selection} needs CUDA tensors" + (" or TRITON_INTERPRET=1" if selection == "triton" else "")
        return selection if reason is None else f"error: {reason}"
    if device_type == "cpu":
        return "reference"
    order = AUTO_ORDER_BY_OP.get(op, AUTO_ORDER)
    for backend in order:
        if backend in implementations and implementations[backend].gpu_verified and missing_reason(backend) is None:
            return f"{backend}  (reference for calls its kernels do not take)"
    unverified = [b for b in FUSED_BACKENDS if b in implementations and not implementations[b].gpu_verified]
    note = f"  ({', '.join(unverified)} kernel not yet run on a GPU: ask for it by name)" if unverified else ""
    return "reference" + note


def describe() -> str:
    """A table of what runs where under the current selection."""
    from .ops import COMPOSITES, OPS

    selection = selected_backend()
    lines = [f"asrec backend selection: {selection}  (set with asrec.use_backend or {ENV_VAR})"]
    for backend in ("triton", "cuda"):
        reason = missing_reason(backend)
        interpreter = "  [interpreter: TRITON_INTERPRET=1]" if backend == "triton" and interpreting() else ""
        lines.append(f"{backend}: {'available' if reason is None else 'absent: ' + reason}{interpreter}")
    for op, implementations in OPS.items():
        for device_type in ("cpu", "cuda"):
            lines.append(f"  {op:<24} {device_type:<5} -> {_runs_on(op, implementations, device_type, selection)}")
    for op in COMPOSITES:
        lines.append(f"  {op:<24} all   -> the reference composition; each leaf op above runs on its own backend")
    return "\n".join(lines)
